"""Jobs for cron: expire, tiers review, tiers set."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .common import AsOfOpt, AtOpt, Format, FormatOpt, db, default_program

PANEL = "Jobs"
tiers_app = typer.Typer(help="Review tiers (cron) and set manual tiers.", no_args_is_help=True)
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print nothing on success (cron).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show what would change; write nothing.")]
JobProgramOpt = Annotated[Optional[str], typer.Option("--program", "-p", help="Only this program (default: all).")]


def expire(
    ctx: typer.Context,
    as_of: AsOfOpt = None,
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

    result = jobs.expire(db(ctx), as_of, program, dry_run)
    if quiet and not dry_run:
        return
    if fmt is Format.table:
        what = "would expire" if dry_run else "expired"
        print(f"{what} {result['points']} points in {result['lots']} lots of {result['members']} members "
              f"(as of {result['as_of']})")
        if dry_run and result["by_member"]:
            render.table(result["by_member"], ["member_id", "program_code", "lots", "points", "first_expiry",
                                               "last_expiry"], title="Would expire", numeric=["lots", "points"])
    elif fmt is Format.json:
        render.record(result, fmt="json")
    else:
        render.write_csv(result["by_member"], ["member_id", "program_code", "lots", "points", "first_expiry", "last_expiry"])


@tiers_app.command("review")
def review(
    ctx: typer.Context,
    as_of: AsOfOpt = None,
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

    result = jobs.review(db(ctx), as_of, program, dry_run)
    if quiet and not dry_run:
        return
    cols = ["member_id", "program", "from", "to", "direction", "qualifying"]
    if fmt is Format.table:
        what = "would move" if dry_run else "moved"
        print(f"{what} {result['members']} members: {result['up']} up, {result['down']} down (as of {result['as_of']})")
        if dry_run and result["moves"]:
            render.table(result["moves"], cols, title="Tier moves")
    elif fmt is Format.json:
        render.record(result, fmt="json")
    else:
        render.write_csv(result["moves"], cols)


@tiers_app.command("set")
def set_(
    ctx: typer.Context,
    member_id: Annotated[str, typer.Argument(help="Member id.")],
    tier: Annotated[str, typer.Option("--tier", help="Tier name.")],
    reason: Annotated[str, typer.Option("--reason", help="Why (service recovery, VIP guest...).")],
    until: Annotated[Optional[str], typer.Option("--until", help="When the manual tier lapses (ISO-8601).")] = None,
    program: JobProgramOpt = None,
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

    result = jobs.set_tier(db(ctx), member_id, tier, reason, default_program(program), until, at)
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
