"""Members: enroll, show, list, history."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from . import parse
from .common import (AllOpt, AsOfOpt, AtOpt, Format, FormatOpt, LimitOpt, MemberArg, ProgramOpt, complete_tiers, db,
                     default_program, once, page_size, program_option, reader, state, usage_error)

PANEL = "Members"
member_app = typer.Typer(help="Enroll, show and list members.", no_args_is_help=True)

SHOW_FIELDS = ["member_id", "name", "email", "program", "as_of", "joined_at", "tags", "balance", "value", "currency",
               "tier", "perks", "qualifying", "next_tier", "to_next_tier", "expiring_30d", "next_expiry",
               "lifetime_earned", "opening", "redeemed", "clawed_back", "adjusted", "expired", "last_activity"]


@member_app.command("enroll")
def enroll(
    ctx: typer.Context,
    member_id: Annotated[str, typer.Argument(metavar="MEMBER_ID", help="Member id (your CRM's customer id).", callback=parse.text("member_id"))],
    program: ProgramOpt = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Member's name.", callback=parse.text("name"))] = None,
    email: Annotated[Optional[str], typer.Option("--email", help="Member's email.", callback=parse.text("email"))] = None,
    tag: Annotated[Optional[List[str]], typer.Option("--tag", help="A tag rules can match (repeatable), e.g. card_member.", callback=parse.text("tags"))] = None,
    referred_by: Annotated[Optional[str], typer.Option("--referred-by", help="Member who referred this one (referral rewards).", callback=parse.text("referred_by"))] = None,
    account: Annotated[Optional[str], typer.Option("--account", help="B2B customer account the member belongs to.", callback=parse.text("account"))] = None,
    at: AtOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Enroll a member in a program.

    Example: loyaltyctl member enroll M00001 --program coffee --name "Ada" --tag card_member
    """
    from .. import render
    from ..app import ledger

    if not default_program(program):
        raise usage_error(ctx, "Missing option '--program' (or configure a default program: LOYALTYCTL_PROGRAM or "
                               "loyaltyctl.toml).")
    database = db(ctx)
    result = ledger.enroll(database, member_id, default_program(program, database), name=name, email=email,
                           tags=tag or [], referred_by=referred_by, account=account, at=at).as_dict()
    if fmt is Format.table:
        line = f"enrolled {result['member_id']} in {result['program']}"
        if result["tier"]:
            line += f" at {result['tier']}"
        for credit in result["referral_credits"]:
            line += f"; {credit['role']} {credit['member_id']} +{credit['points']}"
        print(line)
    else:
        render.record(result, fmt=fmt.value)


@member_app.command("show")
def show(
    ctx: typer.Context,
    member_id: MemberArg,
    program: Annotated[Optional[str], program_option("Only this program (default: the configured program).")] = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Balance, tier, progress to the next tier, expiring points and lifetime counters.

    With a program (--program or the configured one), JSON is one object; without one, a
    member in several programs gets one per program (a JSON list).

    Example: loyaltyctl member show M00001 --as-of 2026-01-01
    """
    from .. import render
    from ..app import members

    database = reader(ctx)
    code = default_program(program, database)
    states = members.show(database, member_id, code, as_of)
    if fmt is Format.json:
        render.record(states[0], fmt="json", fields=SHOW_FIELDS) if code or len(states) == 1 else render.records(
            [{k: s[k] for k in SHOW_FIELDS} for s in states], fmt="json")
    else:
        for s in states:
            s["title"] = f"{s['member_id']} in {s['program']}"
        render.records(states, fmt=fmt.value, title_key="title", fields=SHOW_FIELDS)


@member_app.command("find")
def find(
    ctx: typer.Context,
    text: Annotated[str, typer.Argument(metavar="TEXT", help="Words of a member's id, name or email (prefixes match).")],
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="Show at most this many, best first.")] = 20,
    fmt: FormatOpt = Format.table,
):
    """Look members up by id, name or email, best match first (ranked full-text search).

    Every word must start a word of the member's id, name or email; case and accents do not
    matter. Erased members are never found.

    Example: loyaltyctl member find "ada love"
    """
    from .. import render
    from ..app import members

    rows = members.find(reader(ctx), text, limit)
    render.table(rows, ["member_id", "name", "email"], fmt=fmt.value, empty=f"no member matches {text!r}")


@member_app.command("list")
def list_(
    ctx: typer.Context,
    program: Annotated[Optional[str], program_option("Only this program (default: the configured program, else all).")] = None,
    tier: Annotated[Optional[str], typer.Option("--tier", help="Only members in this tier.", autocompletion=complete_tiers, callback=parse.text("tier"))] = None,
    as_of: AsOfOpt = None,
    limit: LimitOpt = None,
    every: AllOpt = False,
    fmt: FormatOpt = Format.table,
):
    """List members with their program, tier and balance, in member order.

    On a terminal the table shows one screenful and says how many more there are (--all for
    every row); the totals below it are those of the whole list.

    Example: loyaltyctl member list --program coffee --tier Gold
    """
    from .. import render
    from ..app import members

    database = reader(ctx)
    code = default_program(program, database)
    page = page_size(ctx, fmt, limit, every)
    rows = members.listing(database, code, tier, as_of, first=page)
    totals = once(lambda: members.listing_total(database, code, tier, as_of))
    render.table(rows, ["member_id", "name", "program", "tier", "balance", "joined_at"], fmt=fmt.value,
                 numeric=["balance"], title="Members", empty="no members", limit=page, noun="members",
                 count=lambda: totals()[0], summary=lambda: f"{totals()[0]:,} member{'' if totals()[0] == 1 else 's'}, "
                                                          f"{totals()[1]:,} points in all")


@member_app.command("update")
def update(
    ctx: typer.Context,
    member_id: Annotated[str, typer.Argument(metavar="MEMBER_ID", help="Member id.", callback=parse.text("member_id"))],
    name: Annotated[Optional[str], typer.Option("--name", help="New name (empty to clear).", callback=parse.text("name"))] = None,
    email: Annotated[Optional[str], typer.Option("--email", help="New email (empty to clear).", callback=parse.text("email"))] = None,
    account: Annotated[Optional[str], typer.Option("--account", help="New B2B account (empty to clear).", callback=parse.text("account"))] = None,
    fmt: FormatOpt = Format.table,
):
    """Change a member's name, email or account (in every program they are in).

    Enrolling a member in another program never changes these: a different value there is
    refused and points here. Details given again after `member erase` end the erasure.

    Example: loyaltyctl member update M00001 --email ada@example.org
    """
    from .. import render
    from ..app import members

    result = members.update(db(ctx), member_id, name=name, email=email, account=account)
    if fmt is Format.table:
        print(f"{result['member_id']}: updated")
    else:
        render.record(result, fmt=fmt.value)


@member_app.command("erase")
def erase(
    ctx: typer.Context,
    member_id: MemberArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Erase without asking (scripts).")] = False,
    fmt: FormatOpt = Format.table,
):
    """Erase a member's personal data (name, email, NPS comments); ledger totals stay exact.

    The name and email are also replaced wherever a reason or comment quotes them, and the
    old text is scrubbed from the database file and its WAL. Backups taken before still hold
    it: erase the member in each (--db BACKUP member erase ID --yes). It cannot be undone: on
    a terminal it asks first (--yes does not).

    On PostgreSQL the rows are updated in place, but the old row versions stay in the table
    files until VACUUM removes them: erase runs a plain VACUUM of the tables it changed, which
    frees them for reuse without rewriting the files; run `VACUUM (FULL) members,
    nps_responses, entries, tier_changes` (it locks them) to rewrite the files. The server's
    WAL, WAL archives, replicas' copies and pg_dump backups keep the old text until they are
    recycled or expire: erase the member in a restored backup too. `scrubbed` is false there.

    Example: loyaltyctl member erase M00001 --yes
    """
    import sys

    from .. import render
    from ..app import admin as maintenance

    if not yes and sys.stdin.isatty() and not typer.confirm(
            f"Erase the name, email and NPS comments of {member_id}? This cannot be undone", default=False):
        print("nothing erased", file=sys.stderr)
        raise typer.Exit(1)
    result = maintenance.erase_member(db(ctx), member_id)
    if fmt is Format.table:
        quoted = f"; quoted in {result['quotes']} other texts, replaced there too" if result.get("quotes") else ""
        print(f"{result['member_id']}: {result['status']} ({result['erased_at']}){quoted}")
        if "vacuumed" in result:
            print("note: PostgreSQL keeps the old text in its WAL, WAL archives and backups until they are "
                  "recycled, and in the table files until VACUUM (FULL): see `loyaltyctl member erase --help`",
                  file=sys.stderr)
        elif result.get("scrubbed") is False:
            print("warning: another process kept the WAL from being truncated; the old text stays in "
                  f"{state(ctx).path}-wal until its next checkpoint", file=sys.stderr)
    else:
        render.record(result, fmt=fmt.value)


def history(
    ctx: typer.Context,
    member_id: MemberArg,
    program: ProgramOpt = None,
    as_of: AsOfOpt = None,
    limit: LimitOpt = None,
    every: AllOpt = False,
    fmt: FormatOpt = Format.table,
):
    """Every ledger entry and tier change of a member, with the rule, version and lots behind it.

    Example: loyaltyctl history M00001
    """
    from .. import render
    from ..app import members

    database = reader(ctx)
    rows = members.history(database, member_id, default_program(program, database), as_of)
    columns = ["effective_at", "txn_id", "kind", "rule", "amount", "points", "running_total", "program_version",
               "lot", "lot_expires_at", "why"]
    if fmt is not Format.table:
        columns.append("recorded_at")
    render.table(rows, columns, fmt=fmt.value, numeric=["amount", "points", "running_total"],
                 title=f"History of {member_id}", headers={"running_total": "total", "program_version": "ver"},
                 empty="no entries", limit=page_size(ctx, fmt, limit, every), noun="entries", count=lambda: len(rows))


def register(app: typer.Typer) -> None:
    app.add_typer(member_app, name="member", rich_help_panel=PANEL)
    app.command("history", rich_help_panel=PANEL)(history)
