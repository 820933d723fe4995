"""Programs: validate, apply, list, show."""

from __future__ import annotations

from typing import Annotated, List

import typer

from .common import Format, FormatOpt, db

PANEL = "Programs"
program_app = typer.Typer(help="Validate, apply and inspect YAML program definitions.", no_args_is_help=True)
PathsArg = Annotated[List[str], typer.Argument(help="Program files or directories of *.yaml files.")]


@program_app.command("validate")
def validate(paths: PathsArg, fmt: FormatOpt = Format.table):
    """Check program files without touching any database.

    Example: loyaltyctl program validate programs/
    """
    from .. import render, service

    rows = service.validate_programs(paths)
    render.table(rows, ["path", "code", "name", "status"], fmt=fmt.value, title="Programs")


@program_app.command("apply")
def apply(ctx: typer.Context, paths: PathsArg, fmt: FormatOpt = Format.table):
    """Validate all files, then record a new version of each changed program.

    Applying an unchanged file changes nothing; every ledger entry remembers the
    program version that produced it.

    Example: loyaltyctl program apply programs/
    """
    from .. import render, service

    rows = service.apply_programs(db(ctx), paths)
    render.table(rows, ["code", "version", "status", "path"], fmt=fmt.value, title="Applied")


@program_app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = Format.table):
    """List applied programs.

    Example: loyaltyctl program list --format json
    """
    from .. import render, service

    render.table(service.list_programs(db(ctx)),
                 ["code", "name", "version", "currency", "point_value", "rules", "tiers", "expiry_days", "members",
                  "applied_at"], fmt=fmt.value, title="Programs", numeric=["members", "rules"],
                 empty="no programs applied yet")


@program_app.command("show")
def show(ctx: typer.Context, code: Annotated[str, typer.Argument(help="Program code.")], fmt: FormatOpt = Format.table):
    """Show a program's current version: earn rules, tiers, rewards, expiry.

    Example: loyaltyctl program show coffee
    """
    from .. import render, service

    p = service.show_program(db(ctx), code)
    if fmt is Format.json:
        print(render.dumps(p["definition"] | {"version": p["version"]}))
        return
    if fmt is Format.csv:
        render.write_csv(p["earn"], ["index", "rule", "points_per_unit", "event", "points", "partner", "referrer_points",
                                     "referee_points", "when", "once", "limit"])
        return
    render.record({k: p[k] for k in ("code", "name", "version", "currency", "point_value")}
                  | {"expiry": p["expiry"] or "never"}, title=f"Program {code}")
    render.table(p["earn"], ["index", "rule", "points_per_unit", "event", "points", "partner", "referrer_points",
                             "referee_points", "when", "once", "limit"], title="Earn rules", empty="none")
    if p["levels"]:
        render.table(p["levels"], ["name", "threshold", "multiplier", "perks"],
                     title=f"Tiers ({p['tiers']['basis']}, {p['tiers']['window_days']}-day window)")
    render.table(p["rewards"], ["code", "name", "points"], title="Rewards", empty="none")


def register(app: typer.Typer) -> None:
    app.add_typer(program_app, name="program", rich_help_panel=PANEL)
