"""Records: what the ledger holds, and the book the engine reads it through, as frozen
dataclasses (what the engine is asked to do and what it answers: core/commands.py).

Ids of rows the engine creates are provisional (from PROVISIONAL up, in creation order,
so they sort after every stored id, as the real ids they get when written will); the
store's writer maps them to ids reserved from the database."""

from __future__ import annotations

from dataclasses import dataclass, field

from .program import Program

PROVISIONAL = 1 << 60


def provisional(ident: int) -> bool:
    return ident >= PROVISIONAL


# --- the ledger ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Enrollment:
    """A member in one program: joined when, with which tags, referred by whom."""

    id: int
    member_id: str
    program: str
    tags: tuple[str, ...]
    joined_at: str
    referred_by: str | None = None
    recorded_at: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry. points > 0 credits (a lot), < 0 debits (lot moves and debt)."""

    id: int
    txn_id: str
    enrollment_id: int
    kind: str  # earn redeem refund adjust expire opening
    rule_kind: str  # spend partner event referral redeem adjust opening expiry inactivity
    version_id: int
    points: int
    effective_at: str
    recorded_at: str
    rule_index: int | None = None
    uncovered: int = 0  # > 0: debt repaid by this credit; < 0: debt this debit left
    amount_e4: int | None = None  # purchase amount (refunds: negative)
    rate: str | None = None
    tier: str | None = None
    multiplier: str | None = None
    partner: str | None = None
    event: str | None = None
    reward: str | None = None
    reason: str | None = None
    ref_entry_id: int | None = None
    content: str | None = None

    @property
    def is_purchase(self) -> bool:
        return self.kind == "earn" and self.amount_e4 is not None


@dataclass(frozen=True, slots=True)
class Lot:
    """Points a credit created; `remaining` is what is left of them now."""

    id: int
    enrollment_id: int
    entry_id: int
    points: int
    remaining: int
    earned_at: str
    expires_at: str | None
    inactivity_days: int | None = None
    expiry_recorded: bool = False  # the expire job wrote its expiry
    inactivity_from: str | None = None  # inactivity counts from here, not from earned_at (a rule added later) entry


@dataclass(frozen=True, slots=True)
class Move:
    """Points a debit took from a lot (a redemption, expiry or claw-back drawing on it)."""

    lot_id: int
    entry_id: int
    points: int
    effective_at: str


@dataclass(frozen=True, slots=True)
class TierChange:
    """A tier the enrollment held from effective_at (until the next change), and why."""

    id: int
    enrollment_id: int
    tier: str
    previous: str | None
    source: str  # enroll earn review manual
    reason: str
    version_id: int
    effective_at: str
    recorded_at: str
    until: str | None = None
    entry_id: int | None = None  # the credit whose posting made it (an upgrade on earning)


@dataclass(frozen=True, slots=True)
class Qualifying:
    """A part of a tier window's total: a qualifying credit (spend e4 or points) inside the
    window while `at` is, counted from `since` (a refund counts from when it was made)."""

    at: str
    since: str
    value: int
    entry_id: int


@dataclass(frozen=True, slots=True)
class PurchaseLine:
    """A purchase line as the ledger keeps it (purchase_lines), money in 1/10,000: the
    purchase's line, or, with negative quantity and points, what a refund took back of it."""

    entry_id: int
    line_no: int  # from 1, in the order given
    sku: str
    category: str | None
    quantity: int
    unit_price_e4: int
    discount_e4: int = 0  # the line's own discount plus its share of category discounts
    order_discount_e4: int = 0  # its share of order-wide discounts
    points: int = 0

    @property
    def own_e4(self) -> int:
        """What the line costs after its own discounts: what category- and sku-scoped rules earn on."""
        return self.quantity * self.unit_price_e4 - self.discount_e4

    @property
    def paid_e4(self) -> int:
        return self.own_e4 - self.order_discount_e4


@dataclass(frozen=True, slots=True)
class Payment:
    """The redemption that paid part of a purchase with points, and what refunds gave back of it."""

    entry: Entry
    moves: tuple[tuple[int, int], ...] = ()  # (lot, -points) it took
    lots: tuple[Lot, ...] = ()  # those lots as they are now
    returned: tuple[tuple[int, int], ...] = ()  # (lot, points) refunds gave back


@dataclass(frozen=True, slots=True)
class Sale:
    """A non-member purchase, kept for analytics."""

    txn_id: str
    program: str
    amount_e4: int
    content: str
    effective_at: str
    recorded_at: str


@dataclass(slots=True)
class MemberState:
    """What the engine needs to know of one enrollment to post a command for it. The book
    owns it: core.engine.apply updates it in place as the batch's postings are folded in.

    `lots` are the lots with points left (by id); `window` every qualifying item after
    `window_from` (all of them when None), so tier totals at any moment after
    window_from + window_days are exact; `activity` the earn and redemption times
    (inactivity expiry; kept only for enrollments that have lots with inactivity expiry)."""

    enrollment: Enrollment
    program: Program
    debt: int = 0  # claw-backs not covered by any lot (<= 0)
    lots: dict[int, Lot] = field(default_factory=dict)
    tiers: list[TierChange] = field(default_factory=list)  # the whole tier history, by (effective_at, id)
    window: list[Qualifying] = field(default_factory=list)  # by (at, entry_id)
    window_from: str | None = None
    activity: list[str] = field(default_factory=list)  # sorted
    events: list[tuple[str, str]] = field(default_factory=list)  # (event, effective_at) of event earns
    last_inactivity_expiry: str | None = None


@dataclass(frozen=True, slots=True)
class Prior:
    """What is already recorded under a transaction id (idempotency)."""

    content: str
    effective_at: str
    entry: Entry | None = None  # None: an anonymous sale


@dataclass(frozen=True, slots=True)
class Ref:
    """A purchase or redemption a refund names, with what happened to it since."""

    entry: Entry
    refunded_e4: int = 0  # purchase amount refunded so far (positive)
    clawed: int = 0  # points clawed back so far (positive)
    refunds: int = 0  # how many refunds cite it
    lot: Lot | None = None  # the purchase's own lot
    expired_from_lot: int = 0  # points of that lot the expire job recorded as expired
    moves: tuple[tuple[int, int], ...] = ()  # a redemption's (lot, points) moves
    lots: tuple[Lot, ...] = ()  # the lots those moves touched, as they are now
    lines: tuple[PurchaseLine, ...] = ()  # a purchase's lines
    refunded_lines: tuple[PurchaseLine, ...] = ()  # what its refunds took back of them
    payment: Payment | None = None  # the points that paid part of it


@dataclass(slots=True)
class Book:
    """The part of the ledger a batch of commands reads, and the engine's scratch state:
    the runner applies each posting to it (core.engine.apply) before posting the next."""

    now: str
    programs: dict[str, Program] = field(default_factory=dict)
    members: dict[int, MemberState] = field(default_factory=dict)  # by enrollment id
    enrolled: dict[str, dict[str, int]] = field(default_factory=dict)  # member -> program -> enrollment id
    known_members: set[str] = field(default_factory=set)  # members with a member row
    priors: dict[str, Prior] = field(default_factory=dict)
    refs: dict[str, Ref] = field(default_factory=dict)  # loaded for the batch's refunds, or updated by them
    lot_of: dict[int, Lot] = field(default_factory=dict)  # lots the batch created, by their entry
    moves_of: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)  # the batch's redemptions
    emptied: dict[int, Lot] = field(default_factory=dict)  # lots the batch took the last points of
    lines_of: dict[int, tuple[PurchaseLine, ...]] = field(default_factory=dict)  # the batch's purchase lines
    payment_of: dict[int, Entry] = field(default_factory=dict)  # the payments of the batch's purchases
    next_id: int = PROVISIONAL
