"""Revenue reports: return on the program (ROI) and average ticket."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal

from ..core.values import parse_amount, to_dt
from ..errors import InputError
from ..store import reports as sql
from ..store.programs import require_program
from .shape import CENT, Report, cash, codes, pct, span


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
        cost: str | None = None) -> Report:
    """ROI per program over [since, until) (since defaults to the program's first enrollment,
    until to now): (repeat revenue - reward cost - operating cost) / (reward cost + operating cost).
    Revenue is the operator's own sales; purchases members made at partners are the partners'
    revenue and are shown apart."""
    lo, hi = span(since, until)
    chosen = codes(db, program)
    fixed = parse_amount(cost, "cost", allow_zero=True) if cost is not None else None
    if fixed is not None and len(chosen) != 1:
        raise InputError("is the operating cost of one program; choose it with --program", field="cost")
    found = {r["program"]: r for r in sql.revenue(db, lo or "0000", hi, program)}
    rows = []
    for code in chosen:
        d = require_program(db, code)
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
        gain = cash(repeat) - spent
        rows.append({"program": code, "since": start, "until": hi, "months": months.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
                     "members": r["members"] if r else 0, "purchases": r["purchases"] if r else 0,
                     "revenue": cash(revenue), "repeat_revenue": cash(repeat), "redeemed_points": redeemed,
                     "reward_cost": reward_cost, "operating_cost": operating.quantize(CENT, rounding=ROUND_HALF_UP),
                     "net_gain": gain, "roi_pct": pct(gain, spent),
                     "partner_purchases": r["partner_purchases"] if r else 0,
                     "partner_revenue": cash(r["partner_revenue"] if r else 0), "currency": d.currency})
    cols = ["program", "since", "until", "months", "members", "purchases", "revenue", "repeat_revenue",
            "redeemed_points", "reward_cost", "operating_cost", "net_gain", "roi_pct", "partner_purchases",
            "partner_revenue", "currency"]
    return Report(cols, rows, cols[3:-1])



FIRST_DAYS = 90
SEGMENTS = ["members", "anonymous", "members_first", "members_after", "partners"]


def ticket(db, program: str | None = None, since: str | None = None, until: str | None = None) -> Report:
    """Average purchase value per program: members vs anonymous sales, and members in their
    first 90 days after joining vs afterwards, all of them the operator's own sales; members'
    purchases at partners (the partners' revenue) are a segment of their own."""
    lo, hi = span(since, until)
    chosen = codes(db, program)
    found = {(r["program"], r["segment"]): r for r in sql.ticket(db, lo or "0000", hi if until else "9999",
                                                                 program, FIRST_DAYS)}
    labels = {"members": "members", "anonymous": "anonymous (non-members)",
              "members_first": f"members, first {FIRST_DAYS} days", "members_after": f"members, after {FIRST_DAYS} days",
              "partners": "members at partners (partners' revenue)"}
    rows = []
    for code in chosen:
        d = require_program(db, code)
        for seg in SEGMENTS:
            r = found.get((code, seg))
            n, amount = (r["purchases"], r["amount"]) if r else (0, 0)
            rows.append({"program": code, "segment": seg, "description": labels[seg], "purchases": n,
                         "amount": cash(amount), "avg_ticket": cash(Decimal(amount) / n) if n else None,
                         "currency": d.currency})
    return Report(["program", "segment", "description", "purchases", "amount", "avg_ticket", "currency"], rows,
                   ["purchases", "amount", "avg_ticket"])
