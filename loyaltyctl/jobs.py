"""Scheduled jobs: points expiry and tier review. Both are idempotent for a given
--as-of, serialised by BEGIN IMMEDIATE, and done in set-based SQL."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

from . import rules, service
from .errors import InputError, NotFound
from .ledger import jobs as sql
from .ledger import store
from .ledger.db import Database
from .values import fmt_ts, from_e4, now, to_dt, ts_or_now


def expire(db: Database, as_of: str | None = None, program: str | None = None, dry_run: bool = False) -> dict:
    """Record an expiry entry for the unconsumed remainder of every lot expired at `as_of`."""
    at = ts_or_now(as_of, "--as-of")
    if program:
        service.program(db, program)
    # Every reference the expiry writes (enrollment, program version, lot, the new entries) is
    # read from its parent table in this transaction: skip SQLite's per-row foreign key lookups.
    tx = db.rollback_only() if dry_run else db.write(foreign_keys=False)
    with tx:
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
    at = ts_or_now(as_of, "--as-of")
    codes = [program] if program else [r["code"] for r in store.program_rows(db)]
    moves: list[dict] = []
    tx = db.rollback_only() if dry_run else db.write()
    with tx:
        recorded = fmt_ts(now())
        for code in codes:
            d = service.program(db, code)
            if not d.tiered:
                if program:
                    raise InputError(f"program {code!r} has no tiers")
                continue
            moves += _review_program(db, d, at, recorded, dry_run)
        counts = Counter(m["direction"] for m in moves)
        summary = {"as_of": at, "program": program, "dry_run": dry_run, "up": counts["up"], "down": counts["down"],
                   "members": len(moves)}
        if not dry_run and moves:  # a run that moves nobody writes nothing at all
            sql.record_job(db, "tiers-review", program, at, json.dumps(summary), recorded)
    summary["moves"] = moves
    return summary


def _review_program(db: Database, d, at: str, recorded: str, dry_run: bool) -> list[dict]:
    start = fmt_ts(rules.window_start(to_dt(at), d.window_days))
    rows = sql.review_rows(db, d.code, start, at, d.basis)
    scale = (lambda v: from_e4(v)) if d.basis == "spend" else (lambda v: v)
    fell: list = []
    decided: list[tuple] = []
    for r in rows:
        total = scale(r["total"])
        target = d.level_for(total)
        floor = d.level(r["floor_tier"])
        if floor and floor.index > target.index:
            target = floor
        current = d.level(r["tier"])
        if current is not None and target.index < current.index and d.grace_days:
            fell.append((r, total, target, current))
            continue
        if current is None or target.index != current.index:
            decided.append((r, total, target, current))
    if fell:
        # Grace: keep the old tier until grace_days after the member first fell short, i.e. while
        # they qualified for it at some moment of the last grace_days (or got it within them).
        then = fmt_ts(to_dt(at) - timedelta(days=d.grace_days))
        best = sql.best_totals(db, then, at, d.window_days, d.basis, [r["id"] for r, *_ in fell])
        for r, total, target, current in fell:
            if scale(best.get(r["id"], 0)) >= current.threshold or r["tier_since"] > then:
                continue  # fell short less than grace_days ago, or reached the tier within them
            decided.append((r, total, target, current))
    unit = d.currency if d.basis == "spend" else "points"
    changes, out = [], []
    for r, total, target, current in decided:
        direction = "up" if current is None or target.index > current.index else "down"
        reason = f"review: qualifying {d.basis} {total} {unit} in {d.window_days} days"
        if r["floor_tier"] == target.name and d.level_for(total).index < target.index:
            reason += f"; manual floor {target.name}"
        changes.append((r["id"], target.name, current.name if current else None, "review", reason, d.version_id,
                        None, at, recorded))
        out.append({"member_id": r["member_id"], "program": d.code, "from": current.name if current else None,
                    "to": target.name, "direction": direction, "qualifying": str(total)})
    if changes and not dry_run:
        sql.insert_tier_changes(db, changes)
    return out


def set_tier(db: Database, member_id: str, tier: str, reason: str, program: str | None = None,
             until: str | None = None, at: str | None = None) -> dict:
    """A manual tier that acts as a floor for reviews until it lapses."""
    reason = (reason or "").strip()
    if not reason:
        raise InputError("--reason: a manual tier needs a reason")
    when = ts_or_now(at)
    lapse = ts_or_now(until, "--until") if until else None
    if lapse and lapse <= when:
        raise InputError(f"--until {lapse} must be after the change takes effect ({when})")
    with db.write():
        enr, d = service._enrollment(db, member_id, program)
        if not d.tiered:
            raise InputError(f"program {d.code!r} has no tiers")
        level = d.level(tier)
        if level is None:
            raise NotFound(f"--tier: unknown tier {tier!r} in {d.code!r} (known: {', '.join(lv.name for lv in d.levels)})")
        previous = service._tier_name(db, enr, when)
        store.insert_tier_change(db, enr["id"], level.name, previous, "manual", reason, d.version_id, when,
                                 fmt_ts(now()), until=lapse)
    return {"member_id": member_id, "program": d.code, "from": previous, "to": level.name, "until": lapse,
            "effective_at": when, "reason": reason}


def expiring_report(db: Database, within: int = 30, min_points: int = 1, program: str | None = None,
                    as_of: str | None = None) -> list[dict]:
    if within <= 0:
        raise InputError("--within: days must be positive")
    at = ts_or_now(as_of, "--as-of")
    if program:
        service.program(db, program)
    until = fmt_ts(to_dt(at) + timedelta(days=within))
    return [dict(r) for r in sql.expiring(db, at, until, program, min_points)]


