"""The posting engine: the only place that decides points, lots (FIFO by expiry),
claw-backs, tier upgrades and idempotency.

`post(book, command)` reads the book (the ledger state a command or a batch of commands
needs, loaded by the store) and returns a Posting (rows to write, member states after)
or a Reject (a LoyaltyError naming its field). It changes nothing; `apply(book, posting)`
folds a posting into the book so the next command of a batch sees it. Single commands
and imports run exactly this code."""

from __future__ import annotations

import bisect
from dataclasses import replace

from ..errors import Conflict, InputError, LoyaltyError, NotFound
from . import rules
from .program import unknown_program
from .records import (
    Adjust, AnonymousSale, Book, Entry, Enrollment, Event, Join, Lot, MemberState, Move, Opening, Posting,
    Prior, Purchase, Qualifying, Redeem, Ref, Refund, Reject, Sale, TierChange,
)
from .values import from_e4, money, num, shift, to_e4

# The expire job names its entries expire-<lot id>: an operator's id may not.
RESERVED_TXN_PREFIX = "expire-"


def check_txn(txn: str) -> None:
    """Refuse a transaction id the expire job would later need for its own entries."""
    if txn.strip().startswith(RESERVED_TXN_PREFIX):
        raise InputError(f"{txn.strip()!r}: ids starting with {RESERVED_TXN_PREFIX!r} are reserved for the "
                         "expire job", field="txn_id")


def post(book: Book, command) -> Posting | Reject:
    try:
        return _POST[type(command)](book, command)
    except LoyaltyError as exc:
        return Reject(exc)


# --- looking things up in the book ----------------------------------------------------


def _program(book: Book, code: str):
    found = book.programs.get(code)
    if found is None:
        raise unknown_program(code, book.programs)
    return found


def _member(book: Book, member: str, program: str | None) -> MemberState:
    """The member's enrollment in the named program, or in their only program."""
    mine = book.enrolled.get(member) or {}
    if program:
        _program(book, program)
        eid = mine.get(program)
        if eid is None and member in book.known_members:
            raise NotFound(f"member {member!r} is not enrolled in program {program!r}")
    elif len(mine) > 1:
        raise InputError(f"member {member!r} is in several programs ({', '.join(sorted(mine))}); "
                         "choose one with --program")
    else:
        eid = next(iter(mine.values()), None)
    if eid is None:
        raise NotFound(f"unknown member {member!r}")
    return book.members[eid]


def _new_id(book: Book, taken: list[int]) -> int:
    """A provisional id, distinct from those this posting already took."""
    ident = book.next_id + len(taken)
    taken.append(ident)
    return ident


def _repeat(book: Book, txn: str, text: str, at: str, at_given: bool, *, sale: bool = False) -> Prior | None:
    """The prior recording of this transaction id with the same content (a repeat), else None;
    an id used for other content, or for the other kind of record, is a conflict."""
    check_txn(txn)
    prior = book.priors.get(txn)
    if prior is None:
        return None
    if (prior.entry is None) != sale:
        note = "" if sale else " (an anonymous sale)"
        raise Conflict(f"transaction {txn!r} was already recorded with different content{note}")
    if prior.content != text or ((at_given or sale) and prior.effective_at != at):
        raise Conflict(f"transaction {txn!r} was already recorded with different content")
    return prior


def _duplicate(prior: Prior, txn: str) -> Posting:
    return Posting("duplicate", txn, entry=prior.entry)


def _check_time(state: MemberState, at: str, *, activity: bool) -> None:
    enr = state.enrollment
    if at < enr.joined_at:
        raise InputError(f"{at} is before member {enr.member_id!r} joined {enr.program!r} ({enr.joined_at})",
                         field="occurred_at")
    last = state.last_inactivity_expiry
    if activity and last is not None and at < last:
        # an earn or redemption is activity: it would move inactivity deadlines already recorded
        raise Conflict(f"{at} is before points of member {enr.member_id!r} expired for inactivity at {last} "
                       "(recorded by the expire job); record it at or after that time", field="occurred_at")


def _entry(book: Book, taken: list[int], state: MemberState, txn: str, at: str, **fields) -> Entry:
    return Entry(id=_new_id(book, taken), txn_id=txn, enrollment_id=state.enrollment.id,
                 version_id=state.program.version_id, effective_at=at, recorded_at=book.now, **fields)


# --- credits and debits ---------------------------------------------------------------


class _Draft:
    """The rows of one posting as it is worked out, and the member states it changes."""

    def __init__(self, book: Book):
        self.book = book
        self.taken: list[int] = []
        self.entries: list[Entry] = []
        self.lots: list[Lot] = []
        self.moves: list[Move] = []
        self.tiers: list[TierChange] = []
        self.states: dict[int, MemberState] = {}
        self.upgraded: str | None = None  # the tier the command's own moment reached

    def state(self, state: MemberState) -> MemberState:
        return self.states.get(state.enrollment.id, state)

    def posting(self, txn: str, entry: Entry, **extra) -> Posting:
        return Posting("recorded", txn, entry=entry, entries=tuple(self.entries), lots=tuple(self.lots),
                       moves=tuple(self.moves), tier_changes=tuple(self.tiers), states=tuple(self.states.values()),
                       upgraded=self.upgraded, **extra)

    def credit(self, state: MemberState, entry: Entry, expires_at: str | None) -> Entry:
        """Record a crediting entry; its points go into a new lot, first repaying any debt."""
        state = self.state(state)
        points = entry.points
        repay = min(-state.debt, points) if points > 0 else 0
        entry = replace(entry, uncovered=repay)
        self.entries.append(entry)
        lots = state.lots
        if points > 0:
            lot = Lot(_new_id(self.book, self.taken), state.enrollment.id, entry.id, points, points - repay,
                      entry.effective_at, expires_at, state.program.inactivity_days)
            self.lots.append(lot)
            if repay:
                self.moves.append(Move(lot.id, entry.id, -repay, entry.effective_at))
            if lot.remaining:
                lots = lots + (lot,)
        self.states[state.enrollment.id] = replace(state, debt=state.debt + repay, lots=lots)
        return entry

    def debit(self, state: MemberState, entry: Entry, *, allow_debt: bool, first: int | None = None) -> Entry:
        """Record a debiting entry, taking points from the lots alive then, soonest expiry first."""
        state = self.state(state)
        at = entry.effective_at
        live = [lot for lot in state.lots if rules.lot_alive(lot, at, state.activity)]
        order = rules.fifo_order(live, state.activity, first)
        taken, rest = rules.fifo_take([(lot.id, lot.remaining) for lot in order], -entry.points)
        if rest and not allow_debt:  # pragma: no cover - callers check the balance first
            raise Conflict("insufficient points")
        entry = replace(entry, uncovered=-rest)
        self.entries.append(entry)
        self.moves += [Move(lot_id, entry.id, -take, at) for lot_id, take in taken]
        self.states[state.enrollment.id] = replace(state, debt=state.debt - rest,
                                                   lots=_less(state.lots, dict(taken)))
        return entry

    def activity(self, state: MemberState, at: str) -> None:
        """An earn or redemption: it moves inactivity deadlines."""
        state = self.state(state)
        if state.program.inactivity_days is None and not state.activity:
            return
        activity = list(state.activity)
        bisect.insort(activity, at)
        self.states[state.enrollment.id] = replace(state, activity=tuple(activity))

    def qualify(self, state: MemberState, item: Qualifying) -> None:
        state = self.state(state)
        window = list(state.window)
        bisect.insort(window, item, key=lambda q: (q.at, q.entry_id))
        self.states[state.enrollment.id] = replace(state, window=tuple(window))

    def upgrades(self, state: MemberState, at: str, counted: bool) -> None:
        """Upgrade where the window's total crossed a higher threshold: at `at`, and, when the
        new credit counts toward tiers, at every later qualifying credit whose window holds it
        (a back-dated credit can lift tiers after it). Entries already recorded keep their points."""
        state = self.state(state)
        p = state.program
        if not p.tiered:
            return
        moments = [at]
        if counted:
            end = shift(at, p.window_days)
            moments += sorted({q.at for q in state.window if at < q.at < end})
        for moment in moments:
            reached = self._upgrade_at(self.state(state), moment)
            if reached and moment == at:
                self.upgraded = reached

    def _upgrade_at(self, state: MemberState, at: str) -> str | None:
        p = state.program
        change = rules.tier_at(state.tiers, at)
        tier = change.tier if change else None
        total = rules.qualifying_value(p, rules.qualifying_total(state.window, at, p.window_days))
        found = rules.upgrade_to(p, tier, total)
        if found is None:
            return None
        reached, reason = found
        made = TierChange(_new_id(self.book, self.taken), state.enrollment.id, reached.name,
                          tier if p.level(tier) else None, "earn", reason, p.version_id, at, self.book.now)
        self.tiers.append(made)
        tiers = list(state.tiers)
        bisect.insort(tiers, made, key=lambda c: (c.effective_at, c.id))
        self.states[state.enrollment.id] = replace(state, tiers=tuple(tiers))
        return reached.name


def _less(lots: tuple[Lot, ...], taken: dict[int, int]) -> tuple[Lot, ...]:
    """The lots after taking points from some of them; emptied lots leave the open set."""
    out = []
    for lot in lots:
        take = taken.get(lot.id, 0)
        if lot.remaining - take > 0:
            out.append(replace(lot, remaining=lot.remaining - take) if take else lot)
    return tuple(out)


def _earn(draft: _Draft, state: MemberState, entry: Entry, expires_at: str | None) -> Entry:
    """A credit that is activity and may count toward tiers (purchases, events, referrals)."""
    entry = draft.credit(state, entry, expires_at)
    p = state.program
    counted = p.tiered and rules.counts_for_tier(p, entry.rule_kind)
    if counted:
        value = entry.amount_e4 if p.basis == "spend" else entry.points
        draft.qualify(state, Qualifying(entry.effective_at, entry.effective_at, value, entry.id))
    draft.activity(state, entry.effective_at)
    draft.upgrades(state, entry.effective_at, counted)
    return entry


# --- commands ----------------------------------------------------------------------------


def _purchase(book: Book, cmd: Purchase) -> Posting:
    state = _member(book, cmd.member, cmd.program)
    p = state.program
    text = rules.content(member=cmd.member, program=p.code, kind="purchase", amount=num(cmd.amount),
                         partner=cmd.partner)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return _duplicate(prior, cmd.txn)
    _check_time(state, cmd.at, activity=True)
    change = rules.tier_at(state.tiers, cmd.at) if p.tiered else None
    tier = change.tier if change else None
    terms = rules.purchase_terms(p, state.enrollment.tags, cmd.partner, tier, cmd.member)
    points = rules.earn_points(cmd.amount, terms.rate, terms.multiplier).points
    draft = _Draft(book)
    entry = _entry(book, draft.taken, state, cmd.txn, cmd.at, kind="earn", rule_kind=terms.rule.kind,
                   rule_index=terms.rule.index, points=points, amount_e4=to_e4(cmd.amount), rate=str(terms.rate),
                   tier=tier, multiplier=str(terms.multiplier), partner=cmd.partner, content=text)
    entry = _earn(draft, state, entry, rules.expiry_for(p, cmd.at))
    return draft.posting(cmd.txn, entry)


def _event(book: Book, cmd: Event) -> Posting:
    state = _member(book, cmd.member, cmd.program)
    p = state.program
    text = rules.content(member=cmd.member, program=p.code, kind="event", event=cmd.event)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return _duplicate(prior, cmd.txn)
    _check_time(state, cmd.at, activity=True)
    rule = p.event_rule(cmd.event)
    if rule is None:
        events = p.names("event", "event")
        raise NotFound(f"unknown event {cmd.event!r} in {p.code!r}" + (f" (known: {', '.join(events)})" if events else ""),
                       field="event")
    why = rules.event_refusal(rule, cmd.event, cmd.member, cmd.at, [t for e, t in state.events if e == cmd.event])
    if why:
        raise Conflict(why)
    draft = _Draft(book)
    entry = _entry(book, draft.taken, state, cmd.txn, cmd.at, kind="earn", rule_kind="event", rule_index=rule.index,
                   points=int(rule.get("points")), event=cmd.event, content=text)
    entry = _earn(draft, state, entry, rules.expiry_for(p, cmd.at))
    after = draft.state(state)
    draft.states[state.enrollment.id] = replace(after, events=after.events + ((cmd.event, cmd.at),))
    return draft.posting(cmd.txn, entry)


def _redeem(book: Book, cmd: Redeem) -> Posting:
    state = _member(book, cmd.member, cmd.program)
    p = state.program
    text = rules.content(member=cmd.member, program=p.code, kind="redeem", points=cmd.points, reward=cmd.reward)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return _duplicate(prior, cmd.txn)
    points = cmd.points if cmd.reward is None else p.reward_points(cmd.reward)
    _check_time(state, cmd.at, activity=True)
    live = [lot for lot in state.lots if rules.lot_alive(lot, cmd.at, state.activity)]
    have = sum(lot.remaining for lot in live) + state.debt
    if have < points:
        raise Conflict(f"insufficient points: member {cmd.member!r} has {have} available at {cmd.at}, "
                       f"redemption needs {points}")
    draft = _Draft(book)
    entry = _entry(book, draft.taken, state, cmd.txn, cmd.at, kind="redeem", rule_kind="redeem", points=-points,
                   reward=cmd.reward, content=text)
    entry = draft.debit(state, entry, allow_debt=False)
    draft.activity(state, cmd.at)
    return draft.posting(cmd.txn, entry)


def _adjust(book: Book, cmd: Adjust) -> Posting:
    reason = (cmd.reason or "").strip()
    if not reason:
        raise InputError("an adjustment needs a reason", field="reason")
    state = _member(book, cmd.member, cmd.program)
    p = state.program
    text = rules.content(member=cmd.member, program=p.code, kind="adjust", points=cmd.points, reason=reason)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return _duplicate(prior, cmd.txn)
    _check_time(state, cmd.at, activity=False)
    draft = _Draft(book)
    entry = _entry(book, draft.taken, state, cmd.txn, cmd.at, kind="adjust", rule_kind="adjust", points=cmd.points,
                   reason=reason, content=text)
    if cmd.points > 0:
        entry = draft.credit(state, entry, rules.expiry_for(p, cmd.at))
    else:
        entry = draft.debit(state, entry, allow_debt=True)
    return draft.posting(cmd.txn, entry)


def _opening(book: Book, cmd: Opening) -> Posting:
    state = _member(book, cmd.member, cmd.program)
    p = state.program
    text = rules.content(member=cmd.member, program=p.code, kind="opening", points=cmd.points,
                         expires_at=cmd.expires_at)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return _duplicate(prior, cmd.txn)
    if cmd.expires_at is not None and cmd.expires_at <= cmd.at:
        raise InputError(f"{cmd.expires_at} is not after the opening balance's time {cmd.at}", field="expires_at")
    draft = _Draft(book)
    entry = _entry(book, draft.taken, state, cmd.txn, cmd.at, kind="opening", rule_kind="opening", points=cmd.points,
                   reason="opening balance", content=text)
    expires = cmd.expires_at if cmd.expires_at is not None else rules.expiry_for(p, cmd.at)
    entry = draft.credit(state, entry, expires)
    return draft.posting(cmd.txn, entry)


def _refund(book: Book, cmd: Refund) -> Posting:
    ref = book.refs.get(cmd.ref)
    if ref is None:
        raise NotFound(f"unknown transaction {cmd.ref!r}")
    if isinstance(ref, Exception):
        raise ref
    state = book.members[ref.entry.enrollment_id]
    member = state.enrollment.member_id
    if cmd.member is not None and cmd.member != member:
        raise Conflict(f"transaction {cmd.ref!r} belongs to member {member!r}, not {cmd.member!r}")
    text = rules.content(member=member, program=state.program.code, kind="refund", ref=cmd.ref,
                         amount=num(cmd.amount))
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return _duplicate(prior, cmd.txn)
    if cmd.at < ref.entry.effective_at:
        raise InputError(f"{cmd.at} is before transaction {cmd.ref!r} ({ref.entry.effective_at})", field="occurred_at")
    if ref.entry.is_purchase:
        return _refund_purchase(book, cmd, state, ref, text)
    if ref.entry.kind == "redeem":
        return _cancel_redemption(book, cmd, state, ref, text)
    raise InputError(f"only purchases and redemptions can be refunded; {cmd.ref!r} is a {ref.entry.kind} "
                     f"({ref.entry.rule_kind})")


def _refund_purchase(book: Book, cmd: Refund, state: MemberState, ref: Ref, text: str) -> Posting:
    e = ref.entry
    purchase, refunded = from_e4(e.amount_e4), from_e4(ref.refunded_e4)
    left = purchase - refunded
    if left <= 0:
        raise Conflict(f"purchase {e.txn_id!r} is already fully refunded")
    amount = left if cmd.amount is None else cmd.amount
    if amount > left:
        raise Conflict(f"{money(amount)} exceeds the {money(left)} left to refund on purchase {e.txn_id!r}",
                       field="amount")
    claw = rules.claw_back(purchase, refunded, amount, e.points, ref.clawed, _dec(e.rate), _dec(e.multiplier))
    draft = _Draft(book)
    entry = _entry(book, draft.taken, state, cmd.txn, cmd.at, kind="refund", rule_kind=e.rule_kind,
                   rule_index=e.rule_index, points=-claw, amount_e4=-to_e4(amount), rate=e.rate, tier=e.tier,
                   multiplier=e.multiplier, partner=e.partner, ref_entry_id=e.id, content=text)
    entry = draft.debit(state, entry, allow_debt=True, first=ref.lot.id if ref.lot else None)
    p = state.program
    if p.tiered and rules.counts_for_tier(p, e.rule_kind):
        value = entry.amount_e4 if p.basis == "spend" else entry.points
        draft.qualify(state, Qualifying(e.effective_at, cmd.at, value, entry.id))
    after = replace(ref, refunded_e4=ref.refunded_e4 + to_e4(amount), clawed=ref.clawed + claw, refunds=ref.refunds + 1)
    return draft.posting(cmd.txn, entry, ref=after)


def _dec(text: str | None):
    from decimal import Decimal

    return Decimal(text)


def _cancel_redemption(book: Book, cmd: Refund, state: MemberState, ref: Ref, text: str) -> Posting:
    if cmd.amount is not None:
        raise InputError("applies to purchases; a redemption is cancelled whole", field="amount")
    if ref.refunds:
        raise Conflict(f"redemption {ref.entry.txn_id!r} is already cancelled")
    # the lots as they are now: an emptied lot has left the open set
    current = {lot.id: lot for lot in state.lots}
    lots = {lot.id: current.get(lot.id) or replace(lot, remaining=0) for lot in ref.lots}
    back = {}
    for lot_id, points in ref.moves:
        lot = lots[lot_id]
        end = rules.lot_end(lot, state.activity)
        if (end is None or end > cmd.at) and not lot.expiry_recorded:
            back[lot_id] = back.get(lot_id, 0) - points
    draft = _Draft(book)
    entry = _entry(book, draft.taken, state, cmd.txn, cmd.at, kind="refund", rule_kind="redeem",
                   points=sum(back.values()), reward=ref.entry.reward, ref_entry_id=ref.entry.id, content=text)
    draft.entries.append(entry)
    draft.moves += [Move(lot_id, entry.id, points, cmd.at) for lot_id, points in back.items()]
    reopened = [replace(lots[i], remaining=lots[i].remaining + points) for i, points in back.items()]
    kept = [lot for lot in state.lots if lot.id not in back]
    draft.states[state.enrollment.id] = replace(state, lots=tuple(sorted(kept + reopened, key=lambda lot: lot.id)))
    return draft.posting(cmd.txn, entry, ref=replace(ref, refunds=ref.refunds + 1))


def _sale(book: Book, cmd: AnonymousSale) -> Posting:
    code = cmd.program
    if not code:
        if len(book.programs) != 1:
            raise InputError("an anonymous sale (empty member_id) needs --program")
        code = next(iter(book.programs))
    _program(book, code)
    text = rules.content(program=code, kind="anonymous", amount=num(cmd.amount))
    prior = _repeat(book, cmd.txn, text, cmd.at, True, sale=True)
    if prior:
        return Posting("duplicate", cmd.txn)
    sale = Sale(cmd.txn, code, to_e4(cmd.amount), text, cmd.at, book.now)
    return Posting("recorded", cmd.txn, sale=sale)


def _join(book: Book, cmd: Join) -> Posting:
    p = _program(book, cmd.program)
    if cmd.program in (book.enrolled.get(cmd.member) or {}):
        raise Conflict(f"member {cmd.member!r} is already enrolled in {cmd.program!r}")
    referrer = None
    if cmd.referred_by:
        if cmd.referred_by == cmd.member:
            raise InputError("a member cannot refer themselves", field="referred_by")
        eid = (book.enrolled.get(cmd.referred_by) or {}).get(cmd.program)
        if eid is None:
            raise NotFound(f"member {cmd.referred_by!r} is not enrolled in {cmd.program!r}", field="referred_by")
        referrer = book.members[eid]
    draft = _Draft(book)
    enrollment = Enrollment(_new_id(book, draft.taken), cmd.member, cmd.program, cmd.tags, cmd.at, cmd.referred_by,
                            book.now)
    state = MemberState(enrollment, p, activity_from=cmd.at, window_from=None)
    if p.tiered:
        change = TierChange(_new_id(book, draft.taken), enrollment.id, p.levels[0].name, None, "enroll", "enrolled",
                            p.version_id, cmd.at, book.now)
        draft.tiers.append(change)
        state = replace(state, tiers=(change,))
    draft.states[enrollment.id] = state
    credits = _referral(book, draft, cmd, referrer, state) if referrer is not None else ()
    return draft.posting("", None, enrollment=enrollment, credits=credits)


def _referral(book: Book, draft: _Draft, cmd: Join, referrer: MemberState, referee: MemberState):
    rule = referee.program.referral_rule()
    if rule is None:
        return ()
    credits = []
    for who, points, role in ((referrer, rule.get("referrer_points", 0), "referrer"),
                              (referee, rule.get("referee_points", 0), "referee")):
        if points <= 0:
            continue
        at = max(cmd.at, who.enrollment.joined_at)
        other = cmd.member if role == "referrer" else cmd.referred_by
        txn = f"referral-{cmd.program}-{cmd.member}-{role}"
        entry = _entry(book, draft.taken, who, txn, at, kind="earn", rule_kind="referral", rule_index=rule.index,
                       points=points, reason=f"{role} of {other}")
        _earn(draft, who, entry, rules.expiry_for(who.program, at))
        credits.append((who.enrollment.member_id, points, role))
    return tuple(credits)


_POST = {Purchase: _purchase, Event: _event, Redeem: _redeem, Refund: _refund, Adjust: _adjust,
         Opening: _opening, AnonymousSale: _sale, Join: _join}


# --- folding a posting into the book ----------------------------------------------------


_MISSING = object()


def apply(book: Book, posting: Posting):
    """Make the book reflect a recorded posting, for the next command of a batch; returns a
    function that takes it back out (a row whose later command is refused)."""
    undo: list = []
    if posting.status != "recorded":
        return lambda: None

    def put(table: dict, key, value) -> None:
        undo.append((table, key, table.get(key, _MISSING)))
        table[key] = value

    before = {state.enrollment.id: book.members.get(state.enrollment.id) for state in posting.states}
    for entry in posting.entries:
        if entry.content is not None:
            put(book.priors, entry.txn_id, Prior(entry.content, entry.effective_at, entry))
        if entry.is_purchase or entry.kind == "redeem":
            put(book.refs, entry.txn_id, _new_ref(posting, entry, before.get(entry.enrollment_id)))
    if posting.ref is not None:
        put(book.refs, posting.ref.entry.txn_id, posting.ref)
    if posting.sale is not None:
        put(book.priors, posting.sale.txn_id, Prior(posting.sale.content, posting.sale.effective_at))
    if posting.enrollment is not None:
        e = posting.enrollment
        put(book.enrolled, e.member_id, {**book.enrolled.get(e.member_id, {}), e.program: e.id})
        known = e.member_id in book.known_members
        book.known_members.add(e.member_id)
        if not known:
            undo.append((book.known_members, e.member_id, None))
    for state in posting.states:
        put(book.members, state.enrollment.id, state)
    next_id = book.next_id
    book.next_id = max([book.next_id - 1, *_ids(posting)]) + 1

    def take_back() -> None:
        for table, key, old in reversed(undo):
            if isinstance(table, set):
                table.discard(key)
            elif old is _MISSING:
                table.pop(key, None)
            else:
                table[key] = old
        book.next_id = next_id
    return take_back


def _ids(posting: Posting) -> list[int]:
    ids = [e.id for e in posting.entries] + [lot.id for lot in posting.lots] + [c.id for c in posting.tier_changes]
    return ids + ([posting.enrollment.id] if posting.enrollment else [])


def _new_ref(posting: Posting, entry: Entry, before: MemberState | None) -> Ref:
    """A purchase or redemption recorded in this batch, as a later refund in it will find it."""
    lot = next((lot for lot in posting.lots if lot.entry_id == entry.id), None)
    moves = tuple((m.lot_id, m.points) for m in posting.moves if m.entry_id == entry.id)
    held = {lot.id: lot for lot in (before.lots if before else ())}
    return Ref(entry, lot=lot, moves=moves, lots=tuple(held[lot_id] for lot_id, _ in moves if lot_id in held))
