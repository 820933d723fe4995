"""Program reports as data ({"columns", "rows", "numeric"}): liability, ROI, churn,
at-risk members and average ticket. The SQL is in ledger/analytics.py; this module
turns its integer sums into exact Decimal figures.

Periods are half-open: --since is included, --until is not (so
--since 2026-01-01 --until 2026-02-01 is January). Percentages are rounded half up
to one decimal place, money to the cent; a ratio with nothing to divide by is empty."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from . import service
from .errors import InputError
from .ledger import analytics as sql
from .ledger import store
from .values import SCALE, fmt_ts, money, parse_amount, to_dt, ts_or_now

CENT = Decimal("0.01")
ONE_DP = Decimal("0.1")


def _report(columns: list[str], rows: list[dict], numeric: list[str]) -> dict:
    return {"columns": columns, "rows": rows, "numeric": numeric}


def _codes(db, program: str | None) -> list[str]:
    if program:
        service.program(db, program)
        return [program]
    return [r["code"] for r in store.program_rows(db)]


def _cash(value_e4: int | Decimal) -> Decimal:
    return (Decimal(value_e4) / SCALE).quantize(CENT, rounding=ROUND_HALF_UP)


def _pct(part, whole) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(ONE_DP, rounding=ROUND_HALF_UP)


def _period(since: str | None, until: str | None, as_of: str | None = None) -> tuple[str | None, str]:
    lo = ts_or_now(since, "--since") if since else None
    hi = ts_or_now(until, "--until") if until else ts_or_now(as_of, "--as-of")
    if lo is not None and hi <= lo:
        raise InputError(f"--until {hi} must be after --since {lo}")
    return lo, hi


# --- liability -------------------------------------------------------------------------


def liability(db, program: str | None = None, as_of: str | None = None) -> dict:
    """Outstanding unexpired points per program at --as-of, their currency value, and the
    part expiring within 30 and 90 days."""
    at = ts_or_now(as_of, "--as-of")
    t = to_dt(at)
    codes = _codes(db, program)
    found = {r["program"]: r for r in sql.liability(db, at, fmt_ts(t + timedelta(days=30)),
                                                     fmt_ts(t + timedelta(days=90)), program)}
    rows = []
    for code in codes:
        d = service.program(db, code)
        r = found.get(code)
        points, soon, later = (r["points"], r["expiring_soon"], r["expiring_later"]) if r else (0, 0, 0)
        rows.append({"program": code, "members": r["members"] if r else 0, "points": points,
                     "value": money(points * d.point_value), "expiring_30d": soon,
                     "value_30d": money(soon * d.point_value), "expiring_90d": later,
                     "value_90d": money(later * d.point_value), "currency": d.currency})
    return _report(["program", "members", "points", "value", "expiring_30d", "value_30d", "expiring_90d",
                    "value_90d", "currency"], rows,
                   ["members", "points", "value", "expiring_30d", "value_30d", "expiring_90d", "value_90d"])


# --- ROI -------------------------------------------------------------------------------


def months_between(lo: str, hi: str) -> Decimal:
    """Calendar months in [lo, hi): each month counts the fraction of its seconds inside."""
    start, end = to_dt(lo), to_dt(hi)
    total = Decimal(0)
    cur = datetime(start.year, start.month, 1, tzinfo=timezone.utc)
    while cur < end:
        nxt = datetime(cur.year + (cur.month == 12), cur.month % 12 + 1, 1, tzinfo=timezone.utc)
        inside = (min(end, nxt) - max(start, cur)).total_seconds()
        if inside > 0:
            total += Decimal(int(inside)) / Decimal(int((nxt - cur).total_seconds()))
        cur = nxt
    return total


def roi(db, program: str | None = None, since: str | None = None, until: str | None = None,
        cost: str | None = None) -> dict:
    """ROI per program over [since, until) (since defaults to the program's first enrollment,
    until to now): (repeat revenue - reward cost - operating cost) / (reward cost + operating cost)."""
    lo, hi = _period(since, until)
    codes = _codes(db, program)
    fixed = parse_amount(cost, "--cost", allow_zero=True) if cost is not None else None
    if fixed is not None and len(codes) != 1:
        raise InputError("--cost is the operating cost of one program; choose it with --program")
    found = {r["program"]: r for r in sql.revenue(db, lo or "0000", hi, program)}
    rows = []
    for code in codes:
        d = service.program(db, code)
        start = lo or sql.first_activity(db, code) or hi
        months = months_between(start, hi) if start < hi else Decimal(0)
        if fixed is not None:
            operating = fixed
        elif d.cost_per_month is not None:
            operating = (d.cost_per_month * months).quantize(CENT, rounding=ROUND_HALF_UP)
        else:
            operating = Decimal(0)
        r = found.get(code)
        revenue, repeat, redeemed = (r["revenue"], r["repeat_revenue"], r["redeemed"]) if r else (0, 0, 0)
        reward_cost = (redeemed * d.point_value).quantize(CENT, rounding=ROUND_HALF_UP)
        spent = reward_cost + operating
        gain = _cash(repeat) - spent
        rows.append({"program": code, "since": start, "until": hi, "months": months.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
                     "members": r["members"] if r else 0, "purchases": r["purchases"] if r else 0,
                     "revenue": _cash(revenue), "repeat_revenue": _cash(repeat), "redeemed_points": redeemed,
                     "reward_cost": reward_cost, "operating_cost": operating.quantize(CENT, rounding=ROUND_HALF_UP),
                     "net_gain": gain, "roi_pct": _pct(gain, spent), "currency": d.currency})
    cols = ["program", "since", "until", "months", "members", "purchases", "revenue", "repeat_revenue",
            "redeemed_points", "reward_cost", "operating_cost", "net_gain", "roi_pct", "currency"]
    return _report(cols, rows, cols[3:-1])


# --- churn ----------------------------------------------------------------------------


def _index(ts: str, period: str) -> int:
    y, m = int(ts[:4]), int(ts[5:7])
    return y * 12 + m - 1 if period == "month" else y * 4 + (m - 1) // 3


def _label(i: int, period: str) -> str:
    return f"{i // 12:04d}-{i % 12 + 1:02d}" if period == "month" else f"{i // 4:04d}-Q{i % 4 + 1}"


def churn(db, period: str = "month", program: str | None = None, since: str | None = None,
          until: str | None = None) -> dict:
    """Per calendar month or quarter: active members (any purchase), members lost since the
    previous period (active then, not now) and churn = lost / previous period's active."""
    if period not in sql.PERIOD_INDEX:
        raise InputError(f"--period: {period!r} is not one of month, quarter")
    if program:
        service.program(db, program)
    lo, hi = _period(since, until)
    first, last = sql.purchase_span(db, program)
    if first is None and lo is None:
        return _report(_CHURN, [], _CHURN[1:])
    start = _index(lo or first, period)
    end = _index(fmt_ts(to_dt(hi) - timedelta(seconds=1)), period)
    if until is None and last is not None:
        end = max(end, _index(last, period))
    found = {r["pi"]: r for r in sql.churn(db, period, start, end, program)}
    previous = found[start - 1]["active"] if start - 1 in found else 0
    rows = []
    for i in range(start, end + 1):
        r = found.get(i)
        active, lost = (r["active"], r["lost"]) if r else (0, 0)
        rows.append({"period": _label(i, period), "active": active, "previous_active": previous,
                     "retained": previous - lost, "lost": lost, "churn_pct": _pct(lost, previous)})
        previous = active
    return _report(_CHURN, rows, _CHURN[1:])


_CHURN = ["period", "active", "previous_active", "retained", "lost", "churn_pct"]


# --- at risk ----------------------------------------------------------------------------


def parse_factor(factor) -> Decimal:
    """--factor of at_risk: a positive number up to 1000 with at most 4 decimal places."""
    try:
        f = Decimal(str(factor).strip())
    except ArithmeticError:
        f = Decimal(-1)
    if not f.is_finite() or f <= 0 or f > 1000:
        raise InputError(f"--factor: {factor!r} is not a positive number up to 1000")
    if f.as_integer_ratio()[1] > 10_000:  # keeps the SQL's gap arithmetic in exact integers
        raise InputError(f"--factor: {factor!r} has more than 4 decimal places")
    return f


def at_risk(db, factor: str = "2", program: str | None = None, as_of: str | None = None,
            within: int = 30, quiet_days: int = 60) -> dict:
    """Members whose time since their last purchase exceeds `factor` times their own median gap
    between purchases (3 purchases at least), or who have points expiring within `within` days
    and no purchase or redemption in the last `quiet_days`; largest balance first."""
    num, den = parse_factor(factor).as_integer_ratio()
    if program:
        service.program(db, program)
    at = ts_or_now(as_of, "--as-of")
    t = to_dt(at)
    rows = []
    for r in sql.at_risk(db, at, num, den, fmt_ts(t + timedelta(days=within)), fmt_ts(t - timedelta(days=quiet_days)),
                         program):
        reasons = []
        if r["lagging"]:
            reasons.append("lagging rhythm")
        if r["idle"]:
            reasons.append(f"points expiring, idle {quiet_days}d")
        median = None if r["median2"] is None else (Decimal(r["median2"]) / 2 / 86400).quantize(ONE_DP, rounding=ROUND_HALF_UP)
        since_last = None
        if r["since_s"] is not None:
            since_last = (Decimal(r["since_s"]) / 86400).quantize(ONE_DP, rounding=ROUND_HALF_UP)
        rows.append({"member_id": r["member_id"], "name": r["name"], "email": r["email"], "program": r["program"],
                     "balance": r["balance"], "expiring": r["expiring"], "purchases": r["purchases"],
                     "last_purchase": r["last_purchase"], "days_since": since_last, "median_gap_days": median,
                     "reason": "; ".join(reasons)})
    cols = ["member_id", "name", "email", "program", "balance", "expiring", "purchases", "last_purchase",
            "days_since", "median_gap_days", "reason"]
    return _report(cols, rows, ["balance", "expiring", "purchases", "days_since", "median_gap_days"])


# --- average ticket ----------------------------------------------------------------------

FIRST_DAYS = 90
SEGMENTS = ["members", "anonymous", "members_first", "members_after"]


def ticket(db, program: str | None = None, since: str | None = None, until: str | None = None) -> dict:
    """Average purchase value per program: members vs anonymous sales, and members in their
    first 90 days after joining vs afterwards."""
    lo, hi = _period(since, until)
    codes = _codes(db, program)
    found = {(r["program"], r["segment"]): r for r in sql.ticket(db, lo or "0000", hi if until else "9999",
                                                                 program, FIRST_DAYS)}
    labels = {"members": "members", "anonymous": "anonymous (non-members)",
              "members_first": f"members, first {FIRST_DAYS} days", "members_after": f"members, after {FIRST_DAYS} days"}
    rows = []
    for code in codes:
        d = service.program(db, code)
        for seg in SEGMENTS:
            r = found.get((code, seg))
            n, amount = (r["purchases"], r["amount"]) if r else (0, 0)
            rows.append({"program": code, "segment": seg, "description": labels[seg], "purchases": n,
                         "amount": _cash(amount), "avg_ticket": _cash(Decimal(amount) / n) if n else None,
                         "currency": d.currency})
    return _report(["program", "segment", "description", "purchases", "amount", "avg_ticket", "currency"], rows,
                   ["purchases", "amount", "avg_ticket"])
