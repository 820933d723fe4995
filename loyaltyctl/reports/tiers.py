"""The tier report: members per tier, their share, average balance and qualifying total,
and how many are within 10% of the next threshold (the goal-gradient opportunity)."""

from __future__ import annotations

from decimal import Decimal

from ..core.values import SCALE, money, shift, ts_or_now
from ..store import programs as program_store
from ..store import reports as sql
from ..store.programs import require_program
from .shape import Report, one_dp


def tiers(db, program: str | None = None, as_of: str | None = None) -> Report:
    """Members per tier at --as-of: their share of the program, average balance, average
    qualifying total (spend, or points for points-basis programs, over the tier window) and
    how many are within 10% of the next tier's threshold."""
    at = ts_or_now(as_of, "as_of")
    if program:
        require_program(db, program)
    out = []
    for code in program_store.codes(db):
        if program and code != program:
            continue
        out += _program_rows(db, require_program(db, code), at)
    return Report(["program", "tier", "members", "share_pct", "avg_balance", "basis", "avg_qualifying", "next_tier",
                   "near_next"], out, ["members", "share_pct", "avg_balance", "avg_qualifying", "near_next"])


def _program_rows(db, p, at: str) -> list[dict]:
    unit = SCALE if p.basis == "spend" else 1
    nexts = [(lv.name, int(p.levels[lv.index + 1].threshold * unit) if lv.index + 1 < len(p.levels) else None)
             for lv in p.levels]
    found = {r["tier"]: r for r in sql.tier_stats(db, p.code, at, shift(at, -p.window_days), p.basis, nexts)}
    total = sum(r["members"] for r in found.values())
    names = [lv.name for lv in p.levels] + [t for t in found if t not in {lv.name for lv in p.levels}]
    rows = []
    for name in names or [None]:
        r = found.get(name)
        n = r["members"] if r else 0
        level = p.level(name)
        nxt = p.next_level(level) if level else None
        rows.append({"program": p.code, "tier": name, "members": n,
                     "share_pct": one_dp(Decimal(n) * 100 / total) if total else None,
                     "avg_balance": one_dp(Decimal(r["balance"]) / n) if n else None,
                     "basis": p.basis if p.tiered else None,
                     "avg_qualifying": _avg_qualifying(p, r, n, unit) if n and p.tiered else None,
                     "next_tier": nxt.name if nxt else None,
                     "near_next": (r["near_next"] if r else 0) if nxt else None})
    return rows


def _avg_qualifying(p, r: dict, n: int, unit: int):
    avg = Decimal(r["qualifying"]) / unit / n
    if p.basis == "spend":
        return money(avg, p.currency)
    return one_dp(avg)
