"""The `loyaltyctl` command line: parse, call one service function, render."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import __version__
from .common import Group

HELP = """Run customer loyalty programs on an append-only SQLite ledger.

Exit codes: 0 ok, 1 business or input error (one line on stderr, nothing written), 2 usage error.

Example:  loyaltyctl demo && loyaltyctl member show M00001
"""

app = typer.Typer(
    cls=Group,
    help=HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool):
    if value:
        print(f"loyaltyctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[Optional[str], typer.Option("--db", help="Database file (else $LOYALTYCTL_DB, loyaltyctl.toml, ./loyalty.db).",
                                              show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
):
    from .common import State

    ctx.obj = State(db)


from . import admin, batch, jobs, members, programs, reports, transactions  # noqa: E402  (register commands)

members.register(app)
transactions.register(app)
programs.register(app)
batch.register(app)
jobs.register(app)
reports.register(app)
admin.register(app)
admin.register_maintenance(app)


def main() -> None:
    app()
