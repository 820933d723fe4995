"""Milestones for re-engagement: members who crossed a points milestone of their program
(`milestones: [500, 1000]`, on points earned) or moved tier in a period, with what an
e-mail tool needs to write to them."""

from __future__ import annotations

from ..core import rules
from ..store import reports as sql
from ..store.programs import require_program
from .shape import Report, codes, span

COLUMNS = ["member_id", "name", "email", "program", "kind", "milestone", "previous", "reached_at"]


def milestones(db, since: str, until: str | None = None, program: str | None = None) -> Report:
    """Points milestones crossed and tier moves in [since, until), in time order."""
    lo, hi = span(since, until)
    rows = []
    for code in codes(db, program):
        p = require_program(db, code)
        rows += _points(db, p, lo, hi) + _tiers(db, p, lo, hi)
    rows.sort(key=lambda r: (r["reached_at"], r["program"], r["member_id"], r["kind"]))
    return Report(COLUMNS, rows, [])


def _points(db, p, since: str, until: str) -> list[dict]:
    if not p.milestones:
        return []
    members = sql.earned_before(db, p.code, since)
    credits: dict[int, list] = {}
    for eid, at, points in sql.credits_between(db, p.code, since, until):
        credits.setdefault(eid, []).append((at, points))
    out = []
    for eid, items in credits.items():
        m = members[eid]
        for threshold, at in rules.milestones_crossed(m["earned"], items, p.milestones):
            out.append({"member_id": m["member_id"], "name": m["name"], "email": m["email"], "program": p.code,
                        "kind": "points", "milestone": f"{threshold} points", "previous": None, "reached_at": at})
    return out


def _tiers(db, p, since: str, until: str) -> list[dict]:
    return [{"member_id": r["member_id"], "name": r["name"], "email": r["email"], "program": p.code,
             "kind": f"tier {rules.tier_direction(p, r['previous'], r['tier'])}", "milestone": r["tier"],
             "previous": r["previous"], "reached_at": r["effective_at"]}
            for r in sql.tier_moves_between(db, p.code, since, until)]
