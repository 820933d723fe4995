"""Scheduled jobs: points expiry and tier review. Both are idempotent for a given
--as-of, serialised by BEGIN IMMEDIATE, and done in set-based SQL."""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

from ..core import rules
from ..core.rules import ReviewCase
from ..core.values import fmt_ts, from_e4, not_future, now, shift, text, ts_or_now
from ..errors import Conflict, InputError
from ..store import jobs as sql
from ..store import members as member_store
from ..store import programs as program_store
from ..store.connection import Database
from .lookup import program as program_of
from .lookup import resolve
from .members import qualifying


def expire(db: Database, as_of: str | None = None, program: str | None = None, dry_run: bool = False) -> dict:
    """Record an expiry entry for the unconsumed remainder of every lot expired at `as_of`."""
    at = not_future(ts_or_now(as_of, "as_of"), "as_of")
    if program:
        program_of(db, program)
    # Every reference the expiry writes (enrollment, program version, lot, the new entries) is
    # read from its parent table in this transaction: skip SQLite's per-row foreign key lookups.
    tx = db.rollback_only() if dry_run else db.write(foreign_keys=False)
    with tx:
        db.lock_all()
        sql.due_lots(db, at, program)
        members = [dict(r) for r in sql.due_summary(db)]
        summary = {"as_of": at, "program": program, "dry_run": dry_run,
                   "lots": sum(m["lots"] for m in members), "points": sum(m["points"] for m in members),
                   "members": len(members)}
        if not dry_run and summary["lots"]:  # a run with nothing due writes nothing at all
            sql.record_due(db, fmt_ts(now()))
            sql.record_job(db, "expire", program, at, json.dumps(summary), fmt_ts(now()))
        sql.drop_due(db)
    summary["by_member"] = members
    return summary


def review(db: Database, as_of: str | None = None, program: str | None = None, dry_run: bool = False) -> dict:
    """Recompute every member's tier from the qualifying window ending at `as_of`."""
    at = not_future(ts_or_now(as_of, "as_of"), "as_of")
    codes = [program] if program else program_store.codes(db)
    moves: list[dict] = []
    tx = db.rollback_only() if dry_run else db.write()
    with tx:
        db.lock_all()
        recorded = fmt_ts(now())
        for code in codes:
            d = program_of(db, code)
            if not d.tiered:
                if program:
                    raise InputError(f"program {code!r} has no tiers")
                continue
            if not dry_run:
                _forward_only(db, d.code, at)
            moves += _review_program(db, d, at, recorded, dry_run)
        counts = Counter(m["direction"] for m in moves)
        summary = {"as_of": at, "program": program, "dry_run": dry_run, "up": counts["up"], "down": counts["down"],
                   "members": len(moves)}
        if not dry_run and moves:  # a run that moves nobody writes nothing at all
            sql.record_job(db, "tiers-review", program, at, json.dumps(summary), recorded)
    summary["moves"] = moves
    return summary


def _forward_only(db: Database, code: str, at: str) -> None:
    """Reviews go forward in time: one as of a moment before a review already recorded would
    rewrite the tier history after it."""
    latest = sql.latest_review(db, code)
    if latest is not None and at < latest:
        raise Conflict(f"{at} is before the latest tier review of {code!r}, recorded as of {latest}; "
                       f"review as of {latest} or later", field="as_of")


def _review_program(db: Database, d, at: str, recorded: str, dry_run: bool) -> list[dict]:
    rows = sql.review_rows(db, d.code, shift(at, -d.window_days), at, d.basis)
    removed = removed_thresholds(db, d)
    fell: list = []
    decided: list[tuple] = []
    for r in rows:
        case = _case(d, r)
        direction = rules.review_direction(d, case, removed.get(case.tier))
        if direction == "down" and d.grace_days and d.level(case.tier) is not None:
            fell.append((r, case))  # (a tier the program removed cannot be kept in grace)
        elif direction != "unchanged":
            decided.append((r, case))
    decided += _past_grace(db, d, at, fell)
    changes, out = [], []
    for r, case in decided:
        target = rules.review_target(d, case)
        direction = rules.review_direction(d, case, removed.get(case.tier))
        changes.append((r["id"], target.name, case.tier, "review",
                        rules.review_reason(d, case, target), d.version_id, None, at, recorded))
        out.append({"member_id": r["member_id"], "program": d.code, "from": case.tier,
                    "to": target.name, "direction": direction, "qualifying": str(case.total)})
    if changes and not dry_run:
        sql.insert_tier_changes(db, changes)
    return out


def _case(d, r: dict) -> ReviewCase:
    total = from_e4(r["total"]) if d.basis == "spend" else r["total"]
    return ReviewCase(total, r["tier"], r["floor_tier"])


def review_moves(db: Database, d, at: str, before=None) -> dict:
    """How many members a tier review at `at` would move up or down under program d (before
    grace, which may hold some downgrades back); `before`: the version applied now, whose
    tiers d may have removed."""
    removed = removed_thresholds(db, d, before)
    counts = Counter(rules.review_direction(d, _case(d, r), removed.get(r["tier"]))
                     for r in sql.review_rows(db, d.code, shift(at, -d.window_days), at, d.basis))
    return {"up": counts["up"], "down": counts["down"], "unchanged": counts["unchanged"]}


def removed_thresholds(db: Database, d, before=None) -> dict:
    """Thresholds of tiers members may hold that program d no longer has: from `before`, or
    from the last earlier version that had each."""
    import json

    out: dict = {}
    versions = [json.loads(x) for x in program_store.ever_defined(db, d.code)]
    if before is not None:
        versions.append(before.data)
    for data in versions:
        for lv in ((data.get("tiers") or {}).get("levels") or []):
            if d.level(lv["name"]) is None:
                out[lv["name"]] = Decimal(str(lv["threshold"]))
    return out


def _past_grace(db: Database, d, at: str, fell: list) -> list:
    """Grace: keep the old tier until grace_days after the member first fell short, i.e. while
    they qualified for it at some moment of the last grace_days (or got it within them)."""
    if not fell:
        return []
    then = shift(at, -d.grace_days)
    best = sql.best_totals(db, then, at, d.window_days, d.basis, [r["id"] for r, _ in fell])
    scale = (lambda v: from_e4(v)) if d.basis == "spend" else (lambda v: v)
    out = []
    for r, case in fell:
        current = d.level(case.tier)
        if scale(best.get(r["id"], 0)) >= current.threshold or r["tier_since"] > then:
            continue  # fell short less than grace_days ago, or reached the tier within them
        out.append((r, case))
    return out


def set_tier(db: Database, member_id: str, tier: str, reason: str, program: str | None = None,
             until: str | None = None, at: str | None = None) -> dict:
    """A manual tier, a floor for the member's tier until it lapses: tier = max(earned, floor).
    A floor at or below the tier the member's qualifying window earns changes nothing."""
    reason = text(reason or "", "reason")
    if not reason:
        raise InputError("a manual tier needs a reason", field="reason")
    when = not_future(ts_or_now(at), "occurred_at")
    lapse = ts_or_now(until, "until") if until else None
    if lapse and lapse <= when:
        raise InputError(f"{lapse} must be after the change takes effect ({when})", field="until")
    with db.write():
        db.lock_all()
        enr, d = resolve(db, member_id, program)
        d.require_tiers()
        level = d.known_level(tier)
        previous = member_store.tier_at(db, enr.id, when)
        earned = d.level_for(qualifying(db, enr.id, d, when))
        result = {"member_id": member_id, "program": d.code, "from": previous, "to": level.name, "until": lapse,
                  "effective_at": when, "reason": reason, "earned": earned.name, "status": "recorded"}
        if level.index <= earned.index:
            return result | {"to": previous, "status": "unchanged"}
        sql.insert_tier_changes(db, [(enr.id, level.name, previous, "manual", reason, d.version_id, lapse, when,
                                      fmt_ts(now()))])
    return result
