"""Reports: `loyaltyctl report NAME`."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from . import parse
from .common import AllOpt, AsOfOpt, Format, FormatOpt, LimitOpt, default_program, once, page_size, program_option, reader

PANEL = "Reports"
report_app = typer.Typer(help="Program reports as tables, JSON or CSV.", no_args_is_help=True)
ReportProgramOpt = Annotated[Optional[str], program_option("Only this program (default: the configured program, else all).")]


class Period(str, Enum):
    month = "month"
    quarter = "quarter"


def _open(ctx: typer.Context, program: str | None):
    """The ledger, read-only, and the program the report is about (the configured one by default)."""
    database = reader(ctx)
    return database, default_program(program, database)


def _out(report, fmt: Format, title: str, empty: str = "nothing to report", *, limit: int | None = None,
         totals=None, what: str = "points") -> None:
    """Render a report; a long list gets `limit` rows, then how many more and its `totals`
    (count, points: a query over the whole list, run only when needed)."""
    from .. import render

    if totals is None:
        render.table(report.rows, report.columns, fmt=fmt.value, title=title, numeric=report.numeric, empty=empty,
                     limit=limit)
        return
    totals = once(totals)
    render.table(report.rows, report.columns, fmt=fmt.value, title=title, numeric=report.numeric, empty=empty,
                 limit=limit, noun="members", count=lambda: totals()[0],
                 summary=lambda: f"{totals()[0]:,} member{'' if totals()[0] == 1 else 's'}, {totals()[1]:,} {what}")


@report_app.command("expiring")
def expiring(
    ctx: typer.Context,
    within: Annotated[int, typer.Option("--within", help="Days ahead to look (1-36500).", callback=parse.days)] = 30,
    min_points: Annotated[int, typer.Option("--min-points", help="Only members with at least this many points expiring.",
                                            callback=parse.count)] = 1,
    program: ReportProgramOpt = None,
    as_of: AsOfOpt = None,
    limit: LimitOpt = None,
    every: AllOpt = False,
    fmt: FormatOpt = Format.table,
):
    """Members with points expiring soon, to re-engage them before they lose them.

    Example: loyaltyctl report expiring --within 30 --min-points 100 --format csv
    """
    from ..reports import points

    database, code = _open(ctx, program)
    _out(points.expiring(database, within, min_points, code, as_of), fmt, f"Points expiring within {within} days",
         empty="no points expiring", limit=page_size(ctx, fmt, limit, every), what="points expiring",
         totals=lambda: points.expiring_total(database, within, min_points, code, as_of))


@report_app.command("balances")
def balances(
    ctx: typer.Context,
    limit: Annotated[Optional[int], typer.Option("--limit", help="How many members.  [default: 20]",
                                                 callback=parse.count, show_default=False)] = None,
    every: Annotated[bool, typer.Option("--all", help="Every member, largest balance first (streamed as read).")] = False,
    program: ReportProgramOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Top members by balance.

    Example: loyaltyctl report balances --limit 10
    """
    from ..app import members
    from ..reports import points

    database, code = _open(ctx, program)
    page = page_size(ctx, Format.json, limit, every) if limit is not None or every else 20
    # one row more than shown, so the table can say whether there are more
    report = points.balances(database, code, None if page is None else page + 1, as_of)
    _out(report, fmt, "Top balances", limit=page, totals=lambda: members.listing_total(database, code, None, as_of),
         what="points in all")


SinceOpt = Annotated[Optional[str], typer.Option("--since", help="Period start, included (ISO-8601).", callback=parse.moment)]
UntilOpt = Annotated[Optional[str], typer.Option("--until", help="Period end, excluded (ISO-8601). Default: now.",
                                                 callback=parse.moment)]


@report_app.command("milestones")
def milestones(
    ctx: typer.Context,
    since: Annotated[str, typer.Option("--since", help="Period start, included (ISO-8601).", callback=parse.moment)],
    until: UntilOpt = None,
    program: ReportProgramOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Members who crossed a points milestone or moved tier in a period, for an e-mail tool.

    Points milestones are the program's `milestones:` (points earned, before any
    claw-back, as member show's lifetime_earned); tier moves are up or down, by
    earning, review or a manual tier. Erased members have no e-mail address.

    Example: loyaltyctl report milestones --since 2026-11-01 --format csv > milestones.csv
    """
    from ..reports import milestones as report

    database, code = _open(ctx, program)
    _out(report.milestones(database, since, until, code), fmt, "Milestones", empty="no milestones in the period")


@report_app.command("tiers")
def tiers(
    ctx: typer.Context,
    program: ReportProgramOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Members per tier, their share, balances, qualifying totals and who is near the next tier.

    Average qualifying spend (points for points-basis programs) is over the tier window;
    near next counts members within 10% of the next tier's threshold (worth a nudge).
    Table format adds a bar chart.

    Example: loyaltyctl report tiers --program coffee
    """
    from .. import render
    from ..reports import tiers as tier_report

    database, code = _open(ctx, program)
    report = tier_report.tiers(database, code, as_of)
    _out(report, fmt, "Tiers")
    if fmt is Format.table and report.rows:
        render.bar_chart([(f"{r['program']} {r['tier'] or '(no tiers)'}", r["members"]) for r in report.rows],
                         title="Members per tier")


@report_app.command("liability")
def liability(
    ctx: typer.Context,
    program: ReportProgramOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Outstanding unexpired points per program and their value: what is owed to members.

    Value = points x point_value; also how much of it expires within 30 and 90 days.

    Example: loyaltyctl report liability --as-of 2026-12-31
    """
    from ..reports import points

    _out(points.liability(*_open(ctx, program), as_of), fmt, "Points liability")


@report_app.command("roi")
def roi(
    ctx: typer.Context,
    cost: Annotated[Optional[str], typer.Option("--cost", help="Operating cost of the whole period (default: the program's cost_per_month x months).",
                                                callback=parse.cost)] = None,
    program: ReportProgramOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Return on the program over a period (default: since the first enrollment, until now).

    \b
    revenue = members' purchases in the period, net of refunds;
    repeat revenue = those made after the member's first purchase ever;
    reward cost = points redeemed in the period (net of cancellations)
      x point_value;
    operating cost = --cost, else cost_per_month x calendar months in the
      period (pro-rated by the seconds of each month), else 0;
    ROI % = (repeat revenue - reward cost - operating cost)
      / (reward cost + operating cost) x 100.

    Example: loyaltyctl report roi --program coffee --since 2026-01-01 --until 2026-07-01 --cost 1800
    """
    from ..reports import revenue

    _out(revenue.roi(*_open(ctx, program), since, until, cost), fmt, "Program ROI")


@report_app.command("churn")
def churn(
    ctx: typer.Context,
    period: Annotated[Period, typer.Option("--period", help="Calendar months or quarters (UTC).")] = Period.month,
    program: ReportProgramOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Active members, members lost and churn rate per month or quarter.

    Active = any purchase in the period; lost = active in the previous period, no purchase
    in this one; churn % = lost / previous period's active. The period not over yet is
    partial: its lost and churn % stay empty until it ends.

    Example: loyaltyctl report churn --period quarter --since 2026-01-01
    """
    from ..reports import activity

    database, code = _open(ctx, program)
    _out(activity.churn(database, period.value, code, since, until), fmt, f"Churn per {period.value}")


@report_app.command("at-risk")
def at_risk(
    ctx: typer.Context,
    factor: Annotated[str, typer.Option("--factor", help="Flag when the time since the last purchase exceeds this many median gaps (a positive number up to 1000, up to 4 decimal places).",
                                        callback=parse.factor)] = "2",
    program: ReportProgramOpt = None,
    as_of: AsOfOpt = None,
    limit: LimitOpt = None,
    every: AllOpt = False,
    fmt: FormatOpt = Format.table,
):
    """Members to re-engage, largest balance at stake first.

    Those whose time since their last purchase exceeds --factor times their own median
    gap between purchases (at least 3 purchases), and those with points expiring within
    30 days and no purchase or redemption in the last 60 days.

    Example: loyaltyctl report at-risk --factor 3 --format csv
    """
    from ..reports import activity

    database, code = _open(ctx, program)
    _out(activity.at_risk(database, factor, code, as_of), fmt, "Members at risk", empty="no members at risk",
         limit=page_size(ctx, fmt, limit, every), what="points at stake",
         totals=lambda: activity.at_risk_total(database, factor, code, as_of))


@report_app.command("ticket")
def ticket(
    ctx: typer.Context,
    program: ReportProgramOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Average purchase value of members vs non-members, and of new vs settled members.

    Members vs anonymous (non-member) sales, and members in
    their first 90 days after joining vs afterwards (purchases before joining are not
    recorded, so "before vs after joining" is read as early vs settled membership).
    Member purchases count net of refunds; wholly refunded ones are left out.

    Example: loyaltyctl report ticket --since 2026-01-01
    """
    from ..reports import revenue

    _out(revenue.ticket(*_open(ctx, program), since, until), fmt, "Average ticket")


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report", rich_help_panel=PANEL)
