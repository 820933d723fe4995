"""Reports as data: each returns {"columns", "rows", "numeric"} for the renderer."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from . import service
from .errors import InputError
from .ledger import analytics, store
from .ledger.db import Database
from .values import money, ts_or_now


def _report(columns: list[str], rows: list[dict], numeric: list[str]) -> dict:
    return {"columns": columns, "rows": rows, "numeric": numeric}


def balances(db: Database, program: str | None = None, limit: int = 20, as_of: str | None = None) -> dict:
    """Top members by balance."""
    if limit <= 0:
        raise InputError(f"--limit: must be a positive number (got {limit})")
    at = ts_or_now(as_of, "--as-of")
    if program:
        service.program(db, program)
    rows = analytics.top_balances(db, at, program, limit)
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
    """Members per tier at --as-of: their share of the program, average balance, average
    qualifying total (spend, or points for points-basis programs, over the tier window) and
    how many are within 10% of the next tier's threshold (goal-gradient opportunity)."""
    from datetime import timedelta

    from .values import SCALE, fmt_ts, to_dt

    at = ts_or_now(as_of, "--as-of")
    if program:
        service.program(db, program)
    one = Decimal("0.1")
    out = []
    for row in store.program_rows(db):
        code = row["code"]
        if program and code != program:
            continue
        d = service.program(db, code)
        unit = SCALE if d.basis == "spend" else 1
        nexts = [(lv.name, int(d.levels[lv.index + 1].threshold * unit) if lv.index + 1 < len(d.levels) else None)
                 for lv in d.levels]
        start = fmt_ts(to_dt(at) - timedelta(days=d.window_days))
        found = {r["tier"]: r for r in analytics.tier_stats(db, code, at, start, d.basis, nexts)}
        total = sum(r["members"] for r in found.values())
        names = [lv.name for lv in d.levels] + [t for t in found if t not in {lv.name for lv in d.levels}]
        for name in names or [None]:
            r = found.get(name)
            n = r["members"] if r else 0
            avg_q = None
            if n and d.tiered:
                avg_q = Decimal(r["qualifying"]) / unit / n
                avg_q = money(avg_q.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) if d.basis == "spend" else \
                    avg_q.quantize(one, rounding=ROUND_HALF_UP)
            level = d.level(name)
            nxt = d.next_level(level) if level else None
            out.append({"program": code, "tier": name, "members": n,
                        "share_pct": (Decimal(n) * 100 / total).quantize(one, rounding=ROUND_HALF_UP) if total else None,
                        "avg_balance": (Decimal(r["balance"]) / n).quantize(one, rounding=ROUND_HALF_UP) if n else None,
                        "basis": d.basis if d.tiered else None, "avg_qualifying": avg_q,
                        "next_tier": nxt.name if nxt else None,
                        "near_next": (r["near_next"] if r else 0) if nxt else None})
    return _report(["program", "tier", "members", "share_pct", "avg_balance", "basis", "avg_qualifying", "next_tier",
                    "near_next"], out, ["members", "share_pct", "avg_balance", "avg_qualifying", "near_next"])
