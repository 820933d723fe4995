"""The posting engine: the only place that decides points, lots (FIFO by expiry),
claw-backs, tier upgrades and idempotency.

`post(book, command)` reads the book (the ledger state a command or a batch of commands
needs, loaded by the store) and returns a Posting (the rows to write, and what the member
states learn from them) or a Reject (a LoyaltyError naming its field); it changes
nothing. `apply(book, posting)` folds a posting into the book so that the next command
of a batch sees it. Single commands and imports run exactly this code."""

from __future__ import annotations

import bisect
from dataclasses import replace
from decimal import Decimal

from ..errors import Conflict, InputError, LoyaltyError, NotFound
from . import rules
from .program import Rule, unknown_program
from .commands import Adjust, AnonymousSale, Event, Join, Opening, NEVER, Posting, Purchase, Redeem, Refund, Reject
from .records import Book, Entry, Enrollment, Lot, MemberState, Move, Payment, Prior, Qualifying, Ref, Sale, TierChange
from .values import check_precision, from_e4, money, not_future, num, to_e4

# The expire job names its entries expire-<lot id>: an operator's id may not.
RESERVED_TXN_PREFIX = "expire-"
# A purchase T paid partly with points records the payment as T/points (its refund R gives
# the points back as R/points): an operator's id may not end so.
PAID_SUFFIX = "/points"


def check_txn(txn: str) -> None:
    """Refuse a transaction id the expire job, or a payment with points, would need for its own entries."""
    if txn.strip().startswith(RESERVED_TXN_PREFIX):
        raise InputError(f"{txn.strip()!r}: ids starting with {RESERVED_TXN_PREFIX!r} are reserved for the "
                         "expire job", field="txn_id")
    if txn.strip().endswith(PAID_SUFFIX):
        raise InputError(f"{txn.strip()!r}: ids ending with {PAID_SUFFIX!r} are reserved for payments with "
                         "points", field="txn_id")


def post(book: Book, command) -> Posting | Reject:
    try:
        not_future(command.at, "joined_at" if isinstance(command, Join) else "occurred_at", book.now)
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
        raise InputError(f"member {member!r} is in several programs ({', '.join(sorted(mine))}); choose one",
                         field="program")
    else:
        eid = next(iter(mine.values()), None)
    if eid is None:
        raise NotFound(f"unknown member {member!r}")
    return book.members[eid]


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


# --- a posting as it is worked out -----------------------------------------------------------


class _Draft:
    """The rows of one posting as it is worked out. Member states are read, never changed:
    what this posting already did to them (debt repaid, points taken, tiers reached) is
    kept here and read through it."""

    def __init__(self, book: Book):
        self.book = book
        self.next_id = book.next_id
        self.entries: list[Entry] = []
        self.lots: list[Lot] = []
        self.moves: list[Move] = []
        self.tiers: list[TierChange] = []
        self.qualifying: list[tuple[int, Qualifying]] = []
        self.activity: list[tuple[int, str]] = []
        self.debt: dict[int, int] = {}
        self.upgraded: str | None = None
        self.reopened: list[Lot] = []  # emptied lots points go back to

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def entry(self, state: MemberState, txn: str, at: str, points: int, uncovered: int = 0, **fields) -> Entry:
        made = Entry(self.new_id(), txn, state.enrollment.id, fields.pop("kind"), fields.pop("rule_kind"),
                     state.program.version_id, points, at, self.book.now, uncovered=uncovered, **fields)
        self.entries.append(made)
        return made

    def posting(self, txn: str, entry: Entry | None, **extra) -> Posting:
        return Posting("recorded", txn, entry=entry, entries=tuple(self.entries), lots=tuple(self.lots),
                       moves=tuple(self.moves), tier_changes=tuple(self.tiers), qualifying=tuple(self.qualifying),
                       activity=tuple(self.activity), upgraded=self.upgraded, **extra)

    # --- points ---

    def credit(self, state: MemberState, txn: str, at: str, points: int, expires_at: str | None, *,
               inactivity: bool = True, **fields) -> Entry:
        """A crediting entry; its points go into a new lot, first repaying any debt. A lot
        without `inactivity` never lapses for inactivity."""
        eid = state.enrollment.id
        debt = state.debt + self.debt.get(eid, 0)
        repay = min(-debt, points) if points > 0 else 0
        entry = self.entry(state, txn, at, points, repay, **fields)
        self.debt[eid] = self.debt.get(eid, 0) + repay
        if points > 0:
            lot = Lot(self.new_id(), eid, entry.id, points, points, at, expires_at,
                      state.program.inactivity_days if inactivity else None)
            self.lots.append(lot)
            if repay:
                self.moves.append(Move(lot.id, entry.id, -repay, at))
        return entry

    def debit(self, state: MemberState, txn: str, at: str, points: int, *, first: int | None = None,
              **fields) -> Entry:
        """A debiting entry, taking points from the lots alive then, soonest expiry first; what
        no lot covers is debt."""
        order = rules.fifo_order(_live(state, at), state.activity, first)
        taken, rest = rules.fifo_take([(lot.id, lot.remaining) for lot in order], points)
        entry = self.entry(state, txn, at, -points, -rest, **fields)
        self.debt[state.enrollment.id] = self.debt.get(state.enrollment.id, 0) - rest
        self.moves += [Move(lot_id, entry.id, -take, at) for lot_id, take in taken]
        return entry

    # --- tiers ---

    def earn(self, state: MemberState, txn: str, at: str, points: int, expires_at: str | None, **fields) -> Entry:
        """A credit that is activity and may count toward tiers (purchases, events, referrals)."""
        entry = self.credit(state, txn, at, points, expires_at, **fields)
        p = state.program
        eid = state.enrollment.id
        item = None
        if p.tiered and rules.counts_for_tier(p, entry.rule_kind):
            item = Qualifying(at, at, entry.amount_e4 if p.basis == "spend" else points, entry.id)
            self.qualifying.append((eid, item))
        if p.inactivity_days is not None or state.activity:
            self.activity.append((eid, at))
        self.upgrades(state, at, item, entry.id)
        return entry

    def upgrades(self, state: MemberState, at: str, item: Qualifying | None, cause: int) -> None:
        """Upgrade where the window's total crossed a higher threshold: at `at`, and, when the new
        credit counts toward tiers, at every later qualifying credit whose window holds it (a
        back-dated credit can lift tiers after it). Entries already recorded keep their points."""
        p = state.program
        if not p.tiered:
            return
        eid = state.enrollment.id
        tiers = _merged_tiers(state.tiers, [c for c in self.tiers if c.enrollment_id == eid])
        window, extra, moments = state.window, item, [at]
        if item is not None and window and window[-1].at >= at:  # credits at or after this one
            window, extra = _merged(window, item), None
            end = rules.window_end(at, p.window_days)
            moments += sorted({q.at for q in window if at < q.at < end})
        for moment in moments:
            reached = self._upgrade_at(state, moment, window, tiers, extra, cause)
            if reached is not None:
                tiers = _merged_tiers(tiers, [reached])
                if moment == at:
                    self.upgraded = reached.tier

    def _upgrade_at(self, state: MemberState, at: str, window, tiers, extra: Qualifying | None,
                    cause: int) -> TierChange | None:
        p = state.program
        change = rules.tier_at(tiers, at)
        tier = change.tier if change else None
        total = rules.qualifying_total(window, at, p.window_days) + (extra.value if extra is not None else 0)
        level = p.level(tier)
        if level is not None and rules.reached_index(p, total) <= level.index:
            return None  # the common case, decided without Decimals
        found = rules.upgrade_to(p, tier, rules.qualifying_value(p, total))
        if found is None:
            return None
        reached, reason = found
        made = TierChange(self.new_id(), state.enrollment.id, reached.name, tier if p.level(tier) else None, "earn",
                          reason, p.version_id, at, self.book.now, entry_id=cause)
        self.tiers.append(made)
        return made


def _tier_key(change: TierChange):
    return change.effective_at, change.id


def _merged(window: list[Qualifying], item: Qualifying | None) -> list[Qualifying]:
    if item is None:
        return window
    out = list(window)
    bisect.insort(out, item, key=lambda q: (q.at, q.entry_id))
    return out


def _merged_tiers(tiers: list[TierChange], mine: list[TierChange]) -> list[TierChange]:
    if not mine:
        return tiers
    out = list(tiers)
    for change in mine:
        bisect.insort(out, change, key=_tier_key)
    return out


def _live(state: MemberState, at: str) -> list[Lot]:
    return [lot for lot in state.lots.values() if rules.lot_alive(lot, at, state.activity)]


# --- commands ----------------------------------------------------------------------------


def _purchase(book: Book, cmd: Purchase) -> Posting:
    state = _member(book, cmd.member, cmd.program)
    p = state.program
    amount = _amount(cmd)
    text = rules.content(member=cmd.member, program=p.code, kind="purchase", amount=num(amount), partner=cmd.partner,
                         lines=_basket_content(cmd.basket), pay_points=cmd.pay_points, no_points=cmd.no_points or None)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return Posting("duplicate", cmd.txn, entry=prior.entry)
    lines = rules.price_basket(p, cmd.basket) if cmd.basket else ()  # checks each line's money
    if not lines:
        check_precision(amount, p.currency)
    _check_time(state, cmd.at, activity=True)
    if not cmd.no_points:
        _check_earning(state, cmd.at)
    value = _payment_value(state, cmd, amount)
    cut = value if p.earn_on == "net" else Decimal(0)
    tier, earned = _earning(state, cmd, amount, lines, cut)
    draft = _Draft(book)
    entry = draft.earn(state, cmd.txn, cmd.at, earned.points, rules.expiry_for(p, cmd.at), kind="earn",
                       rule_kind=earned.rule.kind, rule_index=earned.rule.index, amount_e4=to_e4(amount),
                       rate=str(earned.rate), tier=tier, multiplier=str(earned.multiplier), partner=cmd.partner,
                       reason="no points (--no-points)" if cmd.no_points else None, content=text)
    rows = tuple(replace(line, entry_id=entry.id, points=x.points)
                 for line, x in zip(lines, getattr(earned, "lines", ())))
    if cmd.pay_points:
        draft.debit(state, cmd.txn + PAID_SUFFIX, cmd.at, cmd.pay_points, kind="redeem", rule_kind="redeem",
                    ref_entry_id=entry.id, reason=f"paid {money(value, p.currency)} of purchase {cmd.txn}")
    return draft.posting(cmd.txn, entry, lines=rows)


def _amount(cmd: Purchase) -> Decimal:
    """The purchase's amount: as given, or its basket's total (both: they must agree)."""
    if cmd.basket is None:
        if cmd.amount is None:
            raise InputError("give the purchase's amount or its lines", field="amount")
        return cmd.amount
    if cmd.partner:
        raise InputError("a partner purchase earns on its amount: give --amount without lines", field="lines")
    total = rules.basket_total(cmd.basket)
    if cmd.amount is not None and cmd.amount != total:
        raise InputError(f"{money(cmd.amount)} is not the lines' total {money(total)} (leave it out, or correct it)",
                         field="amount")
    return total


def _basket_content(basket) -> list | None:
    """The lines and discounts as given, for the content a repeated --txn is compared on."""
    if basket is None:
        return None
    lines = [[x.sku, x.category, x.quantity, num(x.unit_price), num(x.discount)] for x in basket.lines]
    return lines + [["discount", d.category, num(d.amount)] for d in basket.discounts]


def _check_earning(state: MemberState, at: str) -> None:
    """A program earns only from starts_at until ends_at, and only for members with one of
    its eligible tags, if it names any."""
    p, enr = state.program, state.enrollment
    why = rules.earning_refusal(p, at)
    if why:
        raise Conflict(why, field="occurred_at")
    if not rules.eligible(p, enr.tags):
        raise Conflict(f"member {enr.member_id!r} may not earn in {p.code!r}: it is for members tagged "
                       f"{' or '.join(p.eligible_tags)}")


def _payment_value(state: MemberState, cmd: Purchase, amount: Decimal) -> Decimal:
    """What the points paying part of the order are worth; refused beyond the balance, the
    order's total, or the currency's smallest unit."""
    if not cmd.pay_points:
        return Decimal(0)
    p = state.program
    value = cmd.pay_points * p.point_value
    if value > amount:
        raise InputError(f"{cmd.pay_points} points are worth {money(value, p.currency)}, more than the order's "
                         f"{money(amount, p.currency)}", field="paid_points")
    check_precision(value, p.currency, "paid_points")
    have = sum(lot.remaining for lot in _live(state, cmd.at)) + state.debt
    if have < cmd.pay_points:
        raise Conflict(f"insufficient points: member {cmd.member!r} has {have} available at {cmd.at}, paying needs "
                       f"{cmd.pay_points}", field="paid_points")
    return value


def _earning(state: MemberState, cmd: Purchase, amount: Decimal, lines, cut: Decimal):
    """The tier a purchase earns at and what it earns. With tiers.upgrade_earns: crossing, a
    purchase that lifts the member earns at the new tier (on a points basis, judged by what
    it earns at the old one)."""
    p = state.program
    change = rules.tier_at(state.tiers, cmd.at) if p.tiered else None
    tier = change.tier if change else None
    earned = _points(state, cmd, amount, lines, cut, tier)
    if p.tiered and p.upgrade_earns == "crossing" and rules.counts_for_tier(p, earned.rule.kind):
        value = to_e4(amount) if p.basis == "spend" else earned.points
        total = rules.qualifying_total(state.window, cmd.at, p.window_days) + value
        found = rules.upgrade_to(p, tier, rules.qualifying_value(p, total))
        if found is not None:
            tier = found[0].name
            earned = _points(state, cmd, amount, lines, cut, tier)
    return tier, earned


def _points(state: MemberState, cmd: Purchase, amount: Decimal, lines, cut: Decimal, tier: str | None):
    p, tags = state.program, state.enrollment.tags
    if cmd.no_points and not p.spend_rules(tags):  # a program without spend rules still records the sale
        return rules.Earning(0, Rule(None, {"rule": "spend", "points_per_unit": "0"}), Decimal(0), Decimal(1), ())
    if lines:
        step_cut = rules.allocate(to_e4(cut), [x.paid_e4 for x in lines], rules.currency_step(p.currency))
        earned = rules.earn_basket(p, tags, tier, lines, cmd.member, step_cut)
    else:
        t = rules.purchase_terms(p, tags, cmd.partner, tier, cmd.member)
        earned = rules.Earning(rules.points_for(amount - cut, t.rate, t.multiplier) + t.order_points, t.rule, t.rate,
                               t.multiplier, (), t.order)
    return replace(earned, points=0, lines=tuple(replace(x, points=0) for x in earned.lines)) if cmd.no_points \
        else earned


def _event(book: Book, cmd: Event) -> Posting:
    state = _member(book, cmd.member, cmd.program)
    p = state.program
    text = rules.content(member=cmd.member, program=p.code, kind="event", event=cmd.event)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return Posting("duplicate", cmd.txn, entry=prior.entry)
    _check_time(state, cmd.at, activity=True)
    _check_earning(state, cmd.at)
    rule = p.event_rule(cmd.event)
    if rule is None:
        events = p.names("event", "event")
        raise NotFound(f"unknown event {cmd.event!r} in {p.code!r}" + (f" (known: {', '.join(events)})" if events else ""),
                       field="event")
    why = rules.event_refusal(rule, cmd.event, cmd.member, cmd.at, [t for e, t in state.events if e == cmd.event])
    if why:
        raise Conflict(why)
    draft = _Draft(book)
    entry = draft.earn(state, cmd.txn, cmd.at, int(rule.get("points")), rules.expiry_for(p, cmd.at), kind="earn",
                       rule_kind="event", rule_index=rule.index, event=cmd.event, content=text)
    return draft.posting(cmd.txn, entry, events=((state.enrollment.id, cmd.event, cmd.at),))


def _redeem(book: Book, cmd: Redeem) -> Posting:
    state = _member(book, cmd.member, cmd.program)
    p = state.program
    text = rules.content(member=cmd.member, program=p.code, kind="redeem", points=cmd.points, reward=cmd.reward)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return Posting("duplicate", cmd.txn, entry=prior.entry)
    _check_time(state, cmd.at, activity=True)
    have = sum(lot.remaining for lot in _live(state, cmd.at)) + state.debt
    points, reason = _redeemed(p, cmd, have)
    if have < points:
        raise Conflict(f"insufficient points: member {cmd.member!r} has {have} available at {cmd.at}, "
                       f"redemption needs {points}")
    draft = _Draft(book)
    entry = draft.debit(state, cmd.txn, cmd.at, points, kind="redeem", rule_kind="redeem", reward=cmd.reward,
                        reason=reason, content=text)
    if p.inactivity_days is not None or state.activity:
        draft.activity.append((state.enrollment.id, cmd.at))
    return draft.posting(cmd.txn, entry)


def _redeemed(p, cmd: Redeem, have: int) -> tuple[int, str | None]:
    """The points a redemption takes, and for a per-point reward what they are worth: the
    largest multiple of its required_points the member can afford (at most --points)."""
    if cmd.reward is None:
        return cmd.points, None
    spec = p.reward(cmd.reward)
    if spec.get("points") is not None:
        if cmd.points is not None:
            raise InputError(f"reward {cmd.reward!r} costs {spec['points']} points: leave --points out", field="points")
        return int(spec["points"]), None
    step, value = int(spec["required_points"]), Decimal(str(spec["value_per_point"]))
    points = rules.per_point_take(min(have, cmd.points) if cmd.points is not None else have, step)
    if points == 0:
        raise Conflict(f"reward {cmd.reward!r} takes points in multiples of {step}; member {cmd.member!r} has "
                       f"{max(have, 0)} available" + (f" and offers {cmd.points}" if cmd.points is not None else ""))
    return points, f"{points} points x {value.normalize():f} = {money(points * value, p.currency)} {p.currency}"


def _adjust(book: Book, cmd: Adjust) -> Posting:
    reason = (cmd.reason or "").strip()
    if not reason:
        raise InputError("an adjustment needs a reason", field="reason")
    state = _member(book, cmd.member, cmd.program)
    p = state.program
    text = rules.content(member=cmd.member, program=p.code, kind="adjust", points=cmd.points, reason=reason,
                         expires_at=cmd.expires_at)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return Posting("duplicate", cmd.txn, entry=prior.entry)
    _check_time(state, cmd.at, activity=False)
    if cmd.expires_at is not None and cmd.points < 0:
        raise InputError("applies to points added (a removal takes from the lots that expire soonest)",
                         field="never_expires" if cmd.expires_at == NEVER else "expires_at")
    draft = _Draft(book)
    fields = dict(kind="adjust", rule_kind="adjust", reason=reason, content=text)
    if cmd.points > 0:
        entry = _credit_until(draft, state, cmd, cmd.points, cmd.expires_at, fields)
    else:
        entry = draft.debit(state, cmd.txn, cmd.at, -cmd.points, **fields)
    return draft.posting(cmd.txn, entry)


def _credit_until(draft: _Draft, state: MemberState, cmd, points: int, expires_at: str | None, fields: dict) -> Entry:
    """A credit expiring when the command says (NEVER: never, not even for inactivity), else
    by the program's rule."""
    if expires_at is None:
        return draft.credit(state, cmd.txn, cmd.at, points, rules.expiry_for(state.program, cmd.at), **fields)
    if expires_at == NEVER:
        return draft.credit(state, cmd.txn, cmd.at, points, None, inactivity=False, **fields)
    if expires_at <= cmd.at:
        raise InputError(f"{expires_at} is not after the credit's time {cmd.at}", field="expires_at")
    return draft.credit(state, cmd.txn, cmd.at, points, expires_at, **fields)


def _opening(book: Book, cmd: Opening) -> Posting:
    state = _member(book, cmd.member, cmd.program)
    p = state.program
    text = rules.content(member=cmd.member, program=p.code, kind="opening", points=cmd.points,
                         expires_at=cmd.expires_at)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return Posting("duplicate", cmd.txn, entry=prior.entry)
    if cmd.expires_at not in (None, NEVER) and cmd.expires_at <= cmd.at:
        raise InputError(f"{cmd.expires_at} is not after the opening balance's time {cmd.at}", field="expires_at")
    draft = _Draft(book)
    entry = _credit_until(draft, state, cmd, cmd.points, cmd.expires_at,
                          dict(kind="opening", rule_kind="opening", reason="opening balance", content=text))
    return draft.posting(cmd.txn, entry)


def _ref(book: Book, txn: str) -> Ref:
    """The purchase or redemption a refund names: loaded with the batch, or recorded in it."""
    ref = book.refs.get(txn)
    if ref is not None:
        return ref
    prior = book.priors.get(txn)
    entry = prior.entry if prior else None
    if entry is None:
        raise NotFound(f"unknown transaction {txn!r}")
    moves = book.moves_of.get(entry.id, ())
    state = book.members[entry.enrollment_id]
    pay = book.payment_of.get(entry.id)
    payment = None if pay is None else Payment(pay, book.moves_of.get(pay.id, ()), _lots_now(book, state, pay.id))
    return Ref(entry, lot=book.lot_of.get(entry.id), moves=moves, lots=_lots_now(book, state, entry.id),
               lines=book.lines_of.get(entry.id, ()), payment=payment)


def _lots_now(book: Book, state: MemberState, entry_id: int) -> tuple[Lot, ...]:
    """The lots a redemption of the batch took from, as they are now."""
    return tuple(state.lots.get(lot_id) or book.emptied[lot_id] for lot_id, _ in book.moves_of.get(entry_id, ()))


def _refund(book: Book, cmd: Refund) -> Posting:
    ref = _ref(book, cmd.ref)
    state = book.members[ref.entry.enrollment_id]
    member = state.enrollment.member_id
    if cmd.member is not None and cmd.member != member:
        raise Conflict(f"transaction {cmd.ref!r} belongs to member {member!r}, not {cmd.member!r}")
    text = rules.content(member=member, program=state.program.code, kind="refund", ref=cmd.ref,
                         amount=num(cmd.amount), lines=[list(x) for x in cmd.lines] or None)
    prior = _repeat(book, cmd.txn, text, cmd.at, cmd.at_given)
    if prior:
        return Posting("duplicate", cmd.txn, entry=prior.entry)
    if cmd.at < ref.entry.effective_at:
        raise InputError(f"{cmd.at} is before transaction {cmd.ref!r} ({ref.entry.effective_at})", field="occurred_at")
    if cmd.lines and not ref.lines:
        raise InputError(f"transaction {cmd.ref!r} has no lines: refund an amount, or all of it", field="lines")
    if ref.entry.is_purchase:
        return _refund_purchase(book, cmd, state, ref, text)
    if ref.entry.kind == "redeem" and ref.entry.ref_entry_id is not None:
        raise Conflict(f"{cmd.ref!r} paid part of a purchase with points: refund the purchase, which gives them back")
    if ref.entry.kind == "redeem":
        return _cancel_redemption(book, cmd, state, ref, text)
    raise InputError(f"only purchases and redemptions can be refunded; {cmd.ref!r} is {_KINDS[ref.entry.kind]} "
                     f"({ref.entry.rule_kind})")


_KINDS = {"earn": "a points credit", "redeem": "a redemption", "refund": "a refund", "adjust": "an adjustment",
          "expire": "an expiry", "opening": "an opening balance"}  # ledger kinds, as a sentence names them


def _refund_purchase(book: Book, cmd: Refund, state: MemberState, ref: Ref, text: str) -> Posting:
    e = ref.entry
    if e.amount_e4 - ref.refunded_e4 <= 0:
        raise Conflict(f"purchase {e.txn_id!r} is already fully refunded")
    amount_e4, claw, rows = _line_refund(state, cmd, ref) if ref.lines else _amount_refund(state, cmd, ref)
    claw = min(claw, max(0, e.points - _expired(state, ref, cmd.at) - ref.clawed))
    draft = _Draft(book)
    payment = _give_back_payment(draft, state, cmd, ref, ref.refunded_e4 + amount_e4)
    entry = draft.debit(state, cmd.txn, cmd.at, claw, first=ref.lot.id if ref.lot else None, kind="refund",
                        rule_kind=e.rule_kind, rule_index=e.rule_index, amount_e4=-amount_e4, rate=e.rate,
                        tier=e.tier, multiplier=e.multiplier, partner=e.partner, ref_entry_id=e.id, content=text)
    p = state.program
    if p.tiered and rules.counts_for_tier(p, e.rule_kind):
        value = entry.amount_e4 if p.basis == "spend" else entry.points
        draft.qualifying.append((state.enrollment.id, Qualifying(e.effective_at, cmd.at, value, entry.id)))
    rows = tuple(replace(row, entry_id=entry.id) for row in rows)
    after = replace(ref, refunded_e4=ref.refunded_e4 + amount_e4, clawed=ref.clawed + claw, refunds=ref.refunds + 1,
                    refunded_lines=ref.refunded_lines + rows, payment=payment)
    return draft.posting(cmd.txn, entry, ref=after, lines=rows, reopened=tuple(draft.reopened))


def _amount_refund(state: MemberState, cmd: Refund, ref: Ref) -> tuple[int, int, tuple]:
    """(amount e4, points to claw back, no lines) of a refund of a purchase without lines."""
    e = ref.entry
    purchase, refunded = from_e4(e.amount_e4), from_e4(ref.refunded_e4)
    left = purchase - refunded
    amount = left if cmd.amount is None else check_precision(cmd.amount, state.program.currency)
    if amount > left:
        raise Conflict(f"{money(amount)} exceeds the {money(left)} left to refund on purchase {e.txn_id!r}",
                       field="amount")
    rate, mult = Decimal(e.rate), Decimal(e.multiplier)
    rated = ref.payment is None and rules.earned_as_rated(e.points, purchase, rate, mult)
    claw = rules.claw_back(purchase, refunded, amount, e.points, ref.clawed, rate, mult, proportional=not rated)
    return to_e4(amount), claw, ()


def _line_refund(state: MemberState, cmd: Refund, ref: Ref) -> tuple[int, int, tuple]:
    """(amount e4, points to claw back, refunded lines) of a refund of a purchase's lines; the
    points per-order rules gave go back with its last line."""
    e = ref.entry
    if cmd.amount is not None:
        raise InputError(f"purchase {e.txn_id!r} has lines: name them (--line SKU:QTY), or refund all of it",
                         field="amount")
    rows = rules.refund_rows(ref.lines, ref.refunded_lines, cmd.lines, rules.currency_step(state.program.currency),
                             e.txn_id)
    claw = -sum(row.points for row in rows)
    if rules.fully_refunded(ref.lines, ref.refunded_lines + rows):
        claw += e.points - sum(line.points for line in ref.lines)
    return -sum(row.paid_e4 for row in rows), claw, rows


def _give_back_payment(draft: _Draft, state: MemberState, cmd: Refund, ref: Ref, after_e4: int) -> Payment | None:
    """Points that paid part of the purchase go back, in the share of the order refunded."""
    pay = ref.payment
    if pay is None:
        return None
    due = rules.points_back(-pay.entry.points, ref.entry.amount_e4, ref.refunded_e4, after_e4)
    lots = {lot.id: state.lots.get(lot.id) or replace(lot, remaining=0) for lot in pay.lots}
    usable = {i for i, lot in lots.items() if _usable(state, lot, cmd.at)}
    back = rules.give_back(pay.moves, pay.returned, usable, due)
    if not back:
        return pay
    entry = draft.entry(state, cmd.txn + PAID_SUFFIX, cmd.at, sum(p for _, p in back), kind="refund",
                        rule_kind="redeem", ref_entry_id=pay.entry.id,
                        reason=f"points paid on purchase {ref.entry.txn_id} given back")
    draft.moves += [Move(lot_id, entry.id, points, cmd.at) for lot_id, points in back]
    draft.reopened += [lots[i] for i, _ in back if i not in state.lots]
    return replace(pay, returned=pay.returned + tuple(back))


def _usable(state: MemberState, lot: Lot, at: str) -> bool:
    """A lot points may go back to: not expired at `at`, its expiry not recorded."""
    end = rules.lot_end(lot, state.activity)
    return (end is None or end > at) and not lot.expiry_recorded


def _expired(state: MemberState, ref: Ref, at: str) -> int:
    """Points of a purchase that had expired by `at` (they are not charged again by a refund)."""
    lot = ref.lot
    if lot is None:
        return 0
    current = state.lots.get(lot.id)
    end = rules.lot_end(current or lot, state.activity)
    if end is None or end > at:
        return 0
    return (current.remaining if current else 0) + ref.expired_from_lot


def _cancel_redemption(book: Book, cmd: Refund, state: MemberState, ref: Ref, text: str) -> Posting:
    if cmd.amount is not None:
        raise InputError("applies to purchases; a redemption is cancelled whole", field="amount")
    if ref.refunds:
        raise Conflict(f"redemption {ref.entry.txn_id!r} is already cancelled")
    # the lots as they are now: an emptied lot has left the open set
    lots = {lot.id: state.lots.get(lot.id) or replace(lot, remaining=0) for lot in ref.lots}
    back: dict[int, int] = {}
    for lot_id, points in ref.moves:
        if _usable(state, lots[lot_id], cmd.at):
            back[lot_id] = back.get(lot_id, 0) - points
    draft = _Draft(book)
    entry = draft.entry(state, cmd.txn, cmd.at, sum(back.values()), kind="refund", rule_kind="redeem",
                        reward=ref.entry.reward, ref_entry_id=ref.entry.id, content=text)
    draft.moves += [Move(lot_id, entry.id, points, cmd.at) for lot_id, points in back.items()]
    reopened = tuple(lots[i] for i in back if i not in state.lots)
    return draft.posting(cmd.txn, entry, ref=replace(ref, refunds=ref.refunds + 1), reopened=reopened)


def _sale(book: Book, cmd: AnonymousSale) -> Posting:
    code = cmd.program
    if not code:
        if len(book.programs) != 1:
            raise InputError("an anonymous sale (empty member_id) needs a program", field="program")
        code = next(iter(book.programs))
    _program(book, code)
    text = rules.content(program=code, kind="anonymous", amount=num(cmd.amount))
    prior = _repeat(book, cmd.txn, text, cmd.at, True, sale=True)
    if prior:
        return Posting("duplicate", cmd.txn)
    return Posting("recorded", cmd.txn, sale=Sale(cmd.txn, code, to_e4(cmd.amount), text, cmd.at, book.now))


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
    enrollment = Enrollment(draft.new_id(), cmd.member, cmd.program, cmd.tags, cmd.at, cmd.referred_by, book.now)
    state = MemberState(enrollment, p)
    if p.tiered:
        draft.tiers.append(TierChange(draft.new_id(), enrollment.id, p.levels[0].name, None, "enroll", "enrolled",
                                      p.version_id, cmd.at, book.now))
    credits = _referral(draft, cmd, referrer, state) if referrer is not None else ()
    return draft.posting("", None, enrollment=enrollment, state=state, credits=credits)


def _referral(draft: _Draft, cmd: Join, referrer: MemberState, referee: MemberState):
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
        draft.earn(who, f"referral-{cmd.program}-{cmd.member}-{role}", at, points, rules.expiry_for(who.program, at),
                   kind="earn", rule_kind="referral", rule_index=rule.index, reason=f"{role} of {other}")
        credits.append((who.enrollment.member_id, points, role))
    return tuple(credits)


_POST = {Purchase: _purchase, Event: _event, Redeem: _redeem, Refund: _refund, Adjust: _adjust,
         Opening: _opening, AnonymousSale: _sale, Join: _join}


# --- folding a posting into the book ----------------------------------------------------


def apply(book: Book, posting: Posting):
    """Make the book reflect a recorded posting, for the next command of a batch. Returns,
    for a new enrollment without referral credits, a function that takes it back out again
    (an import row that enrolls a member for a transaction the engine then refuses)."""
    if posting.status != "recorded":
        return None
    if posting.sale is not None:
        book.priors[posting.sale.txn_id] = Prior(posting.sale.content, posting.sale.effective_at)
    if posting.enrollment is not None:
        _enroll(book, posting)
    members = book.members
    for entry in posting.entries:
        if entry.content is not None:
            book.priors[entry.txn_id] = Prior(entry.content, entry.effective_at, entry)
        if entry.kind == "redeem" and entry.ref_entry_id is not None:
            book.payment_of[entry.ref_entry_id] = entry
        members[entry.enrollment_id].debt += entry.uncovered
    if posting.lines and posting.lines[0].quantity > 0:
        book.lines_of[posting.entry.id] = posting.lines
    _lots(book, posting)
    for change in posting.tier_changes:
        bisect.insort(members[change.enrollment_id].tiers, change, key=_tier_key)
    for eid, item in posting.qualifying:
        bisect.insort(members[eid].window, item, key=lambda q: (q.at, q.entry_id))
    for eid, at in posting.activity:
        bisect.insort(members[eid].activity, at)
    for eid, event, at in posting.events:
        members[eid].events.append((event, at))
    if posting.ref is not None:
        book.refs[posting.ref.entry.txn_id] = posting.ref
    book.next_id = max([book.next_id - 1, *_ids(posting)]) + 1
    if posting.enrollment is not None and not posting.credits:
        return lambda: _unenroll(book, posting.enrollment)
    return None


def _enroll(book: Book, posting: Posting) -> None:
    e = posting.enrollment
    book.members[e.id] = posting.state
    book.enrolled.setdefault(e.member_id, {})[e.program] = e.id
    book.known_members.add(e.member_id)


def _unenroll(book: Book, e: Enrollment) -> None:
    book.members.pop(e.id, None)
    mine = book.enrolled.get(e.member_id) or {}
    mine.pop(e.program, None)
    if not mine:
        book.enrolled.pop(e.member_id, None)


def _lots(book: Book, posting: Posting) -> None:
    """New lots join their member's open lots; moves change what is left of lots."""
    members = book.members
    for lot in posting.lots:
        book.lot_of[lot.entry_id] = lot
        members[lot.enrollment_id].lots[lot.id] = lot
    for lot in posting.reopened:
        members[lot.enrollment_id].lots[lot.id] = lot
    redemptions: dict[int, list] = {}
    for move in posting.moves:
        state = _owner(book, posting, move.lot_id)
        lot = state.lots[move.lot_id]
        left = lot.remaining + move.points
        if left:
            state.lots[move.lot_id] = replace(lot, remaining=left)
        else:
            book.emptied[move.lot_id] = replace(lot, remaining=0)
            del state.lots[move.lot_id]
        redemptions.setdefault(move.entry_id, []).append((move.lot_id, move.points))
    for entry in posting.entries:
        if entry.kind == "redeem":
            book.moves_of[entry.id] = tuple(redemptions.get(entry.id, ()))


def _owner(book: Book, posting: Posting, lot_id: int) -> MemberState:
    """The member state holding a lot a move touches (the posting's member, or a referral's)."""
    for entry in posting.entries:
        state = book.members[entry.enrollment_id]
        if lot_id in state.lots:
            return state
    raise KeyError(lot_id)  # pragma: no cover - a move always cites a lot of its posting's members


def _ids(posting: Posting) -> list[int]:
    ids = [e.id for e in posting.entries] + [lot.id for lot in posting.lots] + [c.id for c in posting.tier_changes]
    return ids + ([posting.enrollment.id] if posting.enrollment else [])
