"""Reports: `loyaltyctl report NAME`."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .common import AsOfOpt, Format, FormatOpt, db

PANEL = "Reports"
report_app = typer.Typer(help="Program reports as tables, JSON or CSV.", no_args_is_help=True)
ReportProgramOpt = Annotated[Optional[str], typer.Option("--program", "-p", help="Only this program.")]


def _out(report: dict, fmt: Format, title: str, empty: str = "nothing to report") -> None:
    from .. import render

    render.table(report["rows"], report["columns"], fmt=fmt.value, title=title, numeric=report["numeric"], empty=empty)


@report_app.command("expiring")
def expiring(
    ctx: typer.Context,
    within: Annotated[int, typer.Option("--within", help="Days ahead to look.")] = 30,
    min_points: Annotated[int, typer.Option("--min-points", help="Only members with at least this many points expiring.")] = 1,
    program: ReportProgramOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Members with points expiring soon, to re-engage them before they lose them.

    Example: loyaltyctl report expiring --within 30 --min-points 100 --format csv
    """
    from .. import jobs, render

    rows = jobs.expiring_report(db(ctx), within, min_points, program, as_of)
    render.table(rows, ["member_id", "name", "email", "program_code", "points", "lots", "first_expiry"], fmt=fmt.value,
                 title=f"Points expiring within {within} days", numeric=["points", "lots"], empty="no points expiring")


@report_app.command("balances")
def balances(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", help="How many members.")] = 20,
    program: ReportProgramOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Top members by balance.

    Example: loyaltyctl report balances --limit 10
    """
    from .. import reports

    _out(reports.balances(db(ctx), program, limit, as_of), fmt, "Top balances")


@report_app.command("tiers")
def tiers(
    ctx: typer.Context,
    program: ReportProgramOpt = None,
    as_of: AsOfOpt = None,
    fmt: FormatOpt = Format.table,
):
    """Members per tier, their share and average balance.

    Example: loyaltyctl report tiers --program coffee
    """
    from .. import reports

    _out(reports.tiers(db(ctx), program, as_of), fmt, "Tiers")


def register(app: typer.Typer) -> None:
    app.add_typer(report_app, name="report", rich_help_panel=PANEL)
