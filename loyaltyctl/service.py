"""Use cases. Each public function is one transaction and returns plain data
(dicts and lists) for the renderer; nothing here prints."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from decimal import Decimal

from . import rules
from .definition import Definition, Level
from .errors import Conflict, InputError, NotFound
from .ledger import store
from .ledger.db import Database
from .values import fmt_ts, from_e4, money, now, parse_key, to_dt, to_e4, ts_or_now

# --- lookups -------------------------------------------------------------------------


def program(db: Database, code: str) -> Definition:
    """The current version of a program (memoised per connection; `apply` clears it)."""
    cached = db.cache.get(("program", code))
    if cached is not None:
        return cached
    row = store.program_row(db, code)
    if row is None:
        raise NotFound(f"unknown program {code!r}" + _known_programs(db))
    d = db.cache[("program", code)] = Definition.from_row(row)
    return d


def _known_programs(db: Database) -> str:
    codes = [r["code"] for r in store.program_rows(db)]
    return f" (known: {', '.join(codes)})" if codes else " (no programs applied yet; run `loyaltyctl program apply`)"


def _enrollment(db: Database, member_id: str, program_code: str | None):
    """The member's enrollment in the named program, or in their only program.
    Batch imports memoise the result in db.cache["enrollments"] (the columns used
    here, id, member_id, program_code, tags and joined_at, never change)."""
    memo = db.cache.get("enrollments")
    if memo is not None:
        found = memo.get((member_id, program_code))
        if found is None:
            found = memo[(member_id, program_code)] = _lookup_enrollment(db, member_id, program_code)
        return found
    return _lookup_enrollment(db, member_id, program_code)


def _lookup_enrollment(db: Database, member_id: str, program_code: str | None):
    if program_code:
        d = program(db, program_code)
        enr = store.enrollment(db, member_id, program_code)
        if enr is None:
            if store.member_row(db, member_id) is None:
                raise NotFound(f"unknown member {member_id!r}")
            raise NotFound(f"member {member_id!r} is not enrolled in program {program_code!r}")
        return enr, d
    enrollments = store.enrollments_of(db, member_id)
    if not enrollments:
        raise NotFound(f"unknown member {member_id!r}")
    if len(enrollments) > 1:
        codes = ", ".join(e["program_code"] for e in enrollments)
        raise InputError(f"member {member_id!r} is in several programs ({codes}); choose one with --program")
    return enrollments[0], program(db, enrollments[0]["program_code"])


def _fresh(db: Database, enr):
    return store.enrollment_by_id(db, enr["id"])


# The expire job names its entries expire-<lot id> (ledger/jobs.py): an operator's id may not.
RESERVED_TXN_PREFIX = "expire-"


def check_txn(txn: str, field: str = "--txn") -> None:
    """Refuse a transaction id the expire job would later need for its own entries."""
    if txn.strip().startswith(RESERVED_TXN_PREFIX):
        raise InputError(f"{field}: {txn.strip()!r}: ids starting with {RESERVED_TXN_PREFIX!r} "
                         "are reserved for the expire job")


def _txn_id(txn: str | None, prefix: str) -> str:
    if txn is not None:
        return parse_key(txn, "--txn")
    return f"{prefix}-{os.urandom(6).hex()}"  # as secrets.token_hex(6), without importing secrets (start-up)


def _num(amount: Decimal | None) -> str | None:
    """Canonical text of an amount, so 10, 10.0 and 10.00 are the same content."""
    return None if amount is None else f"{amount.normalize():f}"


def _content(**fields) -> str:
    return json.dumps({k: v for k, v in fields.items() if v is not None}, sort_keys=True, default=str)


def _already(db: Database, txn: str | None, content: str, at: str | None):
    """The entry already recorded under this --txn with the same content, else None;
    a reused --txn with other content is a conflict."""
    if txn is None:
        return None
    check_txn(txn)
    existing = store.entry_by_txn(db, txn.strip())
    if existing is None:
        if store.anonymous_sale(db, txn.strip()) is not None:
            raise Conflict(f"transaction {txn!r} was already recorded with different content (an anonymous sale)")
        return None
    if existing["content"] != content or (at is not None and existing["effective_at"] != ts_or_now(at)):
        raise Conflict(f"transaction {txn!r} was already recorded with different content")
    return existing


def _begin(db: Database, member_id: str, program_code: str | None, txn, at, kind: str, **fields):
    """Resolve the enrollment and the request's content; `done` is the entry already
    recorded under this --txn with the same content (a repeat), else None."""
    enr, d = _enrollment(db, member_id, program_code)
    content = _content(member=member_id, program=d.code, kind=kind, **fields)
    return enr, d, content, _already(db, txn, content, at)


def _not_before_joining(enr, at: str) -> None:
    if at < enr["joined_at"]:
        raise InputError(f"--at {at} is before member {enr['member_id']!r} joined {enr['program_code']!r} ({enr['joined_at']})")


# --- balance-changing primitives ---------------------------------------------------------


def _expiry_for(d: Definition, at: str) -> str | None:
    expires = rules.lot_expiry(to_dt(at), d.after_days, d.round_to)
    return fmt_ts(expires) if expires else None


def _credit(db: Database, enr, d: Definition, points: int, at: str, recorded: str, expires_at: str | None = "program", **fields) -> int:
    """Record a crediting entry; its points go into a new lot, first repaying any debt."""
    if expires_at == "program":
        expires_at = _expiry_for(d, at)
    debt = -_fresh(db, enr)["uncovered"]
    repay = min(debt, points) if points > 0 else 0
    entry_id = store.insert_entry(
        db, enrollment_id=enr["id"], program_version_id=d.version_id, points=points, uncovered=repay,
        effective_at=at, recorded_at=recorded, **fields,
    )
    if points > 0:
        lot_id = store.insert_lot(db, enr["id"], entry_id, points, at, expires_at, d.inactivity_days)
        if repay:
            store.insert_moves(db, entry_id, at, [(lot_id, -repay)])
    return entry_id


def _debit(db: Database, enr, d: Definition, points: int, at: str, recorded: str, *, allow_debt: bool,
           first_lot: int | None = None, **fields) -> int:
    """Record a debiting entry, taking points from the lots alive at `at`, soonest expiry first."""
    lots = store.live_lots(db, enr["id"], at, first_lot)
    taken, rest = rules.fifo_take(lots, points)
    if rest and not allow_debt:  # pragma: no cover - callers check the balance first
        raise Conflict("insufficient points")
    entry_id = store.insert_entry(
        db, enrollment_id=enr["id"], program_version_id=d.version_id, points=-points, uncovered=-rest,
        effective_at=at, recorded_at=recorded, **fields,
    )
    store.insert_moves(db, entry_id, at, [(lot_id, -take) for lot_id, take in taken])
    return entry_id


def _no_activity_before_inactivity_expiry(db: Database, enr, at: str) -> None:
    """An earn or redemption is activity: it would move inactivity deadlines already
    recorded by the expire job, so it may not be backdated before one."""
    last = store.last_inactivity_expiry(db, enr["id"])
    if last is not None and at < last:
        raise Conflict(f"--at {at} is before points of member {enr['member_id']!r} expired for inactivity at {last} "
                       "(recorded by the expire job); record it at or after that time")


def available(db: Database, enr, at: str) -> int:
    """Points a redemption at `at` may use: live lots minus any debt."""
    lots = store.live_lots(db, enr["id"], at)
    return sum(r for _, r in lots) + _fresh(db, enr)["uncovered"]


def _tier_name(db: Database, enr, at: str) -> str | None:
    row = store.tier_at(db, enr["id"], at)
    return row["tier"] if row else None


def qualifying(db: Database, enr, d: Definition, at: str) -> Decimal:
    start = fmt_ts(rules.window_start(to_dt(at), d.window_days))
    total = store.qualifying_total(db, enr["id"], d.basis, start, at)
    return from_e4(total) if d.basis == "spend" else Decimal(total)


def upgrade_to(d: Definition, tier: str | None, total: Decimal) -> tuple[Level, str] | None:
    """The level a qualifying total reaches, with the reason, when it is above `tier`."""
    current = d.level(tier)
    reached = d.level_for(total)
    if current is not None and reached.index <= current.index:
        return None
    spend = d.basis == "spend"
    unit = d.currency if spend else "points"
    return reached, (f"qualifying {d.basis} {money(total) if spend else total} {unit} reached "
                     f"{reached.name}'s {money(reached.threshold) if spend else reached.threshold}")


def _upgrade(db: Database, enr, d: Definition, at: str, recorded: str) -> str | None:
    """Upgrade at once when the qualifying total crosses a higher threshold."""
    if not d.tiered:
        return None
    tier = _tier_name(db, enr, at)
    found = upgrade_to(d, tier, qualifying(db, enr, d, at))
    if found is None:
        return None
    reached, reason = found
    store.insert_tier_change(db, enr["id"], reached.name, tier if d.level(tier) else None, "earn", reason,
                             d.version_id, at, recorded)
    return reached.name


# --- use cases ------------------------------------------------------------------


def enroll(db: Database, member_id: str, program_code: str, *, name=None, email=None, tags=(), referred_by=None,
           account=None, at: str | None = None) -> dict:
    member_id = (member_id or "").strip()
    if not member_id:
        raise InputError("MEMBER_ID must not be empty")
    if len(member_id) > 200:
        raise InputError("MEMBER_ID is longer than 200 characters")
    when = ts_or_now(at)
    recorded = fmt_ts(now())
    tag_list = []
    for tag in tags:
        for t in str(tag).split(";"):
            t = t.strip()
            if t and t not in tag_list:
                tag_list.append(t)
    with db.write():
        d = program(db, program_code)
        if store.enrollment(db, member_id, program_code) is not None:
            raise Conflict(f"member {member_id!r} is already enrolled in {program_code!r}")
        referrer = None
        if referred_by:
            if referred_by == member_id:
                raise InputError("--referred-by: a member cannot refer themselves")
            referrer = store.enrollment(db, referred_by, program_code)
            if referrer is None:
                raise NotFound(f"--referred-by: member {referred_by!r} is not enrolled in {program_code!r}")
        if store.member_row(db, member_id) is None:
            store.insert_member(db, member_id, name, email, account, recorded)
        else:
            store.update_member_contact(db, member_id, name, email, account)
        eid = store.insert_enrollment(db, member_id, program_code, ";".join(tag_list), referred_by, when, recorded)
        enr = store.enrollment_by_id(db, eid)
        if d.tiered:
            store.insert_tier_change(db, eid, d.levels[0].name, None, "enroll", "enrolled", d.version_id, when, recorded)
        credited = []
        found = d.referral_rule() if referrer is not None else None
        if found:
            index, rule = found
            for who, pts, role in ((referrer, rule.get("referrer_points", 0), "referrer"),
                                   (enr, rule.get("referee_points", 0), "referee")):
                if pts > 0:
                    _credit(db, who, d, pts, max(when, who["joined_at"]), recorded,
                            txn_id=f"referral-{program_code}-{member_id}-{role}", kind="earn",
                            rule_kind="referral", rule_index=index, reason=f"{role} of {member_id if role == 'referrer' else referred_by}")
                    credited.append({"member_id": who["member_id"], "points": pts, "role": role})
                    _upgrade(db, who, d, max(when, who["joined_at"]), recorded)
    return {"member_id": member_id, "program": program_code, "joined_at": when, "tags": tag_list,
            "tier": d.levels[0].name if d.tiered else None, "referral_credits": credited}


def earn(db: Database, member_id: str, *, program_code=None, amount: Decimal | None = None, partner=None,
         event=None, txn=None, at=None) -> dict:
    """A purchase (at the first matching spend rule, or a partner's rule) or an engagement event."""
    if (amount is None) == (event is None):
        raise InputError("give either --amount (a purchase) or --event (an engagement action)")
    if partner and event:
        raise InputError("--partner applies to purchases (--amount), not to --event")
    with db.write():
        enr, d, content, done = _begin(db, member_id, program_code, txn, at, "event" if event else "purchase",
                                       amount=_num(amount), partner=partner, event=event)
        if done:
            return _result(db, done, enr, d, status="duplicate")
        when = ts_or_now(at)
        recorded = fmt_ts(now())
        _not_before_joining(enr, when)
        _no_activity_before_inactivity_expiry(db, enr, when)
        txn_id = _txn_id(txn, "earn")
        if event is not None:
            entry_id = _earn_event(db, enr, d, event, when, recorded, txn_id, content)
        else:
            entry_id = _earn_purchase(db, enr, d, amount, partner, when, recorded, txn_id, content)
        upgraded = _upgrade(db, enr, d, when, recorded)
        return _result(db, store.entry_by_id(db, entry_id), enr, d, status="recorded", upgraded=upgraded)


def purchase_terms(d: Definition, tags: set[str], partner: str | None, tier: str | None, amount: Decimal,
                   member_id: str) -> tuple[int, dict, Decimal, Decimal, int]:
    """The rule a purchase earns under (the partner's, else the first spend rule whose
    condition the member meets), its rate, the tier multiplier and the points, floored."""
    if partner:
        found = d.partner_rule(partner)
        if not found:
            partners = [s["partner"] for s in d.earn if s["rule"] == "partner"]
            raise NotFound(f"--partner: unknown partner {partner!r} in {d.code!r}"
                           + (f" (known: {', '.join(partners)})" if partners else ""))
        default_mult = False
    else:
        found = d.spend_rule(tags)
        if not found:
            raise InputError(f"program {d.code!r} has no spend rule for member {member_id!r}")
        default_mult = True
    index, rule = found
    use_mult = rule.get("tier_multiplier")
    use_mult = default_mult if use_mult is None else use_mult
    multiplier = d.multiplier(tier) if (d.tiered and use_mult) else Decimal(1)
    rate = Decimal(str(rule["points_per_unit"]))
    return index, rule, rate, multiplier, rules.earn_points(amount, rate, multiplier).points


def _earn_purchase(db, enr, d: Definition, amount: Decimal, partner, when, recorded, txn_id, content) -> int:
    tags = set(filter(None, enr["tags"].split(";")))
    tier = _tier_name(db, enr, when) if d.tiered else None
    index, rule, rate, multiplier, points = purchase_terms(d, tags, partner, tier, amount, enr["member_id"])
    return _credit(db, enr, d, points, when, recorded, txn_id=txn_id, kind="earn",
                   rule_kind=rule["rule"], rule_index=index, amount_e4=to_e4(amount), rate=str(rate),
                   tier=tier, multiplier=str(multiplier), partner=partner, content=content)


def _earn_event(db, enr, d: Definition, event, when, recorded, txn_id, content) -> int:
    found = d.event_rule(event)
    if not found:
        events = [s["event"] for s in d.earn if s["rule"] == "event"]
        raise NotFound(f"--event: unknown event {event!r} in {d.code!r}"
                       + (f" (known: {', '.join(events)})" if events else ""))
    index, rule = found
    if rule.get("once") and store.event_count(db, enr["id"], event, None, None):
        raise Conflict(f"event {event!r} earns once per member and {enr['member_id']!r} already has it")
    limit = rule.get("limit")
    if limit:
        start = rules.period_start(to_dt(when), limit["per"])
        end = _period_end(start, limit["per"])
        if store.event_count(db, enr["id"], event, fmt_ts(start), fmt_ts(end)) >= limit["count"]:
            raise Conflict(f"event {event!r} earns at most {limit['count']} times per {limit['per']}; "
                           f"member {enr['member_id']!r} has reached the limit")
    return _credit(db, enr, d, int(rule["points"]), when, recorded, txn_id=txn_id, kind="earn",
                   rule_kind="event", rule_index=index, event=event, content=content)


def _period_end(start, per: str):
    if per == "day":
        return start + timedelta(days=1)
    if per == "week":
        return start + timedelta(days=7)
    if per == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(year=start.year + 1)


def reward_points(d: Definition, reward: str) -> int:
    """The points a reward of the program's catalogue costs."""
    spec = d.rewards.get(reward)
    if spec is None:
        known = ", ".join(d.rewards) or "none"
        raise NotFound(f"--reward: unknown reward {reward!r} in {d.code!r} (known: {known})")
    return int(spec["points"])


def redeem(db: Database, member_id: str, *, program_code=None, points: int | None = None, reward=None,
           txn=None, at=None) -> dict:
    if (points is None) == (reward is None):
        raise InputError("give either --points N or --reward CODE")
    with db.write():
        enr, d, content, done = _begin(db, member_id, program_code, txn, at, "redeem", points=points, reward=reward)
        if done:
            return _result(db, done, enr, d, status="duplicate")
        if reward is not None:
            points = reward_points(d, reward)
        when = ts_or_now(at)
        _not_before_joining(enr, when)
        _no_activity_before_inactivity_expiry(db, enr, when)
        have = available(db, enr, when)
        if have < points:
            raise Conflict(f"insufficient points: member {member_id!r} has {have} available at {when}, "
                           f"redemption needs {points}")
        entry_id = _debit(db, enr, d, points, when, fmt_ts(now()), allow_debt=False, txn_id=_txn_id(txn, "redeem"),
                          kind="redeem", rule_kind="redeem", reward=reward, content=content)
        return _result(db, store.entry_by_id(db, entry_id), enr, d, status="recorded")


def refund(db: Database, ref_txn: str, *, amount: Decimal | None = None, txn=None, at=None,
           member_id: str | None = None) -> dict:
    """Claw back a purchase's points (wholly or for part of its amount), or cancel a redemption."""
    with db.write():
        ref = store.entry_by_txn(db, ref_txn)
        if ref is None:
            raise NotFound(f"unknown transaction {ref_txn!r}")
        enr = store.enrollment_by_id(db, ref["enrollment_id"])
        if member_id is not None and member_id != enr["member_id"]:
            raise Conflict(f"transaction {ref_txn!r} belongs to member {enr['member_id']!r}, not {member_id!r}")
        d = program(db, enr["program_code"])
        content = _content(member=enr["member_id"], program=d.code, kind="refund", ref=ref_txn, amount=_num(amount))
        done = _already(db, txn, content, at)
        if done:
            return _result(db, done, enr, d, status="duplicate")
        when = ts_or_now(at)
        recorded = fmt_ts(now())
        if when < ref["effective_at"]:
            raise InputError(f"--at {when} is before transaction {ref_txn!r} ({ref['effective_at']})")
        txn_id = _txn_id(txn, "refund")
        if ref["kind"] == "earn" and ref["amount_e4"] is not None:
            entry_id = _refund_purchase(db, enr, d, ref, amount, when, recorded, txn_id, content)
        elif ref["kind"] == "redeem":
            if amount is not None:
                raise InputError("--amount applies to purchases; a redemption is cancelled whole")
            entry_id = _cancel_redemption(db, enr, d, ref, when, recorded, txn_id, content)
        else:
            raise InputError(f"only purchases and redemptions can be refunded; {ref_txn!r} is {_KINDS[ref['kind']]} "
                             f"({ref['rule_kind']})")
        return _result(db, store.entry_by_id(db, entry_id), enr, d, status="recorded")


_KINDS = {"earn": "a points credit", "redeem": "a redemption", "refund": "a refund", "adjust": "an adjustment",
          "expire": "an expiry", "opening": "an opening balance"}  # ledger kinds, as a sentence names them


def _refund_purchase(db, enr, d, ref, amount, when, recorded, txn_id, content) -> int:
    before = store.refunds_of(db, ref["id"])
    purchase = from_e4(ref["amount_e4"])
    refunded = from_e4(before["amount_e4"])
    left = purchase - refunded
    if left <= 0:
        raise Conflict(f"purchase {ref['txn_id']!r} is already fully refunded")
    if amount is None:
        amount = left
    if amount > left:
        raise Conflict(f"--amount {money(amount)} exceeds the {money(left)} left to refund on purchase {ref['txn_id']!r}")
    clawed = rules.claw_back(purchase, refunded, amount, ref["points"], before["points"],
                             Decimal(ref["rate"]), Decimal(ref["multiplier"]))
    lot = store.lot_of_entry(db, ref["id"])
    return _debit(db, enr, d, clawed, when, recorded, allow_debt=True, first_lot=lot["id"] if lot else None,
                  txn_id=txn_id, kind="refund", rule_kind=ref["rule_kind"], rule_index=ref["rule_index"],
                  amount_e4=-to_e4(amount), rate=ref["rate"], tier=ref["tier"], multiplier=ref["multiplier"],
                  partner=ref["partner"], ref_entry_id=ref["id"], content=content)


def _cancel_redemption(db, enr, d, ref, when, recorded, txn_id, content) -> int:
    if store.refunds_of(db, ref["id"])["n"]:
        raise Conflict(f"redemption {ref['txn_id']!r} is already cancelled")
    back = []
    for move in store.moves_of_entry(db, ref["id"]):
        alive = move["expires_at"] is None or move["expires_at"] > when
        if alive and not store.lot_expiry_recorded(db, move["lot_id"]):
            back.append((move["lot_id"], -move["points"]))
    points = sum(p for _, p in back)
    entry_id = store.insert_entry(
        db, enrollment_id=enr["id"], program_version_id=d.version_id, points=points, effective_at=when,
        recorded_at=recorded, txn_id=txn_id, kind="refund", rule_kind="redeem", reward=ref["reward"],
        ref_entry_id=ref["id"], content=content,
    )
    store.insert_moves(db, entry_id, when, back)
    return entry_id


def adjust(db: Database, member_id: str, *, points: int, reason: str, program_code=None, txn=None, at=None) -> dict:
    reason = (reason or "").strip()
    if not reason:
        raise InputError("--reason: an adjustment needs a reason")
    with db.write():
        enr, d, content, done = _begin(db, member_id, program_code, txn, at, "adjust", points=points, reason=reason)
        if done:
            return _result(db, done, enr, d, status="duplicate")
        when = ts_or_now(at)
        recorded = fmt_ts(now())
        _not_before_joining(enr, when)
        fields = dict(txn_id=_txn_id(txn, "adjust"), kind="adjust", rule_kind="adjust", reason=reason, content=content)
        if points > 0:
            entry_id = _credit(db, enr, d, points, when, recorded, **fields)
        else:
            entry_id = _debit(db, enr, d, -points, when, recorded, allow_debt=True, **fields)
        return _result(db, store.entry_by_id(db, entry_id), enr, d, status="recorded")


def opening(db: Database, member_id: str, *, points: int, program_code=None, expires_at: str | None = None,
            txn=None, at=None) -> dict:
    """A balance migrated from another system: a lot expiring at `expires_at` (else by the program's rule)."""
    with db.write():
        enr, d, content, done = _begin(db, member_id, program_code, txn, at, "opening", points=points,
                                       expires_at=expires_at)
        if done:
            return _result(db, done, enr, d, status="duplicate")
        when = ts_or_now(at)
        if expires_at is not None and expires_at <= when:
            raise InputError(f"expires_at {expires_at} is not after the opening balance's time {when}")
        entry_id = _credit(db, enr, d, points, when, fmt_ts(now()),
                           expires_at=expires_at if expires_at is not None else "program",
                           txn_id=_txn_id(txn, "opening"), kind="opening", rule_kind="opening",
                           reason="opening balance", content=content)
        return _result(db, store.entry_by_id(db, entry_id), enr, d, status="recorded")


def anonymous_sale(db: Database, txn: str, program_code: str | None, amount: Decimal, at: str) -> dict:
    """A non-member purchase, kept for analytics (average ticket); it earns nothing."""
    with db.write():
        if not program_code:
            codes = [r["code"] for r in store.program_rows(db)]
            if len(codes) != 1:
                raise InputError("an anonymous sale (empty member_id) needs --program")
            program_code = codes[0]
        program(db, program_code)
        content = _content(program=program_code, kind="anonymous", amount=_num(amount))
        existing = store.anonymous_sale(db, txn)
        if existing is not None:
            if existing["content"] != content or existing["effective_at"] != at:
                raise Conflict(f"transaction {txn!r} was already recorded with different content")
            return {"status": "duplicate", "txn_id": txn}
        if store.txn_exists(db, txn):
            raise Conflict(f"transaction {txn!r} was already recorded with different content")
        store.insert_anonymous_sale(db, txn, program_code, to_e4(amount), content, at, fmt_ts(now()))
    return {"status": "recorded", "txn_id": txn}


def is_enrolled(db: Database, member_id: str, program_code: str) -> bool:
    return store.enrollment(db, member_id, program_code) is not None


def _result(db, entry, enr, d: Definition, *, status: str, upgraded: str | None = None) -> dict:
    if db.cache.get("brief_results"):  # batch imports need only the status, not the new balance
        return {"status": status, "txn_id": entry["txn_id"]}
    at = max(entry["effective_at"], fmt_ts(now()))
    out = {
        "status": status,
        "txn_id": entry["txn_id"],
        "member_id": enr["member_id"],
        "program": d.code,
        "kind": entry["kind"],
        "rule": entry["rule_kind"],
        "points": entry["points"],
        "effective_at": entry["effective_at"],
        "balance": balance(db, enr, at),
    }
    if entry["amount_e4"] is not None:
        out["amount"] = money(abs(entry["amount_e4"]))
    if d.tiered:
        out["tier"] = _tier_name(db, enr, at)
    if upgraded:
        out["upgraded_to"] = upgraded
    return out


# --- reading ---------------------------------------------------------------------


def balance(db: Database, enr, at: str) -> int:
    return store.balance_at(db, enr["id"], at)


def member_show(db: Database, member_id: str, program_code: str | None = None, as_of: str | None = None) -> list[dict]:
    at = ts_or_now(as_of, "--as-of")
    if program_code:
        enrollments = [_enrollment(db, member_id, program_code)[0]]
    else:
        enrollments = store.enrollments_of(db, member_id)
        if not enrollments:
            raise NotFound(f"unknown member {member_id!r}")
    member = store.member_row(db, member_id)
    out = [_member_state(db, member, enr, program(db, enr["program_code"]), at)
           for enr in enrollments if enr["joined_at"] <= at]
    if not out:
        raise NotFound(f"member {member_id!r} was not enrolled at {at}")
    return out


def _member_state(db, member, enr, d: Definition, at: str) -> dict:
    soon = fmt_ts(to_dt(at) + timedelta(days=30))
    c = store.counters_at(db, enr["id"], at, soon)
    state = {
        "member_id": enr["member_id"],
        "name": member["name"],
        "email": member["email"],
        "program": d.code,
        "as_of": at,
        "joined_at": enr["joined_at"],
        "tags": [t for t in enr["tags"].split(";") if t],
        "balance": store.balance_at(db, enr["id"], at),
        "value": money(store.balance_at(db, enr["id"], at) * d.point_value),
        "currency": d.currency,
        "tier": None,
        "next_tier": None,
        "to_next_tier": None,
        "qualifying": None,
        "lifetime_earned": c["earned"],
        "redeemed": c["redeemed"],
        "clawed_back": c["clawed_back"],
        "adjusted": c["adjusted"],
        "expired": c["expired"],
        "expiring_30d": c["expiring_soon"],
        "next_expiry": c["next_expiry"],
        "last_activity": c["last_activity"],
    }
    if d.tiered:
        state.update(_progress(db, enr, d, at))
    return state


def _progress(db, enr, d: Definition, at: str) -> dict:
    tier = _tier_name(db, enr, at)
    total = qualifying(db, enr, d, at)
    level = d.level(tier)
    nxt = d.next_level(level) if level else None
    unit = d.currency if d.basis == "spend" else "points"
    fmt = money if d.basis == "spend" else (lambda v: str(int(v)))
    out = {"tier": tier, "qualifying": fmt(total), "next_tier": nxt.name if nxt else None, "to_next_tier": None}
    if nxt:
        gap = max(Decimal(0), nxt.threshold - total)
        out["to_next_tier"] = f"{fmt(gap)} {unit} to {nxt.name}"
    return out


def member_list(db: Database, program_code: str | None = None, tier: str | None = None, as_of: str | None = None) -> list[dict]:
    at = ts_or_now(as_of, "--as-of")
    if program_code:
        d = program(db, program_code)
        if tier and d.tiered and not d.level(tier):
            raise NotFound(f"--tier: unknown tier {tier!r} in {program_code!r} "
                           f"(known: {', '.join(lv.name for lv in d.levels)})")
    return [{"member_id": r["member_id"], "name": r["name"], "program": r["program_code"], "tier": r["tier"],
             "balance": r["balance"], "joined_at": r["joined_at"]}
            for r in store.balances_at(db, at, program_code, tier)]


def history(db: Database, member_id: str, program_code: str | None = None, as_of: str | None = None) -> list[dict]:
    """Every entry up to --as-of (default: now), including expiries not yet recorded by the
    expire job, with a running total and the why of each; then tier changes."""
    at = ts_or_now(as_of, "--as-of")
    enr, d = _enrollment(db, member_id, program_code)
    moves = store.moves_by_entry(db, enr["id"])
    items = []
    for e in store.history(db, enr["id"], at):
        items.append(((e["effective_at"], 0, e["id"]), {
            "effective_at": e["effective_at"], "txn_id": e["txn_id"], "kind": e["kind"], "rule": _rule_label(e),
            "points": e["points"], "amount": money(abs(e["amount_e4"])) if e["amount_e4"] is not None else None,
            "program_version": e["program_version"], "lot": e["lot_id"], "lot_expires_at": e["lot_expires_at"],
            "why": why(e, moves.get(e["id"], [])), "recorded_at": e["recorded_at"]}))
    for lot in store.pending_expiries(db, enr["id"], at):
        items.append(((lot["expires_at"], 0, float("inf")), {
            "effective_at": lot["expires_at"], "txn_id": f"expire-{lot['id']}", "kind": "expire", "rule": lot["rule"],
            "points": -lot["points"], "amount": None, "program_version": d.version, "lot": None,
            "lot_expires_at": None,
            "why": f"{'inactivity expiry' if lot['rule'] == 'inactivity' else 'expiry job'}; lot {lot['id']} -{lot['points']}",
            "recorded_at": None}))
    for change in store.tier_changes_of(db, enr["id"], at):
        items.append(((change["effective_at"], 1, change["id"]), {
            "effective_at": change["effective_at"], "txn_id": None, "kind": "tier", "rule": change["source"],
            "points": 0, "amount": None, "program_version": None, "lot": None, "lot_expires_at": None,
            "why": f"{change['previous'] or '-'} -> {change['tier']}: {change['reason']}",
            "recorded_at": change["recorded_at"]}))
    items.sort(key=lambda item: item[0])
    rows, running = [], 0
    for _, row in items:
        if row["kind"] != "tier":
            running += row["points"]
        row["running_total"] = running if row["kind"] != "tier" else None
        rows.append(row)
    return rows


def _rule_label(e) -> str:
    if e["rule_index"] is not None:
        return f"earn[{e['rule_index']}] {e['rule_kind']}"
    return e["rule_kind"]


def why(e, moves: list[tuple[int, int]]) -> str:
    """One line saying how an entry came about."""
    lots = ", ".join(f"lot {lot} {points:+d}" for lot, points in moves if points)
    kind, rule = e["kind"], e["rule_kind"]
    if kind == "earn" and e["amount_e4"] is not None:
        exact = from_e4(e["amount_e4"]) * Decimal(e["rate"]) * Decimal(e["multiplier"])
        label = f"partner {e['partner']}" if e["partner"] else "spend"
        tier = f" ({e['tier']})" if e["tier"] else ""
        text = f"{label}: {money(e['amount_e4'])} x {e['rate']} x {e['multiplier']}{tier} = {exact.normalize():f} -> {e['points']}"
    elif kind == "earn" and rule == "event":
        text = f"event {e['event']}"
    elif kind == "earn" and rule == "referral":
        text = f"referral: {e['reason']}"
    elif kind == "redeem":
        text = f"reward {e['reward']}" if e["reward"] else "points redeemed"
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


# --- programs ---------------------------------------------------------------------


def validate_programs(paths: list[str]) -> tuple[list[dict], list[str]]:
    """The valid programs as rows, and one message per problem found (every bad file, not just the first)."""
    from .programs import check_paths

    loaded, errors = check_paths(paths)
    return ([{"path": path, "code": p.code, "name": p.name, "status": "valid"} for path, p in loaded],
            [e.message for e in errors])


def apply_programs(db: Database, paths: list[str]) -> list[dict]:
    """Validate every file first, then record a new version of each changed program."""
    from .programs import load_paths, to_canonical_json

    loaded = load_paths(paths)
    results = []
    db.cache.clear()
    with db.write():
        recorded = fmt_ts(now())
        for path, p in loaded:
            canonical = to_canonical_json(p)
            row = store.program_row(db, p.code)
            if row is not None and row["definition"] == canonical:
                results.append({"code": p.code, "path": path, "version": row["current_version"], "status": "unchanged"})
                continue
            version = store.insert_program_version(db, p.code, p.name, canonical, path, recorded)
            results.append({"code": p.code, "path": path, "version": version,
                            "status": "created" if row is None else "updated"})
    return results


def list_programs(db: Database) -> list[dict]:
    out = []
    for row in store.program_rows(db):
        d = Definition.from_row(row)
        out.append({"code": d.code, "name": d.name, "version": d.version, "currency": d.currency,
                    "point_value": money(d.point_value) if d.point_value >= Decimal("0.01") else str(d.point_value),
                    "rules": len(d.earn), "tiers": [lv.name for lv in d.levels],
                    "expiry_days": d.after_days, "members": row["members"], "applied_at": row["applied_at"]})
    return out


def show_program(db: Database, code: str) -> dict:
    d = program(db, code)
    return {"code": d.code, "name": d.name, "version": d.version, "currency": d.currency,
            "point_value": str(d.point_value), "definition": d.data,
            "earn": [dict(index=i, **{k: v for k, v in spec.items() if v is not None}) for i, spec in enumerate(d.earn)],
            "levels": [{"name": lv.name, "threshold": str(lv.threshold), "multiplier": str(lv.multiplier),
                        "perks": list(lv.perks)} for lv in d.levels],
            "rewards": list(d.rewards.values()),
            "expiry": d.data.get("expiry"), "tiers": d.data.get("tiers")}
