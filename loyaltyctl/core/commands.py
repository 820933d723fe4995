"""Commands: what the engine is asked to do (a till's purchase, a redemption, a refund ...),
and what it answers (a Posting to write, or a Reject naming its field), as frozen dataclasses.
The ledger records they carry are in core/records.py."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .records import Enrollment, Entry, Lot, MemberState, Move, PurchaseLine, Qualifying, Ref, Sale, TierChange


# --- commands -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Line:
    """A purchase line as the till gives it."""

    sku: str
    quantity: int
    unit_price: Decimal
    discount: Decimal = Decimal(0)
    category: str | None = None  # None: the catalogue's category of the sku, if any


@dataclass(frozen=True, slots=True)
class Discount:
    """A discount on a basket: on one category, or on the whole order."""

    amount: Decimal
    category: str | None = None  # None: order-wide


@dataclass(frozen=True, slots=True)
class Basket:
    """A purchase as its lines and discounts (the till's receipt)."""

    lines: tuple[Line, ...]
    discounts: tuple[Discount, ...] = ()


@dataclass(frozen=True, slots=True)
class Purchase:
    """A member's purchase: earns by the program's rules (amount, or a basket's lines)."""

    txn: str
    member: str
    program: str | None
    at: str
    at_given: bool
    amount: Decimal | None  # None: the basket's total
    partner: str | None = None
    basket: Basket | None = None
    pay_points: int | None = None  # points paying part of the order
    no_points: bool = False  # counts for tiers and analytics, earns nothing


@dataclass(frozen=True, slots=True)
class Event:
    """An engagement event (a review, a check-in ...) that earn rules may reward."""

    txn: str
    member: str
    program: str | None
    at: str
    at_given: bool
    event: str


@dataclass(frozen=True, slots=True)
class Redeem:
    """Points redeemed: for a catalogue reward, or a number of points."""

    txn: str
    member: str
    program: str | None
    at: str
    at_given: bool
    points: int | None = None
    reward: str | None = None


@dataclass(frozen=True, slots=True)
class Refund:
    """A purchase or redemption taken back, in whole or in part."""

    txn: str
    ref: str
    at: str
    at_given: bool
    amount: Decimal | None = None
    member: str | None = None
    lines: tuple[tuple[str, int], ...] = ()  # (sku, quantity) of a basket purchase refunded


@dataclass(frozen=True, slots=True)
class Adjust:
    """An operator's correction: a credit or debit with a reason."""

    txn: str
    member: str
    program: str | None
    at: str
    at_given: bool
    points: int
    reason: str
    expires_at: str | None = None  # a credit's expiry instead of the program's (NEVER: none)


@dataclass(frozen=True, slots=True)
class Opening:
    """A balance carried over from another system, as one credit."""

    txn: str
    member: str
    program: str | None
    at: str
    at_given: bool
    points: int
    expires_at: str | None = None  # None: the program's rule; NEVER: never expires


NEVER = "never"


@dataclass(frozen=True, slots=True)
class AnonymousSale:
    """A non-member purchase, recorded for analytics only."""

    txn: str
    program: str | None
    at: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Join:
    """An enrollment: a member joins a program (referral rewards included)."""

    member: str
    program: str
    at: str
    tags: tuple[str, ...] = ()
    referred_by: str | None = None


Command = Purchase | Event | Redeem | Refund | Adjust | Opening | AnonymousSale | Join


# --- what the engine returns -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Posting:
    """What one command changes: the rows to write, and what the member states learn from
    them (core.engine.apply). A repeat of a recorded transaction is a posting with status
    'duplicate' and nothing to write."""

    status: str  # recorded | duplicate
    txn_id: str
    entry: Entry | None = None  # the command's entry (the recorded one for a duplicate)
    entries: tuple[Entry, ...] = ()
    lots: tuple[Lot, ...] = ()
    moves: tuple[Move, ...] = ()
    tier_changes: tuple[TierChange, ...] = ()
    qualifying: tuple[tuple[int, Qualifying], ...] = ()  # (enrollment, item) new in tier windows
    activity: tuple[tuple[int, str], ...] = ()  # (enrollment, time) of new earns and redemptions
    events: tuple[tuple[int, str, str], ...] = ()  # (enrollment, event, time) of new event earns
    reopened: tuple[Lot, ...] = ()  # emptied lots a cancelled redemption gives points back to
    enrollment: Enrollment | None = None  # a new enrollment (Join)
    state: MemberState | None = None  # ... and its state
    sale: Sale | None = None
    ref: Ref | None = None  # a refund: the purchase or redemption it cites, after it
    lines: tuple[PurchaseLine, ...] = ()  # purchase lines, and refunded lines, to write
    upgraded: str | None = None
    credits: tuple[tuple[str, int, str], ...] = ()  # Join: (member, points, role) referral credits


@dataclass(frozen=True, slots=True)
class Reject:
    """A command the engine refused, and why."""

    error: Exception  # a LoyaltyError naming its field
