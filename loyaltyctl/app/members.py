"""Reading members: where a member stands (`member show`), everyone at a moment
(`member list`), and every entry with the why of it (`history`)."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Iterator

from ..core.program import Program
from ..core.values import from_e4, money, optional_text, shift, ts_or_now
from ..errors import InputError, NotFound
from ..store import members as store
from ..store.connection import Database
from .lookup import program, resolve


def show(db: Database, member_id: str, program_code: str | None = None, as_of: str | None = None) -> list[dict]:
    at = ts_or_now(as_of, "as_of")
    if program_code:
        enrollments = [resolve(db, member_id, program_code)[0]]
    else:
        enrollments = store.enrollments_of(db, member_id)
        if not enrollments:
            raise NotFound(f"unknown member {member_id!r}")
    member = store.member(db, member_id)
    out = [_state(db, member, enr, program(db, enr.program), at) for enr in enrollments if enr.joined_at <= at]
    if not out:
        raise NotFound(f"member {member_id!r} was not enrolled at {at}")
    return out


def _state(db: Database, member, enr, p: Program, at: str) -> dict:
    c = store.counters_at(db, enr.id, at, shift(at, 30))
    balance = store.balance_at(db, enr.id, at)
    state = {
        "member_id": enr.member_id, "name": member.name, "email": member.email, "program": p.code, "as_of": at,
        "joined_at": enr.joined_at, "tags": list(enr.tags), "balance": balance, "value": money(balance * p.point_value, p.currency),
        "currency": p.currency, "tier": None, "perks": None, "next_tier": None, "to_next_tier": None,
        "qualifying": None,
        "lifetime_earned": c.earned, "opening": c.opening, "redeemed": c.redeemed, "clawed_back": c.clawed_back,
        "adjusted": c.adjusted,
        "expired": c.expired, "expiring_30d": c.expiring_soon, "next_expiry": c.next_expiry,
        "last_activity": c.last_activity,
    }
    if p.tiered:
        state.update(_progress(db, enr, p, at))
    return state


def qualifying(db: Database, enrollment_id: int, p: Program, at: str) -> Decimal:
    """The tier window's total at `at`, in the unit of the program's thresholds."""
    total = store.qualifying_total(db, enrollment_id, p.basis, shift(at, -p.window_days), at)
    return from_e4(total) if p.basis == "spend" else Decimal(total)


def _progress(db: Database, enr, p: Program, at: str) -> dict:
    tier = store.tier_at(db, enr.id, at)
    total = qualifying(db, enr.id, p, at)
    level = p.level(tier)
    nxt = p.next_level(level) if level else None
    unit = p.currency if p.basis == "spend" else "points"
    fmt = (lambda v: money(v, p.currency)) if p.basis == "spend" else (lambda v: str(int(v)))
    out = {"tier": tier, "perks": list(level.perks) if level else [], "qualifying": fmt(total),
           "next_tier": nxt.name if nxt else None, "to_next_tier": None}
    if nxt:
        gap = max(Decimal(0), nxt.threshold - total)
        out["to_next_tier"] = f"{fmt(gap)} {unit} to {nxt.name}"
    return out


def listing(db: Database, program_code: str | None = None, tier: str | None = None, as_of: str | None = None,
            first: int | None = None) -> Iterator[dict]:
    """Members with their program, tier and balance at --as-of, in member order, as read (checked
    before the first row). `first`: the caller means to read about this many rows (a first
    screen), so they are fetched a page at a time instead of in one pass over the ledger."""
    at = _listing_checked(db, program_code, tier, as_of)
    return ({"member_id": r["member_id"], "name": r["name"], "program": r["program_code"], "tier": r["tier"],
             "balance": r["balance"], "joined_at": r["joined_at"]}
            for r in store.balances_at(db, at, program_code, tier, page=first))


def listing_total(db: Database, program_code: str | None = None, tier: str | None = None,
                  as_of: str | None = None) -> tuple[int, int]:
    """How many rows `listing` gives and their total balance (points)."""
    return store.balances_total(db, _listing_checked(db, program_code, tier, as_of), program_code, tier)


def _listing_checked(db: Database, program_code: str | None, tier: str | None, as_of: str | None) -> str:
    at = ts_or_now(as_of, "as_of")
    if program_code:
        p = program(db, program_code)
        if tier and p.tiered and tier not in _tiers_ever(db, program_code):
            p.known_level(tier)
    return at


def history(db: Database, member_id: str, program_code: str | None = None, as_of: str | None = None) -> list[dict]:
    """Every entry up to --as-of (default: now), including expiries not yet recorded by the
    expire job, with a running total and the why of each; then tier changes."""
    at = ts_or_now(as_of, "as_of")
    enr, p = resolve(db, member_id, program_code)
    moves = store.moves_by_entry(db, enr.id)
    items = [((e["effective_at"], 0, e["id"]), _entry_row(e, moves.get(e["id"], []))) for e in store.history(db, enr.id, at)]
    items += [((lot.expires_at, 0, float("inf")), _pending_row(lot, p)) for lot in store.pending_expiries(db, enr.id, at)]
    items += [((c["effective_at"], 1, c["id"]), _tier_row(c)) for c in store.tier_changes_of(db, enr.id, at)]
    items.sort(key=lambda item: item[0])
    rows, running = [], 0
    for _, row in items:
        if row["kind"] != "tier":
            running += row["points"]
        row["running_total"] = running if row["kind"] != "tier" else None
        rows.append(row)
    return rows


def _entry_row(e: dict, moves) -> dict:
    return {"effective_at": e["effective_at"], "txn_id": e["txn_id"], "kind": e["kind"], "rule": rule_label(e),
            "points": e["points"], "amount": money(abs(e["amount_e4"])) if e["amount_e4"] is not None else None,
            "program_version": e["program_version"], "lot": e["lot_id"], "lot_expires_at": e["lot_expires_at"],
            "why": why(e, moves), "recorded_at": e["recorded_at"]}


def _pending_row(lot, p: Program) -> dict:
    cause = "inactivity expiry" if lot.rule == "inactivity" else "expiry job"
    return {"effective_at": lot.expires_at, "txn_id": f"expire-{lot.lot_id}", "kind": "expire", "rule": lot.rule,
            "points": -lot.points, "amount": None, "program_version": p.version, "lot": None, "lot_expires_at": None,
            "why": f"{cause}; lot {lot.lot_id} -{lot.points}", "recorded_at": None}


def _tier_row(c: dict) -> dict:
    return {"effective_at": c["effective_at"], "txn_id": None, "kind": "tier", "rule": c["source"], "points": 0,
            "amount": None, "program_version": None, "lot": None, "lot_expires_at": None,
            "why": f"{c['previous'] or '-'} -> {c['tier']}: {c['reason']}", "recorded_at": c["recorded_at"]}


def rule_label(e) -> str:
    if e["rule_index"] is not None:
        return f"earn[{e['rule_index']}] {e['rule_kind']}"
    return e["rule_kind"]


def _purchase_why(e) -> str:
    """A purchase's arithmetic when it earned amount x rate x multiplier; else (lines, a visit
    bonus, points paid, --no-points) where to see how."""
    from ..core import rules  # history only: `member show` starts without the rules

    label = f"partner {e['partner']}" if e["partner"] else "spend"
    tier = f" ({e['tier']})" if e["tier"] else ""
    amount, rate, mult = from_e4(e["amount_e4"]), Decimal(e["rate"]), Decimal(e["multiplier"])
    if e["reason"]:
        return f"{label}: {money(e['amount_e4'])}{tier}, {e['reason']}"
    if not rules.earned_as_rated(e["points"], amount, rate, mult):
        return f"{label}: {money(e['amount_e4'])}{tier} -> {e['points']} (per line or bonus: explain {e['txn_id']})"
    exact = amount * rate * mult
    return f"{label}: {money(e['amount_e4'])} x {e['rate']} x {e['multiplier']}{tier} = {exact.normalize():f} -> {e['points']}"


def why(e, moves: list[tuple[int, int]]) -> str:
    """One line saying how an entry came about."""
    lots = ", ".join(f"lot {lot} {points:+d}" for lot, points in moves if points)
    kind, rule = e["kind"], e["rule_kind"]
    if kind == "earn" and e["amount_e4"] is not None:
        text = _purchase_why(e)
    elif kind == "earn" and rule == "event":
        text = f"event {e['event']}"
    elif kind == "earn" and rule == "referral":
        text = f"referral: {e['reason']}"
    elif kind == "redeem":
        text = f"reward {e['reward']}" if e["reward"] else e["reason"] or "points redeemed"
    elif kind == "refund" and rule == "redeem" and e["reason"]:
        text = e["reason"]
    elif kind == "refund" and rule == "redeem":
        text = f"cancels redemption {e['ref_txn_id']}"
    elif kind == "refund":
        text = f"refund {money(-e['amount_e4'])} of {e['ref_txn_id']}: claw-back"
    elif kind == "expire":
        text = "inactivity expiry" if rule == "inactivity" else "expiry job"  # the lot it expired follows
    elif kind == "opening":
        text = "opening balance"
    else:
        text = e["reason"] or kind
    if e["uncovered"]:
        text += f"; debt {'repaid' if e['uncovered'] > 0 else 'owed'} {abs(e['uncovered'])}"
    return f"{text}; {lots}" if lots else text


def find(db: Database, text: str, limit: int = 20) -> list[dict]:
    """Members whose id, name or email has words starting with every word of `text`, best
    match first (SQLite's FTS5 bm25 rank, via sqlite-utils, over an in-memory index of the
    members' contacts: nothing is written to the ledger, and an erased member is never found)."""
    words = [w for w in re.split(r"[^\w]+", text.lower()) if w]
    if not words:
        raise InputError("give a word of a member's id, name or email", field="search_text")
    import sqlite_utils

    index = sqlite_utils.Database(memory=True)
    index["members"].create({"member_id": str, "name": str, "email": str}, pk="member_id")
    index["members"].insert_all({"member_id": m, "name": n, "email": e} for m, n, e in store.contacts(db))
    index["members"].enable_fts(["member_id", "name", "email"], tokenize="unicode61 remove_diacritics 2")
    query = " ".join('"' + w.replace('"', '""') + '"*' for w in words)  # every word, as a prefix
    found = index["members"].search(query, columns=["member_id", "name", "email"], limit=limit,
                                    order_by="rank, original.member_id")
    return [{"member_id": r["member_id"], "name": r["name"], "email": r["email"]} for r in found]


def update(db: Database, member_id: str, **fields) -> dict:
    """Change a member's contact details (an empty value clears one)."""
    given = {k: optional_text(v, k) for k, v in fields.items() if v is not None}
    if not given:
        raise InputError("give --name, --email or --account")
    with db.write():
        if store.member(db, member_id) is None:
            raise NotFound(f"unknown member {member_id!r}")
        store.set_contact(db, member_id, given)
        m = store.member(db, member_id)
    return {"member_id": m.member_id, "name": m.name, "email": m.email, "account": m.account, "status": "updated"}


def _tiers_ever(db: Database, code: str) -> set[str]:
    """Tier names any version of the program had (members may hold a tier a later version removed)."""
    import json

    from ..store import programs as program_store

    return {lv["name"] for definition in program_store.ever_defined(db, code)
            for lv in ((json.loads(definition).get("tiers") or {}).get("levels") or [])}
