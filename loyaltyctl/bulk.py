"""The fast path of `import transactions`: a batch of purchases, redemptions and
anonymous sales applied in memory, then written with a few executemany calls.

It gives exactly the ledger the row-by-row path gives (tests/test_imports.py and
tests/test_bulk.py compare them), and it only takes batches where that is easy to
guarantee: every row is a purchase, redemption or anonymous sale, each member's
rows come in time order after everything already in their ledger, and no program
involved uses inactivity expiry. Any other batch returns None and is applied row by
row, in its own savepoints, as before."""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from decimal import Decimal

from . import rules, service
from .definition import Definition
from .errors import LoyaltyError
from .imports import RowError, _need, txn_row_head
from .ledger import bulk as sql
from .ledger import store
from .ledger.db import Database
from .values import SCALE, fmt_ts, from_e4, now, parse_amount, parse_points, to_dt, to_e4


class _Bail(Exception):
    """This batch is not for the fast path."""


@dataclass(slots=True)
class _Row:
    line: int
    txn: str
    kind: str
    at: str
    member: str
    amount: Decimal | None = None
    partner: str | None = None
    points: int | None = None
    reward: str | None = None
    error: str | None = None


@dataclass(slots=True)
class _Member:
    enrollment: dict
    d: Definition
    uncovered: int
    tier: str | None
    lots: list = field(default_factory=list)  # [_Lot]
    window: deque = field(default_factory=deque)  # [(effective_at, value)] in time order
    window_sum: int = 0  # of the values in `window`
    points_delta: int = 0
    uncovered_delta: int = 0
    tier_changed: bool = False


def apply_batch(db: Database, batch: list[tuple[int, dict]], program: str | None, enroll_unknown: bool):
    """Apply a batch of (line, row); returns [(status, error)] per row, or None when the
    batch must go row by row. Call inside the batch's transaction."""
    if enroll_unknown:
        return None
    try:
        return _apply(db, batch, program)
    except _Bail:
        return None
    finally:
        sql.drop_temp(db)


def _parse(line: int, row: dict) -> _Row:
    try:
        cells = dict(row) if "__error__" in row else row  # the head check pops the reader's error
        txn, kind, at, member = txn_row_head(cells)
        if kind not in ("purchase", "redeem"):
            raise _Bail()
        r = _Row(line, txn, kind, at, member)
        if kind == "purchase":
            r.partner = (cells.get("partner") or "").strip() or None if member else None
            r.amount = parse_amount(_need(cells, "amount"), "amount")
        else:
            points = (cells.get("points") or "").strip()
            reward = (cells.get("reward") or "").strip()
            if bool(points) == bool(reward):
                raise RowError("redeem needs exactly one of points or reward")
            r.points = parse_points(points, "points") if points else None
            r.reward = reward or None
        return r
    except LoyaltyError as exc:
        return _Row(line, "", "", "", "", error=exc.message)
    except ArithmeticError as exc:
        return _Row(line, "", "", "", "", error=f"bad number: {exc}")


def _apply(db: Database, batch: list[tuple[int, dict]], program: str | None) -> list[tuple[str, str | None]]:
    rows = [_parse(line, row) for line, row in batch]
    members = {r.member for r in rows if not r.error and r.member}
    enrollments = [dict(e) for e in sql.enrollments(db, members)]
    known: set[str] | None = None  # members that exist at all, looked up when a row needs it
    existing, sales = sql.existing_txns(db, [r.txn for r in rows if not r.error])
    by_member: dict[str, list[dict]] = {}
    for e in enrollments:
        by_member.setdefault(e["member_id"], []).append(e)
    definitions: dict[str, Definition] = {}

    def definition(code: str) -> Definition:
        if code not in definitions:
            d = definitions[code] = service.program(db, code)
            if d.inactivity_days:
                raise _Bail()
        return definitions[code]

    if program:
        definition(program)
    # Resolve each row's enrollment (or its error); rows that will change a ledger must
    # come after everything already in it, in time order.
    resolved: list = []
    changing: set[int] = set()  # enrollments with rows that may change their ledger
    redeeming: set[int] = set()  # ... with redemptions among them (those need their lots)
    last: dict[int, str] = {}
    seen: set[str] = set()  # a repeated txn id is a duplicate or a conflict: it changes nothing
    for r in rows:
        enr = None
        if not r.error and r.member:
            mine = by_member.get(r.member, [])
            if program:
                enr = next((e for e in mine if e["program_code"] == program), None)
                if enr is None:
                    if known is None:
                        known = sql.known_members(db)
                    r.error = (f"unknown member {r.member!r}" if r.member not in known
                               else f"member {r.member!r} is not enrolled in program {program!r}")
            elif not mine:
                r.error = f"unknown member {r.member!r}"
            elif len(mine) > 1:
                codes = ", ".join(e["program_code"] for e in sorted(mine, key=lambda e: e["program_code"]))
                r.error = f"member {r.member!r} is in several programs ({codes}); choose one with --program"
            else:
                enr = mine[0]
        resolved.append(enr)
        if enr is not None and r.txn not in existing and r.txn not in sales and r.txn not in seen:
            floor = max(last.get(enr["id"], ""), enr["last_entry"] or "", enr["last_tier"] or "")
            if r.at < floor:
                raise _Bail()  # back-dated: the row-by-row path works out tiers and lots as of then
            last[enr["id"]] = r.at
            changing.add(enr["id"])
            if r.kind == "redeem":
                redeeming.add(enr["id"])
        if not r.error:
            seen.add(r.txn)
    state = _load(db, [e if e is not None and e["id"] in changing else None for e in resolved], rows, definition,
                  redeeming)
    return _run(db, rows, resolved, state, existing, sales, program, definition)


def _load(db: Database, resolved: list, rows: list[_Row], definition, redeeming: set[int]) -> dict[int, _Member]:
    """The state of the enrollments the batch changes: caches, open lots (of those that
    redeem: a purchase only adds a lot) and the qualifying window of tiered programs."""
    used = {e["id"]: e for e in resolved if e is not None}
    state = {eid: _Member(e, definition(e["program_code"]), e["uncovered"], e["tier"]) for eid, e in used.items()}
    if not state:
        return state
    if redeeming:
        for lot in sql.open_lots(db, redeeming):
            if lot["inactivity_days"] is not None:
                raise _Bail()
            state[lot["enrollment_id"]].lots.append(
                _Lot(lot["id"], lot["remaining"], lot["earned_at"], lot["expires_at"]))
    times = [r.at for r, e in zip(rows, resolved) if e is not None]
    for basis in ("spend", "points"):
        tiered = [m.d for m in state.values() if m.d.tiered and m.d.basis == basis]
        if not tiered or not times:
            continue
        # Items after `settled` stay in every row's window: they are loaded as one sum.
        start = fmt_ts(rules.window_start(to_dt(min(times)), max(d.window_days for d in tiered)))
        settled = fmt_ts(rules.window_start(to_dt(max(times)), min(d.window_days for d in tiered)))
        spend_only = basis == "spend" and not store.has_partner_rules(db)
        for eid, at, value in sql.window_items(db, basis, start, settled, list(state), spend_only):
            m = state[eid]
            if m.d.tiered and m.d.basis == basis:
                if at is not None:
                    m.window.append((at, value))
                m.window_sum += value
    return state


@dataclass(slots=True)
class _Lot:
    id: int
    remaining: int
    earned_at: str
    expires_at: str | None
    new: bool = False  # created by this batch (inserted), else loaded (its cached remainder updated)
    touched: bool = False
    entry_id: int = 0
    points: int = 0
    enrollment_id: int = 0


class _Reject(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


ANY = object()  # _Memo.upgrade_need: any qualifying total may change the tier


class _Memo:
    """Per-batch memos of what a batch computes again and again: rule terms per member
    situation, lot expiry and window start per calendar day, content JSON pieces."""

    def __init__(self):
        self.terms: dict = {}
        self.days: dict = {}
        self.quoted: dict = {}
        self.needs: dict = {}

    # service._content's JSON text (json.dumps, sorted keys, default separators), assembled
    # from memoised pieces; amounts are service._num texts (digits and a point: no escaping).
    def _q(self, value: str) -> str:
        text = self.quoted.get(value)
        if text is None:
            text = self.quoted[value] = json.dumps(value)
        return text

    def purchase_content(self, member: str, program: str, amount: str, partner: str | None) -> str:
        partner_part = f'"partner": {self._q(partner)}, ' if partner is not None else ""
        return (f'{{"amount": "{amount}", "kind": "purchase", "member": {self._q(member)}, '
                f'{partner_part}"program": {self._q(program)}}}')

    def redeem_content(self, member: str, program: str, points: int | None, reward: str | None) -> str:
        points_part = f'"points": {points}, ' if points is not None else ""
        reward_part = f', "reward": {self._q(reward)}' if reward is not None else ""
        return f'{{"kind": "redeem", "member": {self._q(member)}, {points_part}"program": {self._q(program)}{reward_part}}}'

    def anonymous_content(self, program: str, amount: str) -> str:
        return f'{{"amount": "{amount}", "kind": "anonymous", "program": {self._q(program)}}}'

    def purchase_terms(self, d: Definition, tags: str, partner: str | None, tier: str | None, member: str):
        """service.purchase_terms without the amount: (index, rule, rate, multiplier, their texts).
        Only successes are memoised; a member without a rule gets the service's own error."""
        key = (d.code, tags, partner, tier)
        found = self.terms.get(key)
        if found is None:
            index, rule, rate, multiplier, _ = service.purchase_terms(
                d, set(filter(None, tags.split(";"))), partner, tier, Decimal(0), member)
            found = self.terms[key] = (index, rule, rate, multiplier, str(rate), str(multiplier))
        return found

    def shifted(self, at: str, days: int, round_to: str | None = None) -> str:
        """rules.lot_expiry (days > 0) or rules.window_start (days < 0) of a stored timestamp:
        whole days keep the time of day, so the date part is worked out once per day."""
        key = (at[:10], days, round_to)
        found = self.days.get(key)
        if found is None:
            midnight = to_dt(at[:10] + "T00:00:00Z")
            moved = rules.lot_expiry(midnight, days, round_to) if days > 0 else rules.window_start(midnight, -days)
            found = self.days[key] = (fmt_ts(moved), round_to is None)
        text, keeps_time = found
        return text[:10] + at[10:] if keeps_time else text

    def upgrade_need(self, d: Definition, tier: str | None):
        """The qualifying value (e4 for spend) from which service.upgrade_to moves `tier` up
        (the next level's threshold; thresholds rise level by level): None at the top level,
        ANY when the member has no level yet (any total places them)."""
        key = (d.code, tier)
        if key not in self.needs:
            level = d.level(tier)
            nxt = d.next_level(level) if level else None
            self.needs[key] = ANY if level is None else (
                None if nxt is None else nxt.threshold * (SCALE if d.basis == "spend" else 1))
        return self.needs[key]


def _run(db: Database, rows: list[_Row], resolved: list, state: dict[int, _Member], existing: dict, sales: dict,
         program, definition):
    next_entry, next_lot = sql.next_ids(db)
    recorded = fmt_ts(now())
    entries, moves, tiers, new_sales, new_lots, out = [], [], [], [], [], []
    sale_program = None
    memo = _Memo()
    for r, enr in zip(rows, resolved):
        if r.error:
            out.append(("rejected", r.error))
            continue
        try:
            if not r.member:
                if sale_program is None:
                    sale_program = _sale_program(db, program)
                content = memo.anonymous_content(sale_program, service._num(r.amount))
                if _repeat(sales, existing, r, content, ""):
                    out.append(("duplicate", None))
                    continue
                new_sales.append((r.txn, sale_program, to_e4(r.amount), content, r.at, recorded))
                sales[r.txn] = (content, r.at)
                out.append(("recorded", None))
                continue
            d = definition(enr["program_code"])
            if r.kind == "purchase":
                content = memo.purchase_content(r.member, d.code, service._num(r.amount), r.partner)
            else:
                content = memo.redeem_content(r.member, d.code, r.points, r.reward)
            if _repeat(existing, sales, r, content, " (an anonymous sale)"):
                out.append(("duplicate", None))
                continue
            if r.kind == "redeem" and r.reward is not None:
                try:
                    r.points = service.reward_points(d, r.reward)
                except LoyaltyError as exc:
                    raise _Reject(exc.message) from None
            if r.at < enr["joined_at"]:
                raise _Reject(f"--at {r.at} is before member {r.member!r} joined {d.code!r} ({enr['joined_at']})")
            m = state[enr["id"]]
            if r.kind == "purchase":
                row, lot, move, tier = _purchase(m, r, next_entry, next_lot, content, recorded, memo)
                if lot is not None:
                    new_lots.append(lot)
                    next_lot += 1
            else:
                (row, move), tier = _redeem(m, r, next_entry, content, recorded), None
            entries.append(row)
            moves += move
            if tier:
                tiers.append(tier)
            next_entry += 1
            existing[r.txn] = (content, r.at)
            out.append(("recorded", None))
        except _Reject as exc:
            out.append(("rejected", exc.message))
    lots = [(lot.id, lot.enrollment_id, lot.entry_id, lot.points, lot.earned_at, lot.expires_at, lot.remaining)
            for lot in new_lots]
    updates = [(lot.remaining, lot.id) for m in state.values() for lot in m.lots if lot.touched and not lot.new]
    totals = [(m.points_delta, m.uncovered_delta, eid) for eid, m in state.items() if m.points_delta or m.uncovered_delta]
    tier_cache = [(m.tier, eid) for eid, m in state.items() if m.tier_changed]
    sql.write(db, entries, lots, moves, tiers, new_sales, updates, totals, tier_cache)
    return out


def _repeat(same: dict, other: dict, r: _Row, content: str, other_note: str) -> bool:
    """As service._already: True when r.txn was recorded (in `same`) with this content and time;
    a reuse with other content, or of an id recorded in the `other` table, is a conflict."""
    if r.txn in same:
        if same[r.txn] != (content, r.at):
            raise _Reject(f"transaction {r.txn!r} was already recorded with different content")
        return True
    if r.txn in other:
        raise _Reject(f"transaction {r.txn!r} was already recorded with different content{other_note}")
    return False


def _sale_program(db: Database, program: str | None) -> str:
    if program:
        return program
    from .ledger import store

    codes = [r["code"] for r in store.program_rows(db)]
    if len(codes) != 1:
        raise _Reject("an anonymous sale (empty member_id) needs --program")
    return codes[0]


def _purchase(m: _Member, r: _Row, entry_id: int, lot_id: int, content: str, recorded: str, memo: _Memo):
    """As service.earn for a purchase: rule, rate, tier multiplier, lot, debt repayment, upgrade."""
    d = m.d
    tier = m.tier if d.tiered else None
    try:
        index, rule, rate, multiplier, rate_text, multiplier_text = memo.purchase_terms(
            d, m.enrollment["tags"], r.partner, tier, r.member)
    except LoyaltyError as exc:
        raise _Reject(exc.message) from None
    points = rules.earn_points(r.amount, rate, multiplier).points
    repay = min(-m.uncovered, points) if points > 0 else 0
    m.uncovered += repay
    m.uncovered_delta += repay
    m.points_delta += points
    amount_e4 = to_e4(r.amount)
    row = (entry_id, r.txn, m.enrollment["id"], "earn", rule["rule"], index, d.version_id, points, repay, amount_e4,
           rate_text, tier, multiplier_text, r.partner, None, content, r.at, recorded)
    lot, move = None, []
    if points > 0:
        expires = memo.shifted(r.at, d.after_days, d.round_to) if d.after_days else None
        lot = _Lot(lot_id, points - repay, r.at, expires, new=True, entry_id=entry_id, points=points,
                   enrollment_id=m.enrollment["id"])
        m.lots.append(lot)
        if repay:
            move = [(lot_id, entry_id, -repay, r.at)]
    tier_row = None
    if d.tiered:
        window = m.window
        if d.basis == "points" or rule["rule"] == "spend":
            value = amount_e4 if d.basis == "spend" else points
            window.append((r.at, value))
            m.window_sum += value
        # rows come in time order after everything loaded: the window only loses items at its start
        start = memo.shifted(r.at, -d.window_days)
        while window and window[0][0] <= start:
            m.window_sum -= window.popleft()[1]
        need = memo.upgrade_need(d, m.tier)
        if need is ANY or (need is not None and m.window_sum >= need):
            raw = m.window_sum
            found = service.upgrade_to(d, m.tier, from_e4(raw) if d.basis == "spend" else Decimal(raw))
            if found:
                reached, reason = found
                tier_row = (m.enrollment["id"], reached.name, m.tier if d.level(m.tier) else None, reason,
                            d.version_id, r.at, recorded)
                m.tier, m.tier_changed = reached.name, True
    return row, lot, move, tier_row


def _redeem(m: _Member, r: _Row, entry_id: int, content: str, recorded: str):
    """As service.redeem: refuse an overdraw, else take from live lots, soonest expiry first."""
    d = m.d
    points = r.points
    live = [lot for lot in m.lots
            if lot.remaining > 0 and lot.earned_at <= r.at and (lot.expires_at is None or lot.expires_at > r.at)]
    have = sum(lot.remaining for lot in live) + m.uncovered
    if have < points:
        raise _Reject(f"insufficient points: member {r.member!r} has {have} available at {r.at}, "
                      f"redemption needs {points}")
    live.sort(key=lambda lot: (lot.expires_at is None, lot.expires_at or "", lot.id))
    rest, moves = points, []
    for lot in live:
        if rest <= 0:
            break
        take = min(lot.remaining, rest)
        lot.remaining -= take
        lot.touched = True
        rest -= take
        moves.append((lot.id, entry_id, -take, r.at))
    m.points_delta -= points
    row = (entry_id, r.txn, m.enrollment["id"], "redeem", "redeem", None, d.version_id, -points, 0, None, None, None,
           None, None, r.reward, content, r.at, recorded)
    return row, moves
