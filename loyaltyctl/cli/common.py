"""What every command group shares: the database option, --format, errors."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Annotated, Optional

import typer
from typer.core import TyperGroup

from ..errors import LoyaltyError
from . import parse


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="Output: table (default), json or csv.")]
AtOpt = Annotated[Optional[str], typer.Option("--at", help="When it takes effect (ISO-8601; no zone = UTC). Default: now.",
                                              callback=parse.moment)]
AsOfOpt = Annotated[Optional[str], typer.Option("--as-of", help="Show the state as it stood at this moment (ISO-8601). Default: now.",
                                                callback=parse.moment)]
TxnOpt = Annotated[Optional[str], typer.Option("--txn", help="Idempotency key: repeating the command with the same key records nothing new (ids starting with 'expire-' are reserved).", callback=parse.text("txn_id"))]
LimitOpt = Annotated[Optional[int], typer.Option(
    "--limit", help="Show at most this many rows (default on a terminal: one screenful, then a line saying how "
    "many more; elsewhere: every row).", callback=parse.count, show_default=False)]
AllOpt = Annotated[bool, typer.Option("--all", help="Show every row, on a terminal too (streamed as read).")]
ForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")]
MemberArg = Annotated[str, typer.Argument(metavar="MEMBER_ID", help="Member id.", callback=parse.text("member_id"))]
TxnArg = Annotated[str, typer.Argument(metavar="TXN_ID", help="Transaction id (as in history or exports).", callback=parse.text("txn_id"))]


def complete_programs(ctx: typer.Context, incomplete: str) -> list[str]:
    return _complete(ctx, incomplete, lambda d: [d["code"]])


def complete_rewards(ctx: typer.Context, incomplete: str) -> list[str]:
    return _complete(ctx, incomplete, lambda d: [r["code"] for r in d.get("rewards") or []])


def complete_tiers(ctx: typer.Context, incomplete: str) -> list[str]:
    return _complete(ctx, incomplete, lambda d: [lv["name"] for lv in (d.get("tiers") or {}).get("levels") or []])


def complete_events(ctx: typer.Context, incomplete: str) -> list[str]:
    return _complete(ctx, incomplete, lambda d: [r["event"] for r in d.get("earn") or [] if r.get("rule") == "event"])


def complete_partners(ctx: typer.Context, incomplete: str) -> list[str]:
    return _complete(ctx, incomplete, lambda d: [r["partner"] for r in d.get("earn") or [] if r.get("rule") == "partner"])


CURRENT_DEFINITIONS = """SELECT v.definition FROM programs p
    JOIN program_versions v ON v.program_code = p.code AND v.version = p.current_version ORDER BY p.code"""


def _complete(ctx, incomplete: str, values) -> list[str]:
    """Codes for <TAB> from the current program versions in the database the command line names
    (--db, else as usual), of the program given with --program if any; silent on any problem,
    and never creating or changing a file."""
    try:
        import json
        import os

        from ..store.connection import peek, resolve_path

        path = resolve_path(ctx.find_root().params.get("db") if ctx is not None else None)
        if not os.path.isfile(path):
            return []
        conn = peek(path)
        try:
            definitions = [json.loads(r[0]) for r in conn.execute(CURRENT_DEFINITIONS)]
        finally:
            conn.close()
        chosen = (ctx.params.get("program") if ctx is not None else None) or None
        found = {v for d in definitions if chosen in (None, d.get("code")) for v in values(d)}
        return sorted(v for v in found if isinstance(v, str) and v.startswith(incomplete))
    except Exception:
        return []


ProgramOpt = Annotated[
    Optional[str],
    typer.Option("--program", "-p", help="Program code; may be omitted when the member is in one program.",
                 autocompletion=complete_programs, callback=parse.text("program")),
]
RewardOpt = Annotated[Optional[str], typer.Option("--reward", help="Reward code from the program's catalogue.", callback=parse.text("reward"),
                                                  autocompletion=complete_rewards)]


def flat(record: dict) -> dict:
    """One record as one CSV row with the same keys as its JSON: nested objects (and lists of
    them) become their JSON text; lists of plain values are `;`-joined by the CSV writer."""
    import json

    def cell(value):
        nested = isinstance(value, dict) or isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value)
        return json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":")) if nested else value

    return {k: cell(v) for k, v in record.items()}


PAGE_MARGIN = 6  # lines a first screen keeps for the title, header, rule, "more" line, totals and prompt


def page_size(ctx: typer.Context, fmt: Format, limit: int | None, every: bool) -> int | None:
    """How many rows a list shows: --limit, else every row with --all, off a terminal or in JSON
    and CSV, else what fits the terminal (the rest is one line away: --all, --format csv)."""
    if limit is not None and every:
        raise usage_error(ctx, "--limit and --all cannot be used together")
    if limit is not None or every:
        return limit
    if fmt is Format.table and sys.stdout.isatty():
        from ..render import height

        return max(height() - PAGE_MARGIN, 5)
    return None


def once(compute):
    """A query run at most once, when a renderer first asks for it (totals, counts)."""
    import functools

    return functools.cache(compute)


def plural(n: int, noun: str) -> str:
    """"1 lot", "2 lots": summaries read as sentences."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def program_option(help: str) -> typer.models.OptionInfo:
    """--program/-p with this help, completed from the database."""
    return typer.Option("--program", "-p", help=help, autocompletion=complete_programs, callback=parse.text("program"))


class Group(TyperGroup):
    """Turns errors into one `Error: message` line on stderr and an exit code: usage errors 2,
    business errors (the service layer's typed errors) 1, never a traceback for either."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        self._prepare()
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        ClickException = _click_exceptions().ClickException
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if type(rv) is int else 0
        except ClickException as exc:
            code = _usage_error(exc)
        except typer.Abort:
            print("Aborted.", file=sys.stderr)
            code = 1
        except BrokenPipeError:  # help piped into `head`
            code = _reader_gone()
        sys.exit(_flushed(code))

    def _prepare(self) -> None:
        import os

        from .coerce import install

        install(self)  # plain parameters skip pydantic (start-up time)
        _untyped_flags(self)
        _help_pages(self)  # they follow NO_COLOR; usage errors are ours (_usage_error) and do too
        if os.environ.get("_LOYALTYCTL_COMPLETE"):
            # Shell completion protocol (add_completion=False keeps --install-completion out of
            # the help, and with it Typer's registration of its bash/zsh/fish classes).
            try:
                from typer._completion_classes import completion_init
            except ImportError:  # pragma: no cover - other Typer layouts
                from typer.completion import completion_init
            completion_init()

    # `loyaltyctl --help` shows the panels in the order an operator's day meets them; Admin last.
    PANELS = ("Members", "Transactions", "Programs", "Import and export", "Jobs", "Reports", "Admin")

    def list_commands(self, ctx):
        names = super().list_commands(ctx)

        def rank(name: str) -> float:
            panel = getattr(self.commands[name], "rich_help_panel", None)
            return self.PANELS.index(panel) if panel in self.PANELS else len(self.PANELS) - 1.5
        return sorted(names, key=rank)

    def invoke(self, ctx):
        import sqlite3

        try:
            return super().invoke(ctx)
        except LoyaltyError as exc:
            fail(exc.named(option_name), exc.exit_code)
        except BrokenPipeError:
            raise typer.Exit(_reader_gone()) from None
        except OSError as exc:  # a full disk, a closed or unwritable stream, a file we may not read
            fail(_os_error(exc), 1)
        except ValueError as exc:
            if "null byte" not in str(exc):
                raise  # a bug: keep the traceback
            fail("a file name contains a NUL character", 1)  # from a config file: argv cannot hold one
        except sqlite3.Error as exc:
            message = _storage_error(exc, ctx)
            if message is None:
                raise  # a bug: keep the traceback
            fail(message, 1)


# Fields whose command-line spelling is not `--field-name`.
_OPTION_NAMES = {"occurred_at": "--at", "joined_at": "--at", "answered_at": "--at", "txn_id": "--txn",
                 "member_id": "MEMBER_ID", "ref_txn_id": "TXN_ID", "lines": "--line",
                 "paid_points": "--pay-points", "search_text": "TEXT"}


def option_name(field: str) -> str:
    """The command line's name for an error's field (the core names fields as CSV columns)."""
    if field in _OPTION_NAMES:
        return _OPTION_NAMES[field]
    if field.islower() and field.replace("_", "").isalnum():
        return "--" + field.replace("_", "-")
    return field


def _untyped_flags(command) -> None:
    """Help shows no `<bool>` type for on/off flags (--force, --yes, --help ...): they take no value."""
    for param in getattr(command, "params", []):
        if getattr(param, "is_bool_flag", False):
            param.metavar = ""
    help_option = getattr(command, "_help_option", None)  # made by coerce.install
    if help_option is not None:
        help_option.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _untyped_flags(sub)


def _help_pages(command) -> None:
    """Help pages drawn by cli/helptext (Typer's layout without typer.rich_utils' imports),
    imported only when a page is asked for; TYPER_USE_RICH=0 keeps click's plain pages."""
    if getattr(command, "rich_markup_mode", None) == "rich":
        command.format_help = lambda ctx, formatter, command=command: _help_page(command, ctx)
    for sub in getattr(command, "commands", {}).values():
        _help_pages(sub)


def _help_page(command, ctx) -> None:
    from .helptext import page

    page(command, ctx)


def _click_exceptions():
    try:
        from typer._click import exceptions  # Typer 0.2x vendors click
    except ImportError:  # pragma: no cover - Typer on plain click
        from click import exceptions
    return exceptions


def usage_error(ctx: typer.Context, message: str) -> Exception:
    """A usage error (exit 2) that no single option's check can raise: a missing or conflicting option."""
    return _click_exceptions().UsageError(message, ctx=ctx)


def fail(message: str, code: int = 1):
    """One line on stderr, then exit with `code`."""
    print(f"Error: {one_line(message)}", file=sys.stderr)
    raise typer.Exit(code)


def one_line(message: str, limit: int = 1000) -> str:
    """A message as one printable line: line breaks and other control characters escaped (they
    come from what the user typed), and cut short when a huge value made it huge."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in message)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


_OUTPUT_ERRNOS = ("ENOSPC", "EDQUOT", "EFBIG", "EIO", "EBADF")


def _os_error(exc: OSError) -> str:
    import errno

    if exc.errno in {getattr(errno, name, None) for name in _OUTPUT_ERRNOS} and not exc.filename:
        return f"cannot write the output: {exc.strerror}"
    return f"{exc.filename}: {exc.strerror}" if exc.filename else str(exc.strerror or exc)


def _usage_error(exc) -> int:
    """Click's usage line and hint, then the error on one line (never wrapped, values cut short)."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        return exc.exit_code  # the help is already printed
    import os

    from . import parse

    ctx = getattr(exc, "ctx", None)
    if ctx is not None:
        hint = f"Try '{ctx.command_path} {ctx.help_option_names[0]}' for help." if ctx.help_option_names else ""
        print(f"{ctx.get_usage()}\n{hint}\n", file=sys.stderr)
    message = one_line(exc.format_message(), 300)
    label = "Error:"
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        label = "\x1b[1;31mError:\x1b[0m"
    print(f"{label} {message}", file=sys.stderr)
    return exc.exit_code


def _reader_gone() -> int:
    """The reader of our stdout went away (`| head`): stop quietly, as if killed by SIGPIPE."""
    _discard_stdout()
    return 128 + 13


def _flushed(code: int) -> int:
    """Flush stdout now, so a full disk is a one-line error and not noise at interpreter exit."""
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        return _reader_gone()
    except OSError as exc:
        _discard_stdout()
        print(f"Error: cannot write the output: {exc.strerror or exc}", file=sys.stderr)
        return code or 1
    return code


def _discard_stdout() -> None:
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass  # not a real file (tests capture it): nothing will flush into it at exit


def _storage_error(exc: Exception, ctx) -> str | None:
    """A damaged, full, locked or unwritable database file is the operator's problem, not a bug: one line."""
    import sqlite3

    from ..store.connection import storage_message

    text = str(exc)
    state = ctx.find_root().obj
    path = state.path if isinstance(state, State) else "the database"
    plain = storage_message(exc, path)
    if plain:
        return plain
    if type(exc) is sqlite3.DatabaseError or (isinstance(exc, sqlite3.OperationalError)
                                              and any(s in text for s in _STORAGE)):
        return f"database error: {text} (check the file with `loyaltyctl verify`; restore a backup if damaged)"
    return None


_STORAGE = ("disk I/O error", "database or disk is full", "unable to open database file")


class State:
    def __init__(self, db_path: str | None):
        self.db_flag = db_path
        self._db = None

    @property
    def path(self) -> str:
        from ..store.connection import resolve_path

        return resolve_path(self.db_flag)

    def db(self, create: bool = False, write: bool = True):
        if self._db is None:
            from ..store.connection import open_db

            self._db = open_db(self.path, create=create, write=write)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None


def state(ctx: typer.Context) -> State:
    return ctx.find_root().obj


def db(ctx: typer.Context, create: bool = False):
    """The ledger, for a command that writes to it."""
    return state(ctx).db(create)


def reader(ctx: typer.Context):
    """The ledger, for a command that only reads it: opened read-only when it is current."""
    return state(ctx).db(write=False)


def default_program(value: str | None, database=None) -> str | None:
    """--program if given, else the configured default program (LOYALTYCTL_PROGRAM, then
    loyaltyctl.toml), which must exist in `database` when one is given."""
    if value:
        return value
    from ..config import configured_program

    code, source = configured_program()
    if code and database is not None:
        from ..errors import NotFound
        from ..store.programs import require_program

        try:
            require_program(database, code)
        except NotFound as exc:
            raise NotFound(f"{source}: {exc.detail}") from None
    return code
