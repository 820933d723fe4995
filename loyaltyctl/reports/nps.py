"""NPS reports: scores overall or per program, tier, account or month, and the comments.

Promoters score 9-10, passives 7-8, detractors 0-6. Shares and NPS are exact Decimal
arithmetic rounded half up to one decimal place; a group without responses has no NPS
(None), not 0."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from ..core.values import shift, ts_or_now
from ..errors import InputError
from ..store import nps as sql
from ..store import programs as program_store
from ..store.connection import Database
from ..store.programs import require_program
from .shape import ONE_DP, Report

BY = ("program", "tier", "account", "month")


def _pct(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(ONE_DP, rounding=ROUND_HALF_UP)


def score_row(responses: int, promoters: int, passives: int, detractors: int) -> dict:
    """Counts, shares and NPS (from the exact shares, then rounded: 1/3 - 0 = 33.3)."""
    nps = None
    if responses:
        nps = (Decimal(promoters - detractors) * 100 / Decimal(responses)).quantize(ONE_DP, rounding=ROUND_HALF_UP)
    return {"responses": responses, "promoters": promoters, "passives": passives, "detractors": detractors,
            "promoters_pct": _pct(promoters, responses), "passives_pct": _pct(passives, responses),
            "detractors_pct": _pct(detractors, responses), "nps": nps}


COUNT_COLUMNS = ["responses", "promoters", "passives", "detractors", "promoters_pct", "passives_pct",
                 "detractors_pct", "nps"]


def period(since: str | None, until: str | None) -> tuple[str, str]:
    lo = ts_or_now(since, "since") if since else "0000"
    hi = ts_or_now(until, "until") if until else "9999"
    if since and until and hi <= lo:
        raise InputError(f"{hi} must be after --since {lo}", field="until")
    return lo, hi


def _months(first: str, last: str) -> list[str]:
    y, m = int(first[:4]), int(first[5:7])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def summary(db: Database, by: str | None = None, since: str | None = None, until: str | None = None,
            program: str | None = None, account: str | None = None) -> Report:
    """NPS overall or per group; report shape {"columns", "rows", "numeric"}."""
    if by is not None and by not in BY:
        raise InputError(f"{by!r} is not one of {', '.join(BY)}", field="by")
    lo, hi = period(since, until)
    if program:
        require_program(db, program)
    found = {tuple(r[:-4]): score_row(*r[-4:]) for r in sql.nps_counts(db, by, lo, hi, program, account)}
    empty = score_row(0, 0, 0, 0)
    if by is None:
        return _shape([], [found.get((), empty)])
    if by == "program":
        codes = [program] if program else program_store.codes(db)
        keys = sorted(set(codes) | {k[0] for k in found}, key=lambda c: (c is None, c or ""))
        rows = [{"program": k[0]} | found.get(k, empty) for k in ((c,) for c in keys)]
        return _shape(["program"], rows)
    if by == "tier":
        keys = []
        codes = [program] if program else program_store.codes(db)
        for code in codes:
            keys += [(code, lv.name) for lv in require_program(db, code).levels]
        keys += sorted((k for k in found if k not in keys), key=lambda k: (k[0] is None, k[0] or "", k[1] or ""))
        rows = [{"program": k[0], "tier": k[1]} | found.get(k, empty) for k in keys]
        return _shape(["program", "tier"], rows)
    if by == "account":
        known = [account] if account else sql.accounts(db)
        keys = [(a,) for a in known] + ([(None,)] if (None,) in found else [])
        return _shape(["account"], [{"account": k[0]} | found.get(k, empty) for k in keys])
    months = sorted(k[0] for k in found)
    firsts = months + ([lo[:7]] if since else [])
    lasts = months + ([_before(hi)] if until else [])
    months = _months(min(firsts), max(lasts)) if firsts and lasts else []
    return _shape(["month"], [{"month": m} | found.get((m,), empty) for m in months])


def _before(hi: str) -> str:
    """The month of the last moment before an exclusive end."""
    return shift(hi, seconds=-1)[:7]


def _shape(keys: list[str], rows: list[dict]) -> Report:
    return Report(keys + COUNT_COLUMNS, rows, COUNT_COLUMNS)


COMMENT_COLUMNS = ["answered_at", "response_id", "member_id", "name", "program", "account", "score", "comment"]


def comments(db: Database, which: str | None = None, account: str | None = None, since: str | None = None,
             until: str | None = None, program: str | None = None) -> Report:
    """The "why" answers, newest first; `which`: 'detractors', 'passives', 'promoters' or None (all)."""
    bounds = {None: (0, 10), "detractors": (0, 6), "passives": (7, 8), "promoters": (9, 10)}
    if which not in bounds:
        raise InputError(f"{which!r} is not one of detractors, passives, promoters")
    lo, hi = period(since, until)
    if program:
        require_program(db, program)
    rows = [dict(r) for r in sql.nps_comments(db, *bounds[which], lo, hi, program, account)]
    return Report(COMMENT_COLUMNS, rows, ["score"])
