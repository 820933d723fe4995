"""Exports of the ledger, members and balances as CSV or JSON, streamed."""

from __future__ import annotations

import json
import sys
from typing import Iterable

from . import service
from .errors import InputError
from .ledger import exports as sql
from .ledger.db import Database
from .values import from_e4, money, ts_or_now

WHAT = ("ledger", "members", "balances")


def rows(db: Database, what: str, program: str | None = None, as_of: str | None = None) -> tuple[list[str], Iterable[dict]]:
    """Column names and a stream of rows for one export."""
    if what not in WHAT:
        raise InputError(f"unknown export {what!r} (choose {', '.join(WHAT)})")
    if program:
        service.program(db, program)
    at = ts_or_now(as_of, "--as-of")
    if what == "ledger":
        def gen():
            for r in sql.ledger_rows(db, program, at if as_of else None):
                row = dict(r)
                amount = row.pop("amount_e4")
                row["amount"] = money(from_e4(amount)) if amount is not None else None
                yield row
        return sql.LEDGER_COLUMNS, gen()
    if what == "members":
        def members():
            for r in sql.member_rows(db, program, at):
                row = dict(r)
                row["tags"] = row["tags"] or None
                yield row
        return sql.MEMBER_COLUMNS, members()
    columns = ["member_id", "program", "tier", "balance", "value", "currency", "as_of"]

    def balances():
        for r in sql.balance_rows(db, program, at):
            d = service.program(db, r["program_code"])
            yield {"member_id": r["member_id"], "program": r["program_code"], "tier": r["tier"],
                   "balance": r["balance"], "value": money(r["balance"] * d.point_value), "currency": d.currency,
                   "as_of": at}
    return columns, balances()


def write(columns: list[str], stream: Iterable[dict], fmt: str, out=None) -> int:
    """Write rows as CSV (formula-safe) or a JSON list, one row at a time."""
    from .render import _json_default, safe_cell

    out = out or sys.stdout
    n = 0
    if fmt == "json":
        out.write("[")
        for row in stream:
            out.write(("," if n else "") + "\n  " + json.dumps({c: row.get(c) for c in columns}, default=_json_default,
                                                                  ensure_ascii=False))
            n += 1
        out.write("\n]\n" if n else "]\n")
        return n
    writer = csv_writer(out)
    writer.writerow(columns)
    for row in stream:
        writer.writerow([safe_cell(row.get(c)) for c in columns])
        n += 1
    return n


class csv_writer:
    """csv.writer with "\n" line ends that still quotes cells holding a carriage return
    (the stdlib writer only quotes the characters of its own line terminator, so a lone
    CR would otherwise be written bare and break the row for every reader)."""

    def __init__(self, out):
        import csv
        import io

        self.out = out
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n")

    def writerow(self, row) -> None:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerow(row)
        self.out.write(self.buffer.getvalue()[:-2] + "\n")

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)
