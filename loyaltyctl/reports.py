"""Reports as data: each returns {"columns", "rows", "numeric"} for the renderer."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from . import service
from .ledger import store
from .ledger.db import Database
from .values import money, ts_or_now


def _report(columns: list[str], rows: list[dict], numeric: list[str]) -> dict:
    return {"columns": columns, "rows": rows, "numeric": numeric}


def balances(db: Database, program: str | None = None, limit: int = 20, as_of: str | None = None) -> dict:
    """Top members by balance."""
    at = ts_or_now(as_of, "--as-of")
    if program:
        service.program(db, program)
    rows = sorted(store.balances_at(db, at, program), key=lambda r: (-r["balance"], r["member_id"]))[:limit]
    values = {}
    out = []
    for r in rows:
        code = r["program_code"]
        if code not in values:
            d = service.program(db, code)
            values[code] = (d.point_value, d.currency)
        pv, cur = values[code]
        out.append({"member_id": r["member_id"], "name": r["name"], "program": code, "tier": r["tier"],
                    "balance": r["balance"], "value": money(r["balance"] * pv), "currency": cur})
    return _report(["member_id", "name", "program", "tier", "balance", "value", "currency"], out, ["balance", "value"])


def tiers(db: Database, program: str | None = None, as_of: str | None = None) -> dict:
    """Members per tier, their share of the program and average balance."""
    at = ts_or_now(as_of, "--as-of")
    groups: dict[tuple[str, str], list[int]] = defaultdict(list)
    totals: dict[str, int] = defaultdict(int)
    for r in store.balances_at(db, at, program):
        groups[(r["program_code"], r["tier"] or "-")].append(r["balance"])
        totals[r["program_code"]] += 1
    out = []
    for row in store.program_rows(db):
        code = row["code"]
        if program and code != program:
            continue
        d = service.program(db, code)
        names = [lv.name for lv in d.levels] or ["-"]
        for name in names:
            bal = groups.get((code, name), [])
            share = (Decimal(len(bal)) * 100 / totals[code]).quantize(Decimal("0.1")) if totals[code] else None
            avg = (Decimal(sum(bal)) / len(bal)).quantize(Decimal("0.1")) if bal else None
            out.append({"program": code, "tier": name, "members": len(bal), "share_pct": share, "avg_balance": avg})
    return _report(["program", "tier", "members", "share_pct", "avg_balance"], out,
                   ["members", "share_pct", "avg_balance"])
