"""What every command group shares: the database option, --format, errors."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import sys

import typer
from typer.core import TyperGroup

from ..errors import LoyaltyError


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output: table (default), json or csv.")]
AtOpt = Annotated[Optional[str], typer.Option("--at", help="When it takes effect (ISO-8601; no zone = UTC). Default: now.")]
AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help="Show the state as it stood at this moment (ISO-8601). Default: now.")]
TxnOpt = Annotated[Optional[str], typer.Option("--txn", help="Idempotency key: repeating the command with the same key records nothing new (ids starting with 'expire-' are reserved).")]


def _complete_programs(ctx: typer.Context, incomplete: str) -> list[str]:
    return _complete(ctx, "SELECT code FROM programs ORDER BY code", incomplete)


def _complete_rewards(ctx: typer.Context, incomplete: str) -> list[str]:
    return _complete(ctx, "SELECT DISTINCT definition FROM program_versions", incomplete, rewards=True)


def _complete(ctx, sql: str, incomplete: str, rewards: bool = False) -> list[str]:
    """Dynamic completion from the database the command line names (--db, else as usual); silent on any problem."""
    try:
        import json
        import os
        import sqlite3

        from ..store.connection import resolve_path

        path = resolve_path(ctx.find_root().params.get("db") if ctx is not None else None)
        if not os.path.exists(path):
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            values = [r[0] for r in conn.execute(sql)]
        finally:
            conn.close()
        if rewards:
            values = sorted({r["code"] for v in values for r in json.loads(v).get("rewards") or []})
        return [v for v in values if v.startswith(incomplete)]
    except Exception:
        return []


ProgramOpt = Annotated[
    Optional[str],
    typer.Option("--program", "-p", help="Program code; may be omitted when the member is in one program.",
                 autocompletion=_complete_programs),
]
RewardOpt = Annotated[Optional[str], typer.Option("--reward", help="Reward code from the program's catalogue.",
                                                  autocompletion=_complete_rewards)]


class Group(TyperGroup):
    """Turns the service layer's typed errors into `Error: message` on stderr and their exit code."""

    def main(self, *args, **kwargs):
        import os

        from .coerce import install

        install(self)  # plain parameters skip pydantic (start-up time)
        if os.environ.get("NO_COLOR") and (sys.stdout.isatty() or sys.stderr.isatty()):
            import typer.rich_utils  # help and usage errors: plain text on a terminal too

            typer.rich_utils.COLOR_SYSTEM = None
        if os.environ.get("_LOYALTYCTL_COMPLETE"):
            # Shell completion protocol (add_completion=False keeps --install-completion out of
            # the help, and with it Typer's registration of its bash/zsh/fish classes).
            try:
                from typer._completion_classes import completion_init
            except ImportError:  # pragma: no cover - other Typer layouts
                from typer.completion import completion_init
            completion_init()
        return super().main(*args, **kwargs)

    # `loyaltyctl --help` shows the panels in the order an operator's day meets them; Admin last.
    PANELS = ("Members", "Transactions", "Programs", "Import and export", "Jobs", "Reports", "Admin")

    def list_commands(self, ctx):
        names = super().list_commands(ctx)

        def rank(name: str) -> float:
            panel = getattr(self.commands[name], "rich_help_panel", None)
            return self.PANELS.index(panel) if panel in self.PANELS else len(self.PANELS) - 1.5
        return sorted(names, key=rank)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LoyaltyError as exc:
            print(f"Error: {exc.named(option_name)}", file=sys.stderr)
            raise typer.Exit(exc.exit_code) from None
        except Exception as exc:
            message = _storage_error(exc)
            if message is None:
                raise  # a bug: keep the traceback
            print(f"Error: {message}", file=sys.stderr)
            raise typer.Exit(1) from None


# Fields whose command-line spelling is not `--field-name`.
_OPTION_NAMES = {"occurred_at": "--at", "joined_at": "--at", "answered_at": "--at", "txn_id": "--txn",
                 "member_id": "MEMBER_ID", "ref_txn_id": "TXN_ID"}


def option_name(field: str) -> str:
    """The command line's name for an error's field (the core names fields as CSV columns)."""
    if field in _OPTION_NAMES:
        return _OPTION_NAMES[field]
    if field.islower() and field.replace("_", "").isalnum():
        return "--" + field.replace("_", "-")
    return field


_STORAGE = ("disk I/O error", "database or disk is full", "readonly database", "unable to open database file",
            "database is locked")


def _storage_error(exc: Exception) -> str | None:
    """A damaged, full or unwritable database file is the operator's problem, not a bug: one line."""
    import sqlite3

    text = str(exc)
    if type(exc) is sqlite3.DatabaseError or (isinstance(exc, sqlite3.OperationalError)
                                              and any(s in text for s in _STORAGE)):
        return f"database error: {text} (check the file with `loyaltyctl verify`; restore a backup if damaged)"
    return None


class State:
    def __init__(self, db_path: str | None):
        self.db_flag = db_path
        self._db = None

    @property
    def path(self) -> str:
        from ..store.connection import resolve_path

        return resolve_path(self.db_flag)

    def db(self, create: bool = False):
        if self._db is None:
            from ..store.connection import open_db

            self._db = open_db(self.path, create=create)
        return self._db


def state(ctx: typer.Context) -> State:
    return ctx.find_root().obj


def db(ctx: typer.Context, create: bool = False):
    return state(ctx).db(create)


def default_program(value: str | None) -> str | None:
    if value:
        return value
    from ..config import default_program as configured

    return configured()
