"""Programs: validate, apply, list, show."""

from __future__ import annotations

from typing import Annotated, List, Optional

import typer

from . import parse
from .common import Format, FormatOpt, complete_programs, db, one_line, reader

PANEL = "Programs"
program_app = typer.Typer(help="Validate, apply and inspect YAML program definitions.", no_args_is_help=True)
PathsArg = Annotated[List[str], typer.Argument(metavar="PATH...", help="Program files or directories of *.yaml files.")]


@program_app.command("validate")
def validate(paths: PathsArg, fmt: FormatOpt = Format.table):
    """Check program files without touching any database.

    Lists the valid programs; each bad file gets one `Error:` line on stderr (exit 1).

    Example: loyaltyctl program validate programs/
    """
    import sys

    from .. import render
    from ..app import programs

    rows, errors = programs.validate(paths)
    render.table(rows, ["path", "code", "name", "status"], fmt=fmt.value, title="Programs", empty="no valid programs")
    for message in errors:
        print(f"Error: {one_line(message)}", file=sys.stderr)
    if errors:
        raise typer.Exit(1)


@program_app.command("apply")
def apply(
    ctx: typer.Context,
    paths: PathsArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking (scripts).")] = False,
    fmt: FormatOpt = Format.table,
):
    """Validate all files, show what changes, then record a new version of each changed program.

    Applying an unchanged file changes nothing; every ledger entry remembers the
    program version that produced it. On a terminal it asks before applying.

    Example: loyaltyctl program apply programs/ --yes
    """
    import sys

    from .. import render
    from ..app import explain, programs

    database = db(ctx)
    if fmt is Format.table:
        plans = explain.plan(database, paths)
        if any(p["changes"] for p in plans):
            _show_plan([p for p in plans if p["changes"]])
            if not yes and sys.stdin.isatty() and not typer.confirm("Apply these changes?", default=False):
                print("nothing applied", file=sys.stderr)
                raise typer.Exit(1)
    rows = programs.apply(database, paths)
    render.table(rows, ["code", "version", "status", "path"], fmt=fmt.value, title="Applied")


@program_app.command("plan")
def plan(
    ctx: typer.Context,
    paths: PathsArg,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Judge the effects at this moment (default now).",
                                                 callback=parse.moment)] = None,
    fmt: FormatOpt = Format.table,
):
    """Show what applying changed definitions would change, and its effect on today's members.

    Lists changed rules, rates, tiers, rewards and expiry against the applied
    version; how many members would move up or down at the next tier review; and
    how outstanding liability and expiring points would move. Writes nothing.

    Example: loyaltyctl program plan programs/coffee.yaml
    """
    from .. import render
    from ..app import explain

    plans = explain.plan(reader(ctx), paths, as_of)
    if fmt is Format.json:
        print(render.dumps(plans))
    elif fmt is Format.csv:
        render.write_csv([dict(code=p["code"], **c) for p in plans for c in p["changes"]],
                         ["code", "field", "change", "before", "after"])
    else:
        _show_plan(plans)


def _show_plan(plans: list[dict]) -> None:
    from .. import render

    for p in plans:
        if not p["changes"]:
            print(f"{p['code']} ({p['path']}): unchanged")
            continue
        render.table(p["changes"], ["field", "change", "before", "after"],
                     title=f"{p['code']}: {p['status']} -> version {p['version']} ({p['path']})")
        effects = p["effects"]
        if effects:
            moves = effects.get("tier_moves_at_next_review")
            lines = []
            if moves:
                lines.append(f"at the next tier review: {moves['up']} up, {moves['down']} down, "
                             f"{moves['unchanged']} unchanged")
                same = effects.get("tier_moves_without_change")
                if same:
                    lines.append(f"  (without this change: {same['up']} up, {same['down']} down)")
            lines.append(f"outstanding points {effects['outstanding_points']}: liability "
                         f"{effects['liability_before']} -> {effects['liability_after']}")
            lines.append(f"expiring within 30 days: {effects['expiring_30d_points']} points, within 90 days: "
                         f"{effects['expiring_90d_points']} points")
            for key in ("note_expiry", "note_inactivity", "note_tiers", "note_eligibility", "note_validity"):
                if effects.get(key):
                    lines.append(effects[key])
            for line in lines:
                print(f"  {line}")


@program_app.command("list")
def list_(ctx: typer.Context, fmt: FormatOpt = Format.table):
    """List applied programs.

    Example: loyaltyctl program list --format json
    """
    from .. import render
    from ..app import programs

    render.table(programs.listing(reader(ctx)),
                 ["code", "name", "version", "currency", "point_value", "rules", "tiers", "expiry_days", "members",
                  "applied_at"], fmt=fmt.value, title="Programs", numeric=["members", "rules"],
                 empty="no programs applied yet")


@program_app.command("show")
def show(
    ctx: typer.Context,
    code: Annotated[str, typer.Argument(metavar="CODE", help="Program code.", autocompletion=complete_programs)],
    fmt: FormatOpt = Format.table,
):
    """Show a program's current version: earn rules, tiers, rewards, expiry.

    Example: loyaltyctl program show coffee
    """
    from .. import render
    from ..app import programs

    p = programs.show(reader(ctx), code)
    if fmt is Format.json:
        print(render.dumps(p["definition"] | {"version": p["version"]}))
        return
    columns = ["index", "rule", "points_per_unit", "event", "points", "partner", "referrer_points", "referee_points",
               "when", "once", "limit"]
    if any(r.get("scope") for r in p["earn"]):
        columns[3:3] = ["per", "scope"]  # a program with baskets: what each spend rule covers
    if fmt is Format.csv:
        render.write_csv(p["earn"], columns)
        return
    extra = {k: v for k, v in p["definition"].items()
             if k in ("earn_on", "starts_at", "ends_at", "eligible_tags", "milestones")}
    render.record({k: p[k] for k in ("code", "name", "version", "currency", "point_value")}
                  | {"expiry": p["expiry"] or "never"} | extra, title=f"Program {code}")
    used = [c for c in columns if c in ("index", "rule") or any(r.get(c) not in (None, "") for r in p["earn"])]
    render.table(p["earn"], used, title="Earn rules", empty="none")  # columns no rule uses are left out
    if p["catalogue"]:
        render.table(p["catalogue"], ["sku", "category", "multiplier"], title="Catalogue")
    if p["levels"]:
        render.table(p["levels"], ["name", "threshold", "multiplier", "perks"],
                     title=f"Tiers ({p['tiers']['basis']}, {p['tiers']['window_days']}-day window)")
    per_point = any(r.get("required_points") for r in p["rewards"])
    render.table(p["rewards"], ["code", "name", "points"] + (["required_points", "value_per_point"] if per_point else []),
                 title="Rewards", empty="none")


def register(app: typer.Typer) -> None:
    app.add_typer(program_app, name="program", rich_help_panel=PANEL)
