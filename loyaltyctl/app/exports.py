"""Exports of the ledger, members and balances as CSV or JSON, streamed."""

from __future__ import annotations

import json
import sys
from typing import Iterable

from ..core.values import from_e4, money, ts_or_now
from ..errors import InputError
from ..store import exports as sql
from ..store.connection import Database
from ..store.programs import require_program

WHAT = ("ledger", "members", "balances")


def rows(db: Database, what: str, program: str | None = None, as_of: str | None = None) -> tuple[list[str], Iterable[dict]]:
    """Column names and a stream of rows for one export."""
    if what not in WHAT:
        raise InputError(f"unknown export {what!r} (choose {', '.join(WHAT)})")
    if program:
        require_program(db, program)
    at = ts_or_now(as_of, "as_of")
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
            d = require_program(db, r["program_code"])
            yield {"member_id": r["member_id"], "program": r["program_code"], "tier": r["tier"],
                   "balance": r["balance"], "value": money(r["balance"] * d.point_value, d.currency), "currency": d.currency,
                   "as_of": at}
    return columns, balances()


def write(columns: list[str], stream: Iterable[dict], fmt: str, out=None) -> int:
    """Write rows as CSV (formula-safe) or a JSON list, one row at a time."""
    from ..io.csv import csv_writer
    from ..render import _json_default, safe_cell

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
