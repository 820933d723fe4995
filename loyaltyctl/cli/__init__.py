"""The `loyaltyctl` command line: parse, call one service function, render."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from .. import __version__
from .common import Group

HELP = """Run customer loyalty programs on an append-only SQLite ledger.

Exit codes: 0 ok, 1 business or input error (one line on stderr, nothing written), 2 usage error.

Example:  loyaltyctl demo && loyaltyctl member show D0002
"""

# The command module that registers each top-level command: a command line loads only its own
# (start-up time); the root help, completion and tests get every module (`app`).
MODULES = {"member": "members", "history": "members",
           "earn": "transactions", "redeem": "transactions", "refund": "transactions", "adjust": "transactions",
           "explain": "transactions", "program": "programs", "import": "batch", "export": "batch",
           "expire": "jobs", "tiers": "jobs", "report": "reports", "nps": "nps",
           "init": "admin", "demo": "admin", "verify": "admin", "backup": "admin", "restore": "admin",
           "db": "admin"}
ORDER = ("members", "transactions", "programs", "batch", "jobs", "reports", "nps", "admin")


def _base() -> typer.Typer:
    part = typer.Typer(
        cls=Group,
        help=HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    part.callback()(root)
    return part


def _with_modules(names) -> typer.Typer:
    import importlib

    part = _base()
    for name in names:
        module = importlib.import_module(f".{name}", __name__)
        module.register(part)
        if name == "admin":
            module.register_maintenance(part)
    return part


def __getattr__(name: str):
    """`app`: the whole command tree, built when first asked for."""
    if name == "app":
        globals()["app"] = full = _with_modules(ORDER)
        return full
    raise AttributeError(name)


def _version(value: bool):
    if value:
        print(f"loyaltyctl {__version__}")
        raise typer.Exit()


def root(
    ctx: typer.Context,
    db: Annotated[Optional[str], typer.Option("--db", help="Database: a SQLite file or a postgresql:// URL (else $LOYALTYCTL_DB, loyaltyctl.toml, ./loyalty.db).",
                                              show_default=False)] = None,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
):
    from .common import State

    ctx.obj = State(db)
    ctx.call_on_close(ctx.obj.close)  # one command, one connection, closed when it ends


def main() -> None:
    import os
    import sys

    if any(k == "_LOYALTYCTL_COMPLETE" for k in os.environ):
        _with_modules(ORDER)()  # shell completion needs the whole tree
        return
    words = _words(sys.argv[1:])
    module = MODULES.get(words[0]) if words else None
    full = _with_modules([module] if module else ORDER)
    _only(full, sys.argv[1:])()


def _words(argv: list[str]) -> list[str] | None:
    """The command the arguments name, and its subcommand if any (at most two words, options
    and --db's value skipped); None when the root's own help is asked for first."""
    words, i = [], 0
    while i < len(argv) and len(words) < 2:
        arg = argv[i]
        if arg == "--db" and not words:
            i += 2
            continue
        if arg in ("-h", "--help") and not words:
            return None
        if not arg.startswith("-"):
            words.append(arg)
        i += 1
    return words


def _only(full: typer.Typer, argv: list[str]) -> typer.Typer:
    """The app with only the command (or group subcommand) the arguments name (start-up time).

    Typer builds the click tree of every command before running one; this builds
    the one that runs. Help, errors and behaviour are those of the full app: with
    no recognisable command name, or an unknown one, the full app runs; the root's
    own help lists every command without building their options."""
    words = _words(argv)
    if words is None:
        return _with(full, [_summary(c) for c in full.registered_commands],
                     [_group(g, []) for g in full.registered_groups])
    if not words:
        return full if "--version" not in argv else _with(full, [], [])
    commands = _named(full.registered_commands, words[0])
    groups = [g for g in full.registered_groups if g.name == words[0]]
    if not commands and not groups:
        return full
    if groups and len(words) > 1:
        subcommands = _named(groups[0].typer_instance.registered_commands, words[1])
        if subcommands:
            groups = [_group(groups[0], subcommands)]
    return _with(full, commands, groups)


def _named(infos: list, name: str) -> list:
    """The registered commands called `name` on the command line."""
    from typer.main import get_command_name

    return [c for c in infos if (c.name or get_command_name(c.callback.__name__)) == name]


def _with(full: typer.Typer, commands: list, groups: list) -> typer.Typer:
    import copy

    part = copy.copy(full)
    part.registered_commands, part.registered_groups = commands, groups
    return part


def _group(info, commands: list):
    """A copy of a group's registration holding only these commands (and no subgroups)."""
    import copy

    part = copy.copy(info)
    part.typer_instance = _with(info.typer_instance, commands, [])
    return part


def _summary(info):
    """A copy of a command's registration for the root's help page, which shows only its name,
    panel and help: its callback takes no parameters, so none are built."""
    import copy

    def stand_in():
        pass

    stand_in.__name__, stand_in.__doc__ = info.callback.__name__, info.callback.__doc__
    part = copy.copy(info)
    part.callback = stand_in
    return part
