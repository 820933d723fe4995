"""NPS surveys: `loyaltyctl nps record|summary|comments`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from . import parse
from .common import AtOpt, Format, FormatOpt, db, default_program, program_option, reader, usage_error

PANEL = "Reports"
nps_app = typer.Typer(help="NPS surveys: record answers, read scores and comments.", no_args_is_help=True)
ProgramOpt = Annotated[Optional[str], program_option("Only this program (default: the configured program, else all).")]
AccountOpt = Annotated[Optional[str], typer.Option("--account", help="Only this B2B customer account.")]
SinceOpt = Annotated[Optional[str], typer.Option("--since", help="Answered at or after this moment (ISO-8601).",
                                                 callback=parse.moment)]
UntilOpt = Annotated[Optional[str], typer.Option("--until", help="Answered before this moment (ISO-8601; excluded).",
                                                 callback=parse.moment)]


class By(str, Enum):
    program = "program"
    tier = "tier"
    account = "account"
    month = "month"


@nps_app.command("record")
def record(
    ctx: typer.Context,
    member_id: Annotated[Optional[str], typer.Argument(metavar="MEMBER_ID", help="Member who answered (or give --account).", callback=parse.text("member_id"))] = None,
    score: Annotated[str, typer.Option("--score", help="0-10: how likely to recommend us.", metavar="<int>",
                                       callback=parse.score)] = ...,
    account: Annotated[Optional[str], typer.Option("--account", help="B2B customer account (default: the member's).", callback=parse.text("account"))] = None,
    comment: Annotated[Optional[str], typer.Option("--comment", help="The answer to \"why?\".", callback=parse.text("comment"))] = None,
    at: AtOpt = None,
    program: Annotated[Optional[str], program_option("Program asked about (default: the configured program, else the member's only one).")] = None,
    response_id: Annotated[Optional[str], typer.Option("--response-id", help="Idempotency key: repeating it records nothing new.", callback=parse.text("response_id"))] = None,
    fmt: FormatOpt = Format.table,
):
    """Record one NPS answer: a score 0-10 and the free-text "why".

    Promoters score 9-10, passives 7-8, detractors 0-6.

    Example: loyaltyctl nps record M00001 --score 9 --comment "friendly baristas"
    """
    from .. import render
    from ..app import nps

    if not member_id and not account:
        raise usage_error(ctx, "give a MEMBER_ID or --account NAME")
    database = db(ctx)
    result = nps.record(database, member_id, score=score, account=account, comment=comment, at=at,
                        program=default_program(program, database), response_id=response_id)
    if fmt is Format.table:
        verb = "already recorded" if result["status"] == "duplicate" else "recorded"
        who = result["member_id"] or f"account {result['account']}"
        print(f"{result['response_id']} {verb}: {who} scored {result['score']} ({result['group']})")
    else:
        render.record(result, fmt=fmt.value, fields=["status", "response_id", "member_id", "program", "account",
                                                     "score", "group", "comment", "answered_at"])


@nps_app.command("summary")
def summary(
    ctx: typer.Context,
    by: Annotated[Optional[By], typer.Option("--by", help="Group by program, tier (at answer time), account or month.")] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    program: ProgramOpt = None,
    account: AccountOpt = None,
    fmt: FormatOpt = Format.table,
):
    """NPS overall or per program, tier, account or month.

    Responses, promoters (9-10), passives (7-8), detractors (0-6), their shares and
    NPS = % promoters - % detractors (-100..100, rounded half up to one decimal).

    A group without responses has no NPS (empty; null in JSON). --by month adds a trend
    chart in table format.

    Example: loyaltyctl nps summary --by month --since 2026-01-01
    """
    from .. import render
    from ..reports import nps

    database = reader(ctx)
    report = nps.summary(database, by.value if by else None, since, until, default_program(program, database), account)
    render.table(report.rows, report.columns, fmt=fmt.value, title="NPS" + (f" by {by.value}" if by else ""),
                 numeric=report.numeric, empty="no responses")
    if by is By.month and fmt is Format.table and report.rows:
        render.bar_chart([(r["month"], r["nps"]) for r in report.rows], title="NPS per month")


@nps_app.command("comments")
def comments(
    ctx: typer.Context,
    detractors: Annotated[bool, typer.Option("--detractors", help="Only detractors (0-6).")] = False,
    promoters: Annotated[bool, typer.Option("--promoters", help="Only promoters (9-10).")] = False,
    passives: Annotated[bool, typer.Option("--passives", help="Only passives (7-8).")] = False,
    account: AccountOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    program: ProgramOpt = None,
    fmt: FormatOpt = Format.table,
):
    """The "why" answers to read and follow up, newest first.

    Example: loyaltyctl nps comments --detractors --account "Acme Ltd"
    """
    from .. import render
    from ..reports import nps

    chosen = [name for name, on in (("detractors", detractors), ("passives", passives), ("promoters", promoters)) if on]
    if len(chosen) > 1:
        raise usage_error(ctx, "choose at most one of --detractors, --passives, --promoters")
    database = reader(ctx)
    report = nps.comments(database, chosen[0] if chosen else None, account, since, until,
                          default_program(program, database))
    render.table(report.rows, report.columns, fmt=fmt.value, title="NPS comments", numeric=report.numeric,
                 empty="no comments")


def register(app: typer.Typer) -> None:
    app.add_typer(nps_app, name="nps", rich_help_panel=PANEL)
