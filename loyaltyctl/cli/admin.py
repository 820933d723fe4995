"""Admin: init, demo."""

from __future__ import annotations

import typer

from .common import db, state

PANEL = "Admin"


def register(app: typer.Typer) -> None:
    @app.command(rich_help_panel=PANEL)
    def init(ctx: typer.Context):
        """Create the database (a no-op on an existing one).

        Example: loyaltyctl --db /var/lib/loyalty/loyalty.db init
        """
        import os

        path = state(ctx).path
        existed = os.path.exists(path)
        db(ctx, create=True)
        print(f"{'database already exists' if existed else 'created'}: {path}")

    @app.command(rich_help_panel=PANEL)
    def demo(ctx: typer.Context):
        """Build a demo ledger from the example programs and show balances and tiers.

        Creates the database if needed; running it again only shows the tables.

        Example: loyaltyctl --db demo.db demo
        """
        from .. import demo as demo_data
        from .. import render, reports

        database = db(ctx, create=True)
        result = demo_data.build(database)
        print(f"demo ledger {'built' if result['created'] else 'already present'} in {state(ctx).path}")
        top = reports.balances(database, limit=15)
        render.table(top["rows"], top["columns"], title="Top member balances", numeric=top["numeric"])
        tiers = reports.tiers(database)
        render.table(tiers["rows"], tiers["columns"], title="Tier summary", numeric=tiers["numeric"])
