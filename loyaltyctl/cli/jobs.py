"""Jobs for cron: expire, tiers review, tiers set."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import parse
from .common import AtOpt, Format, FormatOpt, MemberArg, complete_tiers, db, default_program, flat, plural, program_option

PANEL = "Jobs"
tiers_app = typer.Typer(help="Review tiers (cron) and set manual tiers.", no_args_is_help=True)
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success (cron).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]
JobProgramOpt = Annotated[Optional[str], program_option("Only this program (default: the configured program, else all).")]


def expire(
    ctx: typer.Context,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Expire what is due at this moment (ISO-8601). Default: now.",
                                                 callback=parse.moment)] = None,
    program: JobProgramOpt = None,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    fmt: FormatOpt = Format.table,
):
    """Record expiry entries for lots past their expiry date (safe to run twice).

    Each entry takes effect at the lot's expiry time, not when the job ran, so
    balances as of any moment are the same whether or not this job has run.

    Example (cron, nightly): loyaltyctl expire --quiet
    """
    from .. import render
    from ..app import jobs

    database = db(ctx)
    result = jobs.expire(database, as_of, default_program(program, database), dry_run)
    if quiet and not dry_run:
        return
    if fmt is Format.table:
        what = "would expire" if dry_run else "expired"
        print(f"{what} {plural(result['points'], 'point')} in {plural(result['lots'], 'lot')} of "
              f"{plural(result['members'], 'member')} (as of {result['as_of']})")
        if dry_run and result["by_member"]:
            render.table(result["by_member"], ["member_id", "program_code", "lots", "points", "first_expiry",
                                               "last_expiry"], title="Would expire", numeric=["lots", "points"])
    else:
        render.record(result if fmt is Format.json else flat(result), fmt=fmt.value)


@tiers_app.command("review")
def review(
    ctx: typer.Context,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Review tiers as they stand at this moment; changes take effect then (ISO-8601). Default: now.",
                                                 callback=parse.moment)] = None,
    program: JobProgramOpt = None,
    dry_run: DryRunOpt = False,
    quiet: QuietOpt = False,
    fmt: FormatOpt = Format.table,
):
    """Move members up or down to the tier their qualifying window earns.

    Downgrades respect the program's tiers.review.grace_days and manual tiers
    (`tiers set`) act as floors. Changes take effect at --as-of.

    Example (cron, nightly): loyaltyctl tiers review --quiet
    """
    from .. import render
    from ..app import jobs

    database = db(ctx)
    result = jobs.review(database, as_of, default_program(program, database), dry_run)
    if quiet and not dry_run:
        return
    cols = ["member_id", "program", "from", "to", "direction", "qualifying"]
    if fmt is Format.table:
        what = "would move" if dry_run else "moved"
        print(f"{what} {plural(result['members'], 'member')}: {result['up']} up, {result['down']} down "
              f"(as of {result['as_of']})")
        if dry_run and result["moves"]:
            render.table(result["moves"], cols, title="Tier moves")
    else:
        render.record(result if fmt is Format.json else flat(result), fmt=fmt.value)


@tiers_app.command("set")
def set_(
    ctx: typer.Context,
    member_id: MemberArg,
    tier: Annotated[str, typer.Option("--tier", help="Tier name.", autocompletion=complete_tiers, callback=parse.text("tier"))],
    reason: Annotated[str, typer.Option("--reason", help="Why (service recovery, VIP guest...).", callback=parse.text("reason"))],
    until: Annotated[Optional[str], typer.Option("--until", help="When the manual tier lapses (ISO-8601).",
                                                 callback=parse.moment)] = None,
    program: Annotated[Optional[str], program_option("Program code; may be omitted when the member is in one program.")] = None,
    at: AtOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Give a member a manual tier: a floor reviews never put them below until it lapses.

    The member's tier is the higher of the floor and what their qualifying window earns;
    a floor at or below the earned tier changes nothing (and says so).

    Example: loyaltyctl tiers set M00001 --tier Gold --until 2027-01-01 --reason "service recovery"
    """
    from .. import render
    from ..app import jobs

    database = db(ctx)
    result = jobs.set_tier(database, member_id, tier, reason, default_program(program, database), until, at)
    if fmt is Format.table and result["status"] == "unchanged":
        print(f"{result['member_id']} ({result['program']}): nothing changed: {tier} is not above {result['earned']}, "
              f"the tier their qualifying spend or points earn (a manual tier is a floor)")
    elif fmt is Format.table:
        print(f"{result['member_id']} ({result['program']}): {result['from'] or '-'} -> {result['to']}"
              + (f" until {result['until']}" if result["until"] else ""))
    else:
        render.record(result, fmt=fmt.value)


def register(app: typer.Typer) -> None:
    app.command("expire", rich_help_panel=PANEL)(expire)
    app.add_typer(tiers_app, name="tiers", rich_help_panel=PANEL)
