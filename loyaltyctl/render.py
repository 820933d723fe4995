"""Rendering reports: plain-text tables for people, JSON and CSV for scripts.

Reports are plain data (rows as dicts, often a generator straight from a database cursor);
this module only formats them, and streams: a table's column widths come from its first rows,
then every row is printed as it comes, so a list of 100,000 members starts at once and never
sits in memory whole; JSON arrays and CSV are written one row at a time as well."""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal
from itertools import chain, islice
from typing import Any, Callable, Iterable, Iterator, Sequence

FORMATS = ("table", "json", "csv")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
SAMPLE = 200  # rows read before a streamed table's column widths are fixed
GAP = "  "
MIN_TEXT = 10  # a wrapped text column keeps at least this many characters a line
# Columns of free text: they wrap (or are left out) when a table is wider than the terminal.
# Every other column (ids, numbers, amounts, dates) is always printed whole.
TEXT_COLUMNS = {"name", "email", "why", "reason", "comment", "tags", "perks", "to_next_tier", "description",
                "rewards", "tiers", "explanation", "detail", "error", "note", "label", "title"}


def _json_default(value: Any):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


def write_json_list(items: Iterable[Any], out=None) -> None:
    """A JSON array written item by item: the same text as `dumps(list(items))`."""
    out = out or sys.stdout
    first = True
    for item in items:
        out.write("[\n" if first else ",\n")
        out.write(_flat_item(item) or "  " + dumps(item).replace("\n", "\n  "))
        first = False
    out.write("[]\n" if first else "\n]\n")


def _flat_item(item: Any) -> str | None:
    """A list item that is a dict of plain values, as `dumps` indents it inside a list, built
    from the C string encoder (json's indenting encoder is pure Python: 3x slower); None for
    anything else."""
    if not isinstance(item, dict) or not item:
        return None
    quote = json.encoder.encode_basestring
    parts = []
    for key, value in item.items():
        if type(value) is str:
            text = quote(value)
        elif value is None:
            text = "null"
        elif type(value) is bool:
            text = "true" if value else "false"
        elif type(value) is int:
            text = int.__repr__(value)
        elif type(value) is Decimal:
            text = quote(str(value))
        else:
            return None
        if type(key) is not str:
            return None
        parts.append(f"    {quote(key)}: {text}")
    return "  {\n" + ",\n".join(parts) + "\n  }"


def safe_cell(value: Any) -> str:
    """A CSV cell a spreadsheet will not run as a formula; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        value = ";".join(map(str, value))
    text = str(value)
    if text.lstrip(" \n").startswith(_FORMULA_START) and not _is_number(text):  # " =x", "\n=x" run too
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except Exception:
        return False
    return text.strip() == text and text not in ("-", "+") and text.lower() not in ("nan", "-nan", "+nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity")


def write_csv(rows: Iterable[dict], columns: Sequence[str], out=None) -> None:
    import csv  # lazily: only CSV output pays for it

    out = out or sys.stdout
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([safe_cell(row.get(c)) for c in columns])


def printable(text: str) -> str:
    """Text as it may reach a terminal: control characters (stored before they were refused on
    input, or from a CSV) escaped as `\\x1b`, `\\n` ..., never interpreted."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, (list, tuple)):
        return printable(", ".join(map(str, value)))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return printable(str(value))


def width() -> int | None:
    """Columns available: $COLUMNS, else the terminal's; None (no limit) when piped."""
    given = os.environ.get("COLUMNS", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    if sys.stdout.isatty():
        import shutil

        return shutil.get_terminal_size().columns
    return None


def height() -> int:
    """Lines of the terminal: $LINES, else the terminal's (24 when unknown)."""
    given = os.environ.get("LINES", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    import shutil

    return shutil.get_terminal_size((80, 24)).lines


def styled() -> bool:
    """Bold headers only on a terminal, and never with NO_COLOR (no-color.org)."""
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def _bold(text: str) -> str:
    return f"\x1b[1m{text}\x1b[0m" if styled() else text


class Layout:
    """Which columns a table shows, how wide each is and which wrap, fixed from its first rows."""

    def __init__(self, columns: Sequence[str], labels: Sequence[str], numeric: set[str], sample: list[list[str]],
                 limit: int | None):
        self.widths = [max([len(label)] + [len(r[i]) for r in sample]) for i, label in enumerate(labels)]
        self.right = [c in numeric for c in columns]
        self.text = [c in TEXT_COLUMNS and c not in numeric for c in columns]
        self.shown = list(range(len(columns)))
        self.dropped: list[str] = []
        if limit:
            self._fit(columns, limit)

    def total(self) -> int:
        return sum(self.widths[i] for i in self.shown) + len(GAP) * (len(self.shown) - 1)

    def _fit(self, columns: Sequence[str], limit: int) -> None:
        """Narrow the text columns (they wrap), then leave text columns out, rightmost first."""
        over = self.total() - limit
        for i in sorted((i for i in self.shown if self.text[i]), key=lambda i: -self.widths[i]):
            if over <= 0:
                return
            cut = min(over, max(self.widths[i] - MIN_TEXT, 0))
            self.widths[i] -= cut
            over -= cut
        for i in reversed([i for i in self.shown if self.text[i]]):
            if self.total() <= limit:
                return
            self.shown.remove(i)
            self.dropped.append(columns[i])

    def lines(self, cells: list[str]) -> list[str]:
        """One row as one line, or several when a text cell wraps; other cells are never cut."""
        parts = []
        for i in self.shown:
            value = cells[i]
            parts.append(_wrap(value, self.widths[i]) if self.text[i] and len(value) > self.widths[i] else [value])
        depth = max(len(p) for p in parts)
        out = []
        for k in range(depth):
            words = []
            for n, i in enumerate(self.shown):
                value = parts[n][k] if k < len(parts[n]) else ""
                words.append(value.rjust(self.widths[i]) if self.right[i] else value.ljust(self.widths[i]))
            out.append(GAP.join(words).rstrip())
        return out


def _wrap(text: str, size: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, size, break_long_words=True, break_on_hyphens=False) or [""]


def table(rows: Iterable[dict], columns: Sequence[str], *, fmt: str = "table", title: str | None = None,
          headers: dict[str, str] | None = None, numeric: Iterable[str] = (), empty: str = "nothing to show",
          limit: int | None = None, count: Callable[[], int] | None = None,
          summary: Callable[[], str | None] | None = None, noun: str = "rows") -> None:
    """Render rows (any iterable, consumed once) as a table, a JSON list, or CSV.

    `limit`: show at most this many rows; when more were left, a line says how many (from
    `count`, a query, not the rows) and how to get them. `summary`: a totals line for people
    (table format only), computed by the caller's query over the whole list."""
    it = iter(rows)
    page = islice(it, limit) if limit is not None else it
    if fmt == "json":
        write_json_list(({c: r.get(c) for c in columns} for r in page))
    elif fmt == "csv":
        write_csv(page, columns)
    else:
        shown = _print_table(page, columns, title=title, headers=headers or {}, numeric=set(numeric), empty=empty)
        if limit is not None and _has_more(it):
            _more(shown, count, noun, file=sys.stdout)
        text = summary() if summary is not None else None
        if text:
            print(text)
        return
    if limit is not None and _has_more(it):
        _more(limit, count, noun, file=sys.stderr)


def _has_more(it: Iterator) -> bool:
    more = next(it, None) is not None
    close = getattr(it, "close", None)
    if close is not None:
        close()  # a generator over a cursor: let it go now
    return more


def _more(shown: int, count: Callable[[], int] | None, noun: str, *, file) -> None:
    total = count() if count is not None else None
    left = f"{total - shown:,} more {noun} (of {total:,})" if total is not None else f"more {noun}"
    print(f"... {left}: --all shows them, or --format csv", file=file)


def _print_table(rows: Iterator[dict], columns: Sequence[str], *, title, headers, numeric, empty) -> int:
    write = sys.stdout.write
    first = [[_cell(r.get(c)) for c in columns] for r in islice(rows, SAMPLE)]
    if not first:
        print(f"{title + ': ' if title else ''}{empty}")
        return 0
    labels = [headers.get(c, c.replace("_", " ")) for c in columns]
    layout = Layout(columns, labels, numeric, first, width())
    too_wide = width() is not None and layout.total() > width()  # nothing left to wrap or leave out
    if too_wide or (layout.dropped and len(first) < SAMPLE):  # one block per row, every field whole
        shown = 0
        for cells in chain(first, ([_cell(r.get(c)) for c in columns] for r in rows)):
            if title and not shown:
                print(_bold(printable(title)))
            print()
            record(dict(zip(labels, cells)))
            shown += 1
        return shown
    if layout.dropped:
        print(f"note: {', '.join(layout.dropped)} left out to fit {width()} columns (a wider terminal, or "
              "--format csv, shows them)", file=sys.stderr)
    if title:
        write(_bold(printable(title)) + "\n")
    write(_bold(layout.lines(labels)[0]) + "\n")
    write(GAP.join("-" * layout.widths[i] for i in layout.shown) + "\n")
    shown = 0
    for cells in chain(first, ([_cell(r.get(c)) for c in columns] for r in rows)):
        write("\n".join(layout.lines(cells)) + "\n")
        shown += 1
    return shown


def record(data: dict, *, fmt: str = "table", title: str | None = None, fields: Sequence[str] | None = None) -> None:
    """Render one object: aligned `field  value` lines, a JSON object, or a one-row CSV."""
    fields = list(fields or data.keys())
    if fmt == "json":
        print(dumps({k: data.get(k) for k in fields} if fields else data))
        return
    if fmt == "csv":
        write_csv([data], fields)
        return
    pairs = [(k.replace("_", " "), _cell(data[k])) for k in fields if data.get(k) is not None]
    if title:
        print(_bold(printable(title)))
    if not pairs:
        return
    size = max(len(k) for k, _ in pairs)
    room = max((width() or 0) - size - 4, 20) if width() else None
    for key, value in pairs:
        lines = _wrap(value, room) if room and len(value) > room else [value]
        print(f"  {_bold(key.ljust(size))}  {lines[0]}")
        for more in lines[1:]:
            print(f"  {' ' * size}  {more}")


def records(items: list[dict], *, fmt: str = "table", title_key: str | None = None, fields=None) -> None:
    """Several objects: JSON list, CSV rows, or one block each."""
    if fmt == "json":
        print(dumps(items))
    elif fmt == "csv":
        write_csv(items, list(fields or (items[0].keys() if items else [])))
    else:
        for n, item in enumerate(items):
            if n:
                print()
            record(item, title=str(item.get(title_key)) if title_key else None, fields=fields)


def message(text: str, *, fmt: str = "table") -> None:
    """A one-line confirmation for people (not printed for json/csv)."""
    if fmt == "table":
        print(text)


def bar_chart(pairs: Sequence[tuple[str, float | int | Decimal | None]], *, title: str | None = None,
              bars: int = 40) -> None:
    """A small horizontal bar chart in the terminal (for distributions and trends); the bars
    shrink to fit the terminal, the labels and numbers never do."""
    values = [abs(float(v)) for _, v in pairs if v is not None]
    top = max(values) if values else 0
    labels = [printable(str(label)) for label, _ in pairs]
    numbers = ["" if v is None else str(v) for _, v in pairs]
    size, digits = max(map(len, labels), default=0), max(map(len, numbers), default=0)
    room = width()
    if room is not None:
        bars = max(min(bars, room - size - digits - 5), 1)
    if title:
        print(_bold(printable(title)))
    for label, number, (_, value) in zip(labels, numbers, pairs):
        n = 0 if value is None or not top else round(abs(float(value)) / top * bars)
        bar = ("-" if value is not None and float(value) < 0 else "") + "█" * n
        print(f"{label.ljust(size)}  {number.rjust(digits)}  {bar}".rstrip())
