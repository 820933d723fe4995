"""Batch commands: import and export."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from enum import Enum
from typing import Annotated, Optional

import typer

from . import parse
from .common import (AsOfOpt, Format, FormatOpt, ForceOpt, db, default_program, program_option, reader, state,
                     usage_error)

PANEL = "Import and export"
import_app = typer.Typer(help="Import CSV batches (transactions, members, NPS responses).", no_args_is_help=True)
FileArg = Annotated[str, typer.Argument(metavar="FILE", help="CSV file with a header line; - reads stdin.")]
RejectsOpt = Annotated[Optional[str], typer.Option("--rejects", metavar="<file>", help="Write rejected rows here (original columns + line, error); created private (0600).")]
RejectsForceOpt = Annotated[bool, typer.Option("--force", help="Overwrite an existing --rejects file (a re-run that resumes a killed import does without).")]
AllOrNothingOpt = Annotated[bool, typer.Option("--all-or-nothing", help="One bad row means nothing is written.")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Run the whole import, then roll it back.")]
DelimiterOpt = Annotated[str, typer.Option("--delimiter", metavar="<char>", callback=parse.delimiter,
                                           help="Character between cells: a comma, ; | or tab (\\t). The rejects file uses it too.")]
EncodingOpt = Annotated[str, typer.Option("--encoding", metavar="<name>", callback=parse.encoding,
                                          help="Text encoding of the file (utf-8, cp1252, latin-1...). The rejects file uses it too.")]


def _format(delimiter: str, encoding: str):
    from ..app.batch import CsvFormat

    return CsvFormat(delimiter, encoding)


@contextmanager
def progress_bar(path: str):
    """A Rich progress bar on stderr when it is a terminal; nothing otherwise. Yields a
    callback(bytes_read, rows) or None. It redraws four times a second: rows, the rate over
    the last few seconds (live: it falls while a chunk takes long), elapsed time and, for a
    file, the time left. stdin has no known size: rows and rows/s only."""
    import os

    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from rich.console import Console

    total = None if path == "-" or not os.path.isfile(path) else os.path.getsize(path)
    rate = _live_rate()
    with Progress(TextColumn("importing"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[rows]:,} rows"), rate, TimeElapsedColumn(), TimeRemainingColumn(),
                  console=Console(file=sys.stderr, highlight=False,
                                  **({"color_system": None} if os.environ.get("NO_COLOR") else {})), transient=True, refresh_per_second=4) as bar:
        task = bar.add_task("import", total=total, rows=0)

        def update(position: int, rows: int) -> None:
            rate.saw(rows)
            bar.update(task, completed=position if total else None, rows=rows)
        yield update


def _live_rate():
    """A progress column: rows per second over the last WINDOW seconds, computed when drawn."""
    import time
    from collections import deque

    from rich.progress import ProgressColumn
    from rich.text import Text

    class LiveRate(ProgressColumn):
        WINDOW = 5.0

        def __init__(self):
            super().__init__()
            self.samples: deque = deque([(time.monotonic(), 0)])

        def saw(self, rows: int) -> None:
            now = time.monotonic()
            self.samples.append((now, rows))
            while len(self.samples) > 2 and self.samples[1][0] < now - self.WINDOW:
                self.samples.popleft()

        def render(self, task) -> Text:
            (t0, r0), (_, r1) = self.samples[0], self.samples[-1]
            elapsed = time.monotonic() - t0
            return Text(f"{(r1 - r0) / elapsed if elapsed > 0 else 0:,.0f} rows/s")

    return LiveRate()


def _summary(summary, fmt: Format, source: str) -> None:
    from .. import render

    data = summary.as_dict()
    if fmt is Format.json:
        extra = {"rejects": summary.rejects} | ({"effects": summary.effects} if summary.dry_run else {})
        print(render.dumps(data | extra))
    elif fmt is Format.csv:
        render.write_csv([data], list(data))
    else:
        what = "would apply" if summary.dry_run else "applied"
        line = f"{source}: {what} {summary.applied}, duplicates {summary.duplicates}, rejected {summary.rejected}"
        if summary.rolled_back:
            line += " (all-or-nothing: nothing written)"
        if summary.dry_run:
            line += " (dry run: nothing written)"
        print(line)
        if summary.dry_run and summary.effects:
            render.table(summary.effects, ["member_id", "program", "balance_before", "balance_after", "change",
                                           "tier_before", "tier_after"], title="Balances and tiers it would change",
                         numeric=["balance_before", "balance_after", "change"])
    for row in summary.rejects:
        print(f"{source}:{row['line']}: {row['error']}", file=sys.stderr)
    if summary.rejected > len(summary.rejects):
        print(f"... and {summary.rejected - len(summary.rejects)} more rejected rows", file=sys.stderr)
    if summary.rejected:
        raise typer.Exit(1)


@import_app.command("transactions")
def import_transactions(
    ctx: typer.Context,
    path: FileArg,
    program: Annotated[Optional[str], program_option("Program for every row (default: the configured program, else each member's only program).")] = None,
    rejects: RejectsOpt = None,
    force: RejectsForceOpt = False,
    all_or_nothing: AllOrNothingOpt = False,
    enroll_unknown: Annotated[bool, typer.Option("--enroll-unknown", help="Enroll unknown members in --program instead of rejecting their rows.")] = False,
    lines: Annotated[Optional[str], typer.Option("--lines", metavar="<file>", help="A purchase_lines CSV (txn_id, sku, category, quantity, unit_price, discount) with the lines of the file's purchases.")] = None,
    dry_run: DryRunOpt = False,
    delimiter: DelimiterOpt = ",",
    encoding: EncodingOpt = "utf-8",
    fmt: FormatOpt = Format.table,
):
    """Import purchases, redemptions, refunds, events, adjustments and opening balances.

    Columns: txn_id, member_id, kind, occurred_at; then by kind: purchase amount
    \\[partner] \\[paid_points], or its lines (a `lines` JSON column, or --lines FILE)
    \\[discount]; redeem points|reward; refund ref_txn_id amount|lines; event event;
    adjust points reason; opening points \\[expires_at] (a date, or never). An empty member_id on a
    purchase is an anonymous sale. Re-importing a file credits nothing twice.
    Exit 0 when every row applied (or was a duplicate), 1 when any was rejected.

    Example: loyaltyctl import transactions sales-2026-11-23.csv --lines lines-2026-11-23.csv
    """
    from ..app import batch as imports

    if enroll_unknown and not default_program(program):
        raise usage_error(ctx, "--enroll-unknown needs --program (the program to enroll members in)")
    _guard_rejects(ctx, rejects, path, lines)
    database = db(ctx)
    with progress_bar(path) as progress:
        summary = imports.import_transactions(database, path, program=default_program(program, database),
                                              all_or_nothing=all_or_nothing, enroll_unknown=enroll_unknown,
                                              dry_run=dry_run, progress=progress, rejects=rejects, overwrite=force,
                                              fmt=_format(delimiter, encoding), lines=lines)
    if summary.unmatched_lines:
        shown = ", ".join(summary.unmatched_lines[:5]) + (", ..." if len(summary.unmatched_lines) > 5 else "")
        print(f"warning: {lines}: {len(summary.unmatched_lines)} txn_id(s) no row of {path} names: {shown}",
              file=sys.stderr)
    _summary(summary, fmt, "<stdin>" if path == "-" else path)


@import_app.command("members")
def import_members(
    ctx: typer.Context,
    path: FileArg,
    rejects: RejectsOpt = None,
    force: RejectsForceOpt = False,
    all_or_nothing: AllOrNothingOpt = False,
    dry_run: DryRunOpt = False,
    delimiter: DelimiterOpt = ",",
    encoding: EncodingOpt = "utf-8",
    fmt: FormatOpt = Format.table,
):
    """Enroll members from CSV: member_id, program, name, email, tags (a;b), referred_by, joined_at, account.

    A member already enrolled in that program counts as a duplicate.

    Example: loyaltyctl import members crm-export.csv
    """
    from ..app import batch as imports

    _guard_rejects(ctx, rejects, path)
    with progress_bar(path) as progress:
        summary = imports.import_members(db(ctx), path, all_or_nothing=all_or_nothing, dry_run=dry_run,
                                         progress=progress, rejects=rejects, overwrite=force,
                                         fmt=_format(delimiter, encoding))
    _summary(summary, fmt, "<stdin>" if path == "-" else path)


@import_app.command("nps")
def import_nps(
    ctx: typer.Context,
    path: FileArg,
    program: Annotated[Optional[str], program_option("Program for rows without a program column value (default: the configured program, else each member's only program).")] = None,
    rejects: RejectsOpt = None,
    force: RejectsForceOpt = False,
    all_or_nothing: AllOrNothingOpt = False,
    dry_run: DryRunOpt = False,
    delimiter: DelimiterOpt = ",",
    encoding: EncodingOpt = "utf-8",
    fmt: FormatOpt = Format.table,
):
    """Import NPS responses: response_id, member_id, account, score, comment, answered_at [, program].

    Each row needs a member_id or an account; score is 0-10. response_id is the
    idempotency key: re-importing a file records nothing twice.

    Example: loyaltyctl import nps survey-2026-11.csv --rejects rejects.csv
    """
    from ..app import batch as imports

    _guard_rejects(ctx, rejects, path)
    database = db(ctx)
    with progress_bar(path) as progress:
        summary = imports.import_nps(database, path, program=default_program(program, database),
                                     all_or_nothing=all_or_nothing, dry_run=dry_run, progress=progress,
                                     rejects=rejects, overwrite=force, fmt=_format(delimiter, encoding))
    _summary(summary, fmt, "<stdin>" if path == "-" else path)


class Export(str, Enum):
    ledger = "ledger"
    members = "members"
    balances = "balances"


class ExportFormat(str, Enum):
    csv = "csv"
    json = "json"


def export(
    ctx: typer.Context,
    what: Annotated[Export, typer.Argument(metavar="KIND", help="What to export: ledger, members or balances.")],
    program: Annotated[Optional[str], program_option("Only this program (default: the configured program, else all).")] = None,
    as_of: AsOfOpt = None,
    output: Annotated[Optional[str], typer.Option("--output", "-o", metavar="<file>",
                                                  help="Write to this file (created private, 0600) instead of stdout; - is stdout.")] = None,
    force: ForceOpt = False,
    fmt: Annotated[ExportFormat, typer.Option("--format", "-f", help="csv (default) or json (streamed: no table).")] = ExportFormat.csv,
):
    """Export the ledger, members or balances as CSV or JSON (streamed).

    CSV cells a spreadsheet would run as a formula are prefixed with '. An existing
    --output file is only overwritten with --force.

    Example: loyaltyctl export ledger --program coffee --output ledger.csv
    """
    from .. import paths
    from ..app import exports

    to_file = output not in (None, "-")
    if to_file:
        paths.guard(output, option="--output", ledger=state(ctx).path)
    database = reader(ctx)
    columns, rows = exports.rows(database, what.value, default_program(program, database), as_of)
    if not to_file:
        exports.write(columns, rows, fmt.value)
        return
    out = paths.create(output, option="--output", force=force)
    with out:
        try:
            n = exports.write(columns, rows, fmt.value, out)
            out.flush()
        except OSError as exc:
            paths.remove_partial(output, out)
            raise _output_error(output, exc) from None
    print(f"exported {n} {what.value} rows to {output}", file=sys.stderr)


def _output_error(path: str, exc: OSError):
    from ..errors import InputError

    return InputError(f"--output {path}: {exc.strerror or exc}")


def _guard_rejects(ctx: typer.Context, rejects: str | None, source: str, *more: str | None) -> None:
    """--rejects must not name the ledger or a file being imported."""
    if rejects:
        from .. import paths

        paths.guard(rejects, option="--rejects", ledger=state(ctx).path, inputs=[source, *filter(None, more)])


def register(app: typer.Typer) -> None:
    app.add_typer(import_app, name="import", rich_help_panel=PANEL)
    app.command("export", rich_help_panel=PANEL)(export)
