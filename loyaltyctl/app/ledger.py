"""Ledger use cases: enroll, earn, redeem, refund, adjust, opening balances and anonymous
sales. Each is one transaction: load the book the command reads, post it with the
engine, write the posting. Imports run the same engine over a batch (app/batch.py)."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from decimal import Decimal

from ..core import engine, rules
from ..core.commands import (
    NEVER, Adjust, AnonymousSale, Event, Join, Opening, Posting, Purchase, Redeem, Refund, Reject,
)
from ..core.values import money, now_ts, optional_text, parse_key, tag_list, text, ts_or_now
from ..errors import Conflict, InputError
from ..store import members as member_store
from ..store import readers, writers
from ..store.connection import Database, transaction
from .lookup import program, resolve  # noqa: F401  (ledger.program / ledger.resolve for callers)

def txn_id(txn: str | None, prefix: str) -> str:
    """The operator's idempotency key, or a fresh one (as secrets.token_hex(6), without importing secrets)."""
    if txn is not None:
        key = parse_key(txn, "txn_id")
        engine.check_txn(key)
        return key
    return f"{prefix}-{os.urandom(6).hex()}"


def run(db: Database, command, before_write=None) -> Posting:
    """Post one command in its own transaction (or the caller's); a Reject is raised as its
    error, before anything is written. `before_write()` runs once the engine accepted it."""
    with db.write():
        book = readers.load_book(db, [command], now_ts())
        posting = engine.post(book, command)
        if isinstance(posting, Reject):
            raise posting.error
        if before_write is not None:
            before_write()
        posting = _with_real_ids(posting, writers.write(db, [posting]))
    return posting


def _with_real_ids(posting: Posting, ids) -> Posting:
    from dataclasses import replace

    if posting.status != "recorded" or posting.entry is None:
        return posting
    e = posting.entry
    return replace(posting, entry=replace(e, id=ids(e.id), enrollment_id=ids(e.enrollment_id)))


# --- results --------------------------------------------------------------------------------


@dataclass(frozen=True)
class TxnResult:
    """What a recorded (or repeated) transaction did, as the CLI prints it."""

    status: str
    txn_id: str
    member_id: str
    program: str
    kind: str
    rule: str
    points: int
    effective_at: str
    balance: int
    amount: str | None = None
    tier: str | None = None
    upgraded_to: str | None = None
    paid_points: int | None = None  # a purchase: points that paid part of it
    returned_points: int | None = None  # its refund: those points given back

    def as_dict(self) -> dict:
        """The result's fields; those that do not apply (amount of a redemption, tier of an
        untiered program, upgrade, points paid or given back) are left out."""
        return {k: v for k, v in asdict(self).items()
                if v is not None or k not in ("amount", "tier", "upgraded_to", "paid_points", "returned_points")}


def result(db: Database, posting: Posting) -> TxnResult:
    """What a ledger command reports: the entry and the member's balance and tier afterwards."""
    e = posting.entry
    enr = member_store.enrollment_by_id(db, e.enrollment_id)
    p = program(db, enr.program)
    at = max(e.effective_at, now_ts())
    return TxnResult(
        status=posting.status, txn_id=e.txn_id, member_id=enr.member_id, program=p.code, kind=e.kind,
        rule=e.rule_kind, points=e.points, effective_at=e.effective_at,
        balance=member_store.balance_at(db, enr.id, at),
        amount=money(abs(e.amount_e4)) if e.amount_e4 is not None else None,
        tier=member_store.tier_at(db, enr.id, at) if p.tiered else None, upgraded_to=posting.upgraded,
        **_payment(posting))


def _payment(posting: Posting) -> dict:
    """Points a purchase paid with (paid_points), or its refund gave back (returned_points)."""
    for x in posting.entries:
        if x.txn_id == posting.txn_id + engine.PAID_SUFFIX:
            return {"paid_points": -x.points} if x.kind == "redeem" else {"returned_points": x.points}
    return {}


def _post(db: Database, command) -> TxnResult:
    return transaction(db, lambda: result(db, run(db, command)))


# --- use cases ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Order:
    """What a purchase carries besides its amount: lines (--line, --basket), discounts,
    points paying part of it, and whether it earns at all."""

    lines: tuple = ()  # records.Line
    basket: str | None = None  # a JSON basket file, or - for stdin
    discounts: tuple = ()  # records.Discount
    pay_points: int | None = None
    no_points: bool = False

    def purchase_only(self) -> str | None:
        """The option that makes this a purchase, if any (an event may carry none)."""
        for option, given in (("lines", self.lines or self.basket), ("discount", self.discounts),
                              ("paid_points", self.pay_points), ("no_points", self.no_points)):
            if given:
                return option
        return None

    def basket_of(self):
        from ..io.baskets import read_basket, with_discounts
        from ..core.commands import Basket

        if self.lines and self.basket:
            raise InputError("give lines with --line or with --basket, not both", field="basket")
        if self.discounts and not (self.lines or self.basket):
            raise InputError("applies to purchases with lines (--line or --basket)", field="discount")
        if self.basket:
            return with_discounts(read_basket(self.basket), self.discounts)
        return Basket(tuple(self.lines), tuple(self.discounts)) if self.lines else None


def earn(db: Database, member_id: str, *, program_code=None, amount: Decimal | None = None, partner=None,
         event=None, txn=None, at=None, order: Order = Order()) -> TxnResult:
    """A purchase (at the first matching spend rule, or a partner's rule; per line for a
    basket) or an engagement event."""
    purchase = amount is not None or bool(order.lines or order.basket)
    if purchase == (event is not None):
        raise InputError("give either an amount or lines (a purchase) or an event (an engagement action)")
    if partner and event:
        raise InputError("applies to purchases (an amount), not to events", field="partner")
    if event is not None and order.purchase_only():
        raise InputError("applies to purchases, not to events", field=order.purchase_only())
    when, given = ts_or_now(at), at is not None
    key, member_id = txn_id(txn, "earn"), text(member_id, "member_id")
    if event is not None:
        return _post(db, Event(key, member_id, program_code, when, given, text(event, "event")))
    return _post(db, Purchase(key, member_id, program_code, when, given, amount, optional_text(partner, "partner"),
                              order.basket_of(), order.pay_points, order.no_points))


def redeem(db: Database, member_id: str, *, program_code=None, points: int | None = None, reward=None,
           txn=None, at=None) -> TxnResult:
    if points is None and reward is None:
        raise InputError("give either points or a reward")
    return _post(db, Redeem(txn_id(txn, "redeem"), text(member_id, "member_id"), program_code, ts_or_now(at),
                            at is not None, points, optional_text(reward, "reward")))


def refund(db: Database, ref_txn: str, *, amount: Decimal | None = None, txn=None, at=None,
           member_id: str | None = None, lines: tuple = ()) -> TxnResult:
    """Claw back a purchase's points (wholly, for part of its amount, or for some of its
    lines: (sku, quantity) pairs), or cancel a redemption."""
    if lines and amount is not None:
        raise InputError("give lines or an amount, not both", field="lines")
    return _post(db, Refund(txn_id(txn, "refund"), text(ref_txn, "ref_txn_id"), ts_or_now(at), at is not None, amount,
                            optional_text(member_id, "member_id"), tuple(lines)))


def adjust(db: Database, member_id: str, *, points: int, reason: str, program_code=None, txn=None, at=None,
           expires_at: str | None = None, never_expires: bool = False) -> TxnResult:
    """Points added or removed by hand; added points may expire at a date of their own, or never."""
    reason = text(reason or "", "reason")
    if not reason:
        raise InputError("an adjustment needs a reason", field="reason")
    if expires_at is not None and never_expires:
        raise InputError("give --expires-at or --never-expires, not both", field="never_expires")
    until = NEVER if never_expires else (ts_or_now(expires_at, "expires_at") if expires_at else None)
    return _post(db, Adjust(txn_id(txn, "adjust"), text(member_id, "member_id"), program_code, ts_or_now(at),
                            at is not None, points, reason, until))


def opening(db: Database, member_id: str, *, points: int, program_code=None, expires_at: str | None = None,
            txn=None, at=None) -> TxnResult:
    """A balance migrated from another system: a lot expiring at `expires_at` (else by the program's rule)."""
    return _post(db, Opening(txn_id(txn, "opening"), text(member_id, "member_id"), program_code, ts_or_now(at),
                             at is not None, points, expires_at))


def anonymous_sale(db: Database, txn: str, program_code: str | None, amount: Decimal, at: str) -> str:
    """A non-member purchase, kept for analytics (average ticket); it earns nothing. Returns the status."""
    return transaction(db, lambda: run(db, AnonymousSale(txn, program_code, at, amount))).status


# --- enrollment -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Enrolled:
    """A new enrollment as the CLI prints it, with the referral credits it earned."""

    member_id: str
    program: str
    joined_at: str
    tags: list[str]
    tier: str | None
    referral_credits: list[dict] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def enroll(db: Database, member_id: str, program_code: str, *, name=None, email=None, tags=(), referred_by=None,
           account=None, at: str | None = None) -> Enrolled:
    member_id = text(member_id or "", "member_id")
    if not member_id:
        raise InputError("must not be empty", field="member_id")
    name, email, account = (optional_text(v, f) for v, f in ((name, "name"), (email, "email"), (account, "account")))
    when = ts_or_now(at)
    tags = tag_list(tags)
    join = Join(member_id, program_code, when, tuple(tags), optional_text(referred_by, "referred_by"))
    posting = transaction(db, lambda: run(db, join, lambda: _contact(db, member_id, name, email, account)))
    p = program(db, program_code)
    return Enrolled(member_id, program_code, when, tags, p.levels[0].name if p.tiered else None,
                    [{"member_id": m, "points": pts, "role": role} for m, pts, role in posting.credits])


def _contact(db: Database, member_id: str, name, email, account) -> None:
    """The member's row: created with the details given, or filled in where it has none."""
    member = member_store.member(db, member_id)
    if member is None:
        member_store.insert_member(db, member_id, name, email, account, now_ts())
        return
    have = {"name": member.name, "email": member.email, "account": member.account}
    why = rules.contact_conflict(member_id, have, bool(member.erased_at),
                                 {"name": name, "email": email, "account": account})
    if why:
        raise Conflict(why)
    member_store.update_contact(db, member_id, name, email, account)


def is_enrolled(db: Database, member_id: str, program_code: str) -> bool:
    return member_store.enrollment(db, member_id, program_code) is not None
