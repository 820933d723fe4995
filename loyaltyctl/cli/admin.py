"""Admin: init, demo."""

from __future__ import annotations

from typing import Annotated

import typer

from .common import Format, FormatOpt, db, flat, plural, reader, state

PANEL = "Admin"
db_app = typer.Typer(help="Whole-ledger operations: copy a ledger between SQLite and PostgreSQL.", no_args_is_help=True)


@db_app.command("copy")
def copy(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="Ledger to copy: a file or a postgresql:// URL (only read).")],
    target: Annotated[str, typer.Argument(metavar="TARGET", help="Where to copy it: a new or empty file, or a postgresql:// URL of an empty schema.")],
    fmt: FormatOpt = Format.table,
):
    """Copy a whole ledger between backends, ids kept, then verify the copy.

    SQLite to PostgreSQL to grow, PostgreSQL to SQLite for an offline copy (or between two of
    a kind). The target must hold no data: a new file, an empty schema, or a ledger just made
    by init; anything else is refused untouched. The copy is one transaction on the target,
    verified before it commits; the source is read in one snapshot and never written.
    The global --db option plays no part.

    Example: loyaltyctl db copy loyalty.db postgresql://loyalty@db.example.com:5432/loyalty
    """
    from .. import render
    from ..app import admin as maintenance

    r = maintenance.copy_ledger(source, target)
    if fmt is Format.table:
        print(f"copied {r['source']} to {r['target']}: {r['entries']} {'entry' if r['entries'] == 1 else 'entries'}, "
              f"{plural(r['members'], 'member')}, {plural(r['lots'], 'lot')} ({r['rows']} rows), verified")
    else:
        render.record(r, fmt=fmt.value)


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel=PANEL)
    def init(ctx: typer.Context):
        """Create the database (a no-op on an existing one).

        Only init and demo make a ledger: every other command refuses a file that is not
        one. init makes one in a new or empty file and refuses any other file.

        Example: loyaltyctl --db /var/lib/loyalty/loyalty.db init
        """
        from ..store.connection import identify

        path = state(ctx).path
        existed = identify(path).kind == "ledger"
        db(ctx, create=True)
        print(f"{'database already exists' if existed else 'created'}: {path}")

    @app.command(rich_help_panel=PANEL)
    def demo(ctx: typer.Context):
        """Build a demo ledger from the example programs; show balances, tiers and a basket.

        Creates the database if needed; running it again only shows the tables.

        Example: loyaltyctl --db demo.db demo
        """
        from .. import render
        from ..app import demo as demo_data
        from ..app import explain as explaining
        from ..reports import points, tiers as tier_report

        database = db(ctx, create=True)
        result = demo_data.build(database)
        print(f"demo ledger {'built' if result['created'] else 'already present'} in {state(ctx).path}")
        top = points.balances(database, limit=15)
        render.table(top.rows, top.columns, title="Top member balances", numeric=top.numeric)
        summary = tier_report.tiers(database)
        render.table(summary.rows, summary.columns, title="Tier summary", numeric=summary.numeric)
        basket = explaining.explain(database, demo_data.BASKET_TXN)  # a purchase with lines, point by point
        print(f"A basket purchase (loyaltyctl explain {demo_data.BASKET_TXN}): {basket['amount']} for "
              f"{basket['points']} points")
        for line in basket["explanation"]:
            print(f"  {line}")


def register_maintenance(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db", rich_help_panel=PANEL)

    @app.command(rich_help_panel=PANEL)
    def verify(ctx: typer.Context, fmt: FormatOpt = Format.table):
        """Check the ledger's invariants; prints OK or each violation (exit 1 on any).

        Checks SQLite integrity and foreign keys, cached balances and lots against
        the ledger entries, consumed + expired + remaining = original for every lot,
        that no redemption overdrew, and that every entry cites an existing rule.

        Example: loyaltyctl verify --format json
        """
        from .. import render
        from ..app import admin as maintenance

        result = maintenance.verify(reader(ctx))
        if fmt is not Format.table:
            render.record(result if fmt is Format.json else flat(result), fmt=fmt.value)
        elif result["ok"]:
            print(f"OK: {result['path']} ({result['entries']} entries, {result['lots']} lots, "
                  f"{result['enrollments']} enrollments)")
        else:
            for v in result["violations"]:
                print(f"{v['check']}: {v['detail']}")
        if not result["ok"]:
            raise typer.Exit(1)

    @app.command(rich_help_panel=PANEL)
    def backup(
        ctx: typer.Context,
        dest: Annotated[str, typer.Argument(metavar="FILE", help="Backup file to create (private, 0600).")],
        force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file (never the ledger itself).")] = False,
    ):
        """Make a consistent, verified copy of the database while others keep writing.

        Example: loyaltyctl backup /backups/loyalty-$(date +%F).db
        """
        from ..app import admin as maintenance

        r = maintenance.backup(reader(ctx), dest, force=force)
        print(f"backed up to {r['backup']} ({r['entries']} entries, {r['members']} members), verified")

    @app.command(rich_help_panel=PANEL)
    def restore(
        ctx: typer.Context,
        src: Annotated[str, typer.Argument(metavar="FILE", help="Backup file to restore from (read only, from anywhere).")],
        force: Annotated[bool, typer.Option("--force", help="Overwrite the existing database.")] = False,
    ):
        """Replace the database with a verified backup (refuses to overwrite without --force).

        Example: loyaltyctl restore /backups/loyalty-2026-11-22.db --force
        """
        from ..app import admin as maintenance

        r = maintenance.restore(src, state(ctx).path, force=force)
        print(f"restored {r['restored']} from {r['from']} ({r['entries']} entries, {r['members']} members)")
