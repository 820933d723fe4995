"""Rendering reports: Rich tables for people, JSON and CSV for scripts.

Reports are plain data (lists of dicts); this module only formats them. Rich is
imported lazily so that commands which print a line or JSON start fast."""

from __future__ import annotations

import json
import os
import sys
from decimal import Decimal
from typing import Any, Iterable, Sequence

FORMATS = ("table", "json", "csv")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _json_default(value: Any):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=_json_default, ensure_ascii=False)


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


def console(stderr: bool = False):
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    kwargs: dict = {"file": stream, "highlight": False}
    if not stream.isatty():
        kwargs["width"] = int(os.environ.get("COLUMNS", 0)) or 200
    if os.environ.get("NO_COLOR"):
        kwargs["color_system"] = None  # no-color.org: plain text, not even bold or italic
    return Console(**kwargs)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def table(rows: Sequence[dict], columns: Sequence[str], *, fmt: str = "table", title: str | None = None,
          headers: dict[str, str] | None = None, numeric: Iterable[str] = (), empty: str = "nothing to show") -> None:
    """Render a list of rows as a Rich table, a JSON list, or CSV."""
    if fmt == "json":
        print(dumps([{c: r.get(c) for c in columns} for r in rows]))
        return
    if fmt == "csv":
        write_csv(rows, columns)
        return
    from rich.table import Table

    con = console()
    if not rows:
        con.print(f"{title + ': ' if title else ''}{empty}")
        return
    numeric = set(numeric)
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column((headers or {}).get(c, c.replace("_", " ")), justify="right" if c in numeric else "left")
    for r in rows:
        t.add_row(*(_cell(r.get(c)) for c in columns))
    con.print(t)


def record(data: dict, *, fmt: str = "table", title: str | None = None, fields: Sequence[str] | None = None) -> None:
    """Render one object: a two-column table, a JSON object, or a one-row CSV."""
    fields = list(fields or data.keys())
    if fmt == "json":
        print(dumps({k: data.get(k) for k in fields} if fields else data))
        return
    if fmt == "csv":
        write_csv([data], fields)
        return
    from rich.table import Table

    t = Table(title=title, title_justify="left", show_header=False)
    t.add_column("field", style="bold")
    t.add_column("value")
    for k in fields:
        if data.get(k) is not None:
            t.add_row(k.replace("_", " "), _cell(data[k]))
    console().print(t)


def records(items: list[dict], *, fmt: str = "table", title_key: str | None = None, fields=None) -> None:
    """Several objects: JSON list, CSV rows, or one table each."""
    if fmt == "json":
        print(dumps(items))
    elif fmt == "csv":
        write_csv(items, list(fields or (items[0].keys() if items else [])))
    else:
        for item in items:
            record(item, title=str(item.get(title_key)) if title_key else None, fields=fields)


def message(text: str, *, fmt: str = "table") -> None:
    """A one-line confirmation for people (not printed for json/csv)."""
    if fmt == "table":
        print(text)


def bar_chart(pairs: Sequence[tuple[str, float | int | Decimal | None]], *, title: str | None = None, width: int = 40) -> None:
    """A small horizontal bar chart in the terminal (for distributions and trends)."""
    from rich.table import Table

    values = [abs(float(v)) for _, v in pairs if v is not None]
    top = max(values) if values else 0
    t = Table(title=title, title_justify="left", show_header=False, box=None)
    t.add_column("label")
    t.add_column("bar")
    t.add_column("value", justify="right")
    for label, value in pairs:
        n = 0 if value is None or not top else round(abs(float(value)) / top * width)
        bar = ("-" if value is not None and float(value) < 0 else "") + "█" * n
        t.add_row(str(label), bar, "" if value is None else str(value))
    console().print(t)
