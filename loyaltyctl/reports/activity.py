"""Activity reports: churn per period, and members at risk of lapsing."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from ..core.values import now_ts, shift, ts_or_now
from ..errors import InputError
from ..store import reports as sql
from ..store.programs import require_program
from .shape import ONE_DP, Report, pct, span


def _index(ts: str, period: str) -> int:
    y, m = int(ts[:4]), int(ts[5:7])
    return y * 12 + m - 1 if period == "month" else y * 4 + (m - 1) // 3


def _label(i: int, period: str) -> str:
    return f"{i // 12:04d}-{i % 12 + 1:02d}" if period == "month" else f"{i // 4:04d}-Q{i % 4 + 1}"


def churn(db, period: str = "month", program: str | None = None, since: str | None = None,
          until: str | None = None) -> Report:
    """Per calendar month or quarter: active members (any purchase), members lost since the
    previous period (active then, not now) and churn = lost / previous period's active."""
    if period not in sql.PERIOD_INDEX:
        raise InputError(f"{period!r} is not one of month, quarter", field="period")
    if program:
        require_program(db, program)
    lo, hi = span(since, until)
    first, last = sql.purchase_span(db, program)
    if first is None and lo is None:
        return Report(_CHURN, [], _CHURN[2:])
    start = _index(lo or first, period)
    end = _index(shift(hi, seconds=-1), period)
    if until is None and last is not None:
        end = max(end, _index(last, period))
    found = {r["pi"]: r for r in sql.churn(db, period, start, end, program)}
    previous = found[start - 1]["active"] if start - 1 in found else 0
    current = _index(now_ts(), period)
    rows = []
    for i in range(start, end + 1):
        r = found.get(i)
        active, lost = (r["active"], r["lost"]) if r else (0, 0)
        rows.append(_churn_row(_label(i, period), active, previous, lost, partial=i >= current))
        previous = active
    return Report(_CHURN, rows, _CHURN[2:])


def _churn_row(label: str, active: int, previous: int, lost: int, partial: bool) -> dict:
    """A period not over yet is partial: members who have not come back yet are not lost yet,
    so its lost and churn % stay empty (and out of any average over churn_pct)."""
    if partial:
        return {"period": label, "partial": True, "active": active, "previous_active": previous,
                "retained": previous - lost, "lost": None, "churn_pct": None}
    return {"period": label, "partial": False, "active": active, "previous_active": previous,
            "retained": previous - lost, "lost": lost, "churn_pct": pct(lost, previous)}


_CHURN = ["period", "partial", "active", "previous_active", "retained", "lost", "churn_pct"]



def at_risk_total(db, factor: str = "2", program: str | None = None, as_of: str | None = None,
                  within: int = 30, quiet_days: int = 60) -> tuple[int, int]:
    """How many members `at_risk` lists and the sum of their balances (the points at stake)."""
    num, den = parse_factor(factor).as_integer_ratio()
    at = ts_or_now(as_of, "as_of")
    return sql.at_risk_total(db, at, num, den, shift(at, within), shift(at, -quiet_days), program)


def _risk_row(r, quiet_days: int) -> dict:
    reasons = []
    if r["lagging"]:
        reasons.append("lagging rhythm")
    if r["idle"]:
        reasons.append(f"points expiring, idle {quiet_days}d")
    median = None if r["median2"] is None else (Decimal(r["median2"]) / 2 / 86400).quantize(ONE_DP, rounding=ROUND_HALF_UP)
    since_last = None
    if r["since_s"] is not None:
        since_last = (Decimal(r["since_s"]) / 86400).quantize(ONE_DP, rounding=ROUND_HALF_UP)
    return {"member_id": r["member_id"], "name": r["name"], "email": r["email"], "program": r["program"],
            "balance": r["balance"], "expiring": r["expiring"], "purchases": r["purchases"],
            "last_purchase": r["last_purchase"], "days_since": since_last, "median_gap_days": median,
            "reason": "; ".join(reasons)}


def parse_factor(factor) -> Decimal:
    """--factor of at_risk: a positive number up to 1000 with at most 4 decimal places."""
    try:
        f = Decimal(str(factor).strip())
    except ArithmeticError:
        f = Decimal(-1)
    if not f.is_finite() or f <= 0 or f > 1000:
        raise InputError(f"{str(factor)[:40]!r} is not a positive number up to 1000", field="factor")
    if f.as_integer_ratio()[1] > 10_000:  # keeps the SQL's gap arithmetic in exact integers
        raise InputError(f"{str(factor)[:40]!r} has more than 4 decimal places", field="factor")
    return f


def at_risk(db, factor: str = "2", program: str | None = None, as_of: str | None = None,
            within: int = 30, quiet_days: int = 60) -> Report:
    """Members whose time since their last purchase exceeds `factor` times their own median gap
    between purchases (3 purchases at least), or who have points expiring within `within` days
    and no purchase or redemption in the last `quiet_days`; largest balance first."""
    num, den = parse_factor(factor).as_integer_ratio()
    if program:
        require_program(db, program)
    at = ts_or_now(as_of, "as_of")
    rows = (_risk_row(r, quiet_days) for r in sql.at_risk(db, at, num, den, shift(at, within), shift(at, -quiet_days),
                                                          program))
    cols = ["member_id", "name", "email", "program", "balance", "expiring", "purchases", "last_purchase",
            "days_since", "median_gap_days", "reason"]
    return Report(cols, rows, ["balance", "expiring", "purchases", "days_since", "median_gap_days"])


