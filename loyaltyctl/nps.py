"""NPS surveys: record the answers to "How likely are you to recommend us (0-10)? Why?"
and read them back as scores (NPS = % promoters - % detractors) and comments.

Promoters score 9-10, passives 7-8, detractors 0-6. Shares and NPS are exact
Decimal arithmetic rounded half up to one decimal place; a group without
responses has no NPS (None), not 0."""

from __future__ import annotations

import json
import os
from decimal import ROUND_HALF_UP, Decimal

from . import service
from .errors import Conflict, InputError, NotFound
from .ledger import analytics as sql
from .ledger import store
from .ledger.db import Database
from .values import fmt_ts, now, parse_key, ts_or_now

BY = ("program", "tier", "account", "month")
MAX_COMMENT = 10_000
ONE_DP = Decimal("0.1")


def parse_score(value) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) > 10:
        raise InputError(f"score: {value!r} is not a whole number from 0 to 10")
    return int(text)


def record(db: Database, member_id: str | None = None, *, score, account: str | None = None,
           comment: str | None = None, at: str | None = None, program: str | None = None,
           response_id: str | None = None) -> dict:
    """One survey answer, from a member (their account by default) or from an account.
    Repeating it with the same --response-id and content records nothing new."""
    score = parse_score(score)
    member_id = (member_id or "").strip() or None
    account = (account or "").strip() or None
    comment = (comment or "").strip() or None
    program = (program or "").strip() or None
    if member_id is None and account is None:
        raise InputError("give a MEMBER_ID or --account NAME")
    if comment and len(comment) > MAX_COMMENT:
        raise InputError(f"--comment: longer than {MAX_COMMENT} characters")
    if response_id is not None:
        response_id = parse_key(response_id, "--response-id")
    when = ts_or_now(at)
    with db.write():
        if program:
            service.program(db, program)
        if member_id is not None:
            member = store.member_row(db, member_id)
            if member is None:
                raise NotFound(f"unknown member {member_id!r}")
            codes = [e["program_code"] for e in store.enrollments_of(db, member_id)]
            if program and program not in codes:
                raise NotFound(f"member {member_id!r} is not enrolled in program {program!r}")
            if not program and len(codes) == 1:
                program = codes[0]
            account = account or member["account"]
        content = json.dumps({k: v for k, v in {"member": member_id, "program": program, "account": account,
                                                 "score": score, "comment": comment}.items() if v is not None},
                             sort_keys=True)
        result = {"response_id": response_id, "member_id": member_id, "program": program, "account": account,
                  "score": score, "group": group_of(score), "comment": comment, "answered_at": when}
        if response_id is not None:
            existing = sql.nps_response(db, response_id)
            if existing is not None:
                if existing["content"] != content or (at is not None and existing["answered_at"] != when):
                    raise Conflict(f"response {response_id!r} was already recorded with different content")
                return result | {"status": "duplicate", "answered_at": existing["answered_at"]}
        else:
            response_id = f"nps-{os.urandom(6).hex()}"
        sql.insert_nps(db, [(response_id, member_id, program, account, score, comment, content, when, fmt_ts(now()))])
    return result | {"status": "recorded", "response_id": response_id}


def group_of(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


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
    lo = ts_or_now(since, "--since") if since else "0000"
    hi = ts_or_now(until, "--until") if until else "9999"
    if since and until and hi <= lo:
        raise InputError(f"--until {hi} must be after --since {lo}")
    return lo, hi


def _months(first: str, last: str) -> list[str]:
    y, m = int(first[:4]), int(first[5:7])
    out = []
    while f"{y:04d}-{m:02d}" <= last:
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def summary(db: Database, by: str | None = None, since: str | None = None, until: str | None = None,
            program: str | None = None, account: str | None = None) -> dict:
    """NPS overall or per group; report shape {"columns", "rows", "numeric"}."""
    if by is not None and by not in BY:
        raise InputError(f"--by: {by!r} is not one of {', '.join(BY)}")
    lo, hi = period(since, until)
    if program:
        service.program(db, program)
    found = {tuple(r[:-4]): score_row(*r[-4:]) for r in sql.nps_counts(db, by, lo, hi, program, account)}
    empty = score_row(0, 0, 0, 0)
    if by is None:
        return _shape([], [found.get((), empty)])
    if by == "program":
        codes = [program] if program else [r["code"] for r in store.program_rows(db)]
        keys = sorted(set(codes) | {k[0] for k in found}, key=lambda c: (c is None, c or ""))
        rows = [{"program": k[0]} | found.get(k, empty) for k in ((c,) for c in keys)]
        return _shape(["program"], rows)
    if by == "tier":
        keys = []
        codes = [program] if program else [r["code"] for r in store.program_rows(db)]
        for code in codes:
            keys += [(code, lv.name) for lv in service.program(db, code).levels]
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
    from datetime import timedelta

    from .values import to_dt

    return fmt_ts(to_dt(hi) - timedelta(seconds=1))[:7]


def _shape(keys: list[str], rows: list[dict]) -> dict:
    return {"columns": keys + COUNT_COLUMNS, "rows": rows, "numeric": COUNT_COLUMNS}


COMMENT_COLUMNS = ["answered_at", "response_id", "member_id", "name", "program", "account", "score", "comment"]


def comments(db: Database, which: str | None = None, account: str | None = None, since: str | None = None,
             until: str | None = None, program: str | None = None) -> dict:
    """The "why" answers, newest first; `which`: 'detractors', 'passives', 'promoters' or None (all)."""
    bounds = {None: (0, 10), "detractors": (0, 6), "passives": (7, 8), "promoters": (9, 10)}
    if which not in bounds:
        raise InputError(f"{which!r} is not one of detractors, passives, promoters")
    lo, hi = period(since, until)
    if program:
        service.program(db, program)
    rows = [dict(r) for r in sql.nps_comments(db, *bounds[which], lo, hi, program, account)]
    return {"columns": COMMENT_COLUMNS, "rows": rows, "numeric": ["score"]}
