"""The program rules as pure functions: earning, claw-back, expiry dates and lot life,
tier thresholds and reviews. No I/O; the engine and the jobs feed them values.

The store names the same rules in SQL where reports must run them over a whole
ledger (store/fragments.py); tests/test_rules.py holds the two against each other."""

from __future__ import annotations

import bisect
import calendar
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache

from ..errors import InputError, NotFound
from .program import Level, Program, Rule
from .values import fmt_ts, money, shift, to_dt

# --- earning -------------------------------------------------------------------------


@dataclass(frozen=True)
class Earned:
    points: int
    exact: Decimal  # the unrounded product

    def arithmetic(self, amount: Decimal, rate: Decimal, multiplier: Decimal) -> str:
        return f"{amount} x {rate} x {multiplier} = {self.exact.normalize():f} -> {self.points}"


def earn_points(amount: Decimal, rate: Decimal, multiplier: Decimal = Decimal(1)) -> Earned:
    """floor(amount * rate * multiplier); exact decimal arithmetic, rounded down."""
    exact = amount * rate * multiplier
    return Earned(int(exact.to_integral_value(rounding=ROUND_FLOOR)), exact)


def points_for(amount: Decimal, rate: Decimal, multiplier: Decimal) -> int:
    """earn_points(...).points: amounts, rates and multipliers are never negative, so
    truncating the exact product is rounding it down."""
    return int(amount * rate * multiplier)


@dataclass(frozen=True)
class Terms:
    """The rule a purchase earns under, its rate and the tier multiplier."""

    rule: Rule
    rate: Decimal
    multiplier: Decimal


def purchase_terms(program: Program, tags, partner: str | None, tier: str | None, member: str) -> Terms:
    """The partner's rule, else the first spend rule whose condition the member meets;
    partner rules apply no tier multiplier unless they say so, spend rules do."""
    key = ("terms", tags, partner, tier)
    found = program.memo.get(key)
    if found is None:
        found = program.memo[key] = _terms(program, tags, partner, tier, member)
    return found


def _terms(program: Program, tags, partner: str | None, tier: str | None, member: str) -> Terms:
    if partner:
        rule = program.partner_rule(partner)
        if rule is None:
            partners = program.names("partner", "partner")
            raise NotFound(f"unknown partner {partner!r} in {program.code!r}"
                           + (f" (known: {', '.join(partners)})" if partners else ""), field="partner")
    else:
        rule = program.spend_rule(tags)
        if rule is None:
            raise InputError(f"program {program.code!r} has no spend rule for member {member!r}")
    use = rule.get("tier_multiplier")
    use = (not partner) if use is None else use
    multiplier = program.multiplier(tier) if (program.tiered and use) else Decimal(1)
    return Terms(rule, Decimal(str(rule.get("points_per_unit"))), multiplier)


def claw_back(purchase_amount: Decimal, refunded_before: Decimal, refund: Decimal, points_earned: int,
              clawed_before: int, rate: Decimal, multiplier: Decimal) -> int:
    """Points to take back so the purchase nets what its remaining amount would earn."""
    remaining_amount = purchase_amount - refunded_before - refund
    target = earn_points(remaining_amount, rate, multiplier).points
    return max(0, points_earned - clawed_before - target)


def content(**fields) -> str:
    """The canonical text of a request, compared when a transaction id is used again: its
    fields as JSON with sorted keys (json.dumps(..., sort_keys=True)), built from memoised
    pieces because imports make one per row."""
    parts = [f"{_quoted(k)}: {_json_value(v)}" for k, v in sorted(fields.items()) if v is not None]
    return "{" + ", ".join(parts) + "}"


def _json_value(value) -> str:
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    return _quoted(str(value))


@lru_cache(maxsize=65536)
def _quoted(text: str) -> str:
    return json.dumps(text)


# --- events ----------------------------------------------------------------------------


def period_start(at: datetime, per: str) -> datetime:
    """Start of the calendar period (day/week/month/year) containing `at`."""
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if per == "day":
        return day
    if per == "week":
        return day - timedelta(days=day.weekday())
    if per == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def period_end(start: datetime, per: str) -> datetime:
    if per == "day":
        return start + timedelta(days=1)
    if per == "week":
        return start + timedelta(days=7)
    if per == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(year=start.year + 1)


def event_refusal(rule: Rule, event: str, member: str, at: str, earned: list[str]) -> str | None:
    """Why an event may not earn now (once per member, or a count per period), else None;
    `earned` are the times the member already earned it."""
    if rule.get("once") and earned:
        return f"event {event!r} earns once per member and {member!r} already has it"
    limit = rule.get("limit")
    if limit:
        start = period_start(to_dt(at), limit["per"])
        lo, hi = fmt_ts(start), fmt_ts(period_end(start, limit["per"]))
        if sum(1 for t in earned if lo <= t < hi) >= limit["count"]:
            return (f"event {event!r} earns at most {limit['count']} times per {limit['per']}; "
                    f"member {member!r} has reached the limit")
    return None


# --- lots ------------------------------------------------------------------------------


def lot_expiry(earned_at: datetime, after_days: int | None, round_to: str | None = None) -> datetime | None:
    """When a lot earned at `earned_at` expires; None means never.
    round_to month_end/year_end moves it to the first instant after that month/year."""
    if not after_days:
        return None
    expires = earned_at + timedelta(days=after_days)
    if round_to == "month_end":
        last = calendar.monthrange(expires.year, expires.month)[1]
        expires = expires.replace(day=last, hour=0, minute=0, second=0) + timedelta(days=1)
    elif round_to == "year_end":
        expires = expires.replace(year=expires.year + 1, month=1, day=1, hour=0, minute=0, second=0)
    return expires


def expiry_for(program: Program, at: str) -> str | None:
    """The expiry date the program gives points earned at `at` (None: never)."""
    if not program.after_days:
        return None
    if program.round_to:  # rounded to the end of a month or year: the time of day does not matter
        return _expiry_on(at[:10], program.after_days, program.round_to)
    return _day_shift(at[:10], program.after_days) + at[10:]


@lru_cache(maxsize=4096)
def _expiry_on(day: str, after_days: int, round_to: str) -> str:
    return fmt_ts(lot_expiry(to_dt(day + "T00:00:00Z"), after_days, round_to))


def inactivity_deadline(start: str, days: int, activity: tuple[str, ...]) -> str:
    """When a lot lapses for inactivity: the first moment `days` pass after `start` (its
    earning, or when the rule in force took effect if later) or a later activity (an earn or
    redemption) with no activity between. The member's lots lapse together: their chains run
    through the same activity. While the member stays active it is a projection."""
    x = start
    deadline = shift(x, days)
    for a in activity[bisect.bisect_right(activity, start):]:
        if a >= deadline:
            break
        x = a
        deadline = shift(x, days)
    return deadline


def lot_end(lot, activity: tuple[str, ...]) -> str | None:
    """A lot's effective expiry: the sooner of its date and its inactivity deadline (None: never)."""
    if lot.inactivity_days is None:
        return lot.expires_at
    deadline = inactivity_deadline(lot.inactivity_from or lot.earned_at, lot.inactivity_days, activity)
    return deadline if lot.expires_at is None else min(lot.expires_at, deadline)


def lot_alive(lot, at: str, activity: tuple[str, ...]) -> bool:
    """Usable at `at`: earned by then and not expired (by date or inactivity)."""
    if lot.earned_at > at:
        return False
    end = lot_end(lot, activity)
    return end is None or end > at


def fifo_order(lots, activity: tuple[str, ...], first: int | None = None) -> list:
    """Lots in consumption order: `first` ahead (a refund's own lot), then soonest expiry,
    never-expiring last, then by id."""
    def key(lot):
        end = lot_end(lot, activity)
        return (lot.id != first, end is None, end or "", lot.id)
    return sorted(lots, key=key)


def fifo_take(lots: list[tuple[int, int]], points: int) -> tuple[list[tuple[int, int]], int]:
    """Take `points` from lots given as (lot_id, remaining), already in consumption
    order (soonest expiry first). Returns [(lot_id, taken)] and the uncovered rest."""
    taken: list[tuple[int, int]] = []
    rest = points
    for lot_id, remaining in lots:
        if rest <= 0:
            break
        take = min(remaining, rest)
        if take > 0:
            taken.append((lot_id, take))
            rest -= take
    return taken, rest


# --- tiers -------------------------------------------------------------------------------


def window_start(at: datetime, window_days: int) -> datetime:
    return at - timedelta(days=window_days)


def window_end(at: str, window_days: int) -> str:
    """When a credit made at `at` leaves the tier window."""
    return _days_later(at, window_days)


def _days_later(at: str, days: int) -> str:
    """A stored timestamp moved by whole days: the time of day stays, the date is worked out once per day."""
    return _day_shift(at[:10], days) + at[10:]


@lru_cache(maxsize=8192)
def _day_shift(day: str, days: int) -> str:
    return shift(day + "T00:00:00Z", days)[:10]


def qualifying_total(window, at: str, window_days: int) -> int:
    """The tier window's total at `at`: items inside (at - window_days, at] that count by then."""
    start = _days_later(at, -window_days)
    lo = bisect.bisect_right(window, start, key=lambda q: q.at)
    hi = bisect.bisect_right(window, at, key=lambda q: q.at)
    return sum(q.value for q in window[lo:hi] if q.since <= at)


def qualifying_value(program: Program, total: int) -> Decimal:
    """A window total as the unit its thresholds are in (spend is stored in 1/10,000)."""
    from .values import from_e4

    return from_e4(total) if program.basis == "spend" else Decimal(total)


def reached_index(program: Program, total: int) -> int:
    """The index of the level a window total (in stored units) reaches, without Decimals."""
    bounds = program.memo.get("bounds")
    if bounds is None:
        scale = 10_000 if program.basis == "spend" else 1
        bounds = program.memo["bounds"] = [lv.threshold * scale for lv in program.levels]
    return max(bisect.bisect_right(bounds, total) - 1, 0)


def counts_for_tier(program: Program, rule_kind: str) -> bool:
    """Whether a credit of this rule counts toward the program's tier window: spend tiers
    count the operator's own purchases only (not partner sales), points tiers every earn."""
    if program.basis == "spend":
        return rule_kind == "spend"
    return rule_kind in ("spend", "partner", "event", "referral")


def upgrade_to(program: Program, tier: str | None, total: Decimal) -> tuple[Level, str] | None:
    """The level a qualifying total reaches, with the reason, when it is above `tier`."""
    current = program.level(tier)
    reached = program.level_for(total)
    if current is not None and reached.index <= current.index:
        return None
    spend = program.basis == "spend"
    unit = program.currency if spend else "points"
    cur = program.currency
    return reached, (f"qualifying {program.basis} {money(total, cur) if spend else total} {unit} reached "
                     f"{reached.name}'s {money(reached.threshold, cur) if spend else reached.threshold}")


def tier_at(tiers, at: str):
    """The latest tier change in force at `at` (tiers sorted by (effective_at, id)), or None."""
    i = bisect.bisect_right(tiers, at, key=lambda c: c.effective_at)
    return tiers[i - 1] if i else None


@dataclass(frozen=True)
class ReviewCase:
    """One member at a review: total in the window, current tier, manual floor in force."""

    total: Decimal
    tier: str | None
    floor: str | None


def review_target(program: Program, case: ReviewCase) -> Level:
    """The tier a review gives: what the window earns, but never below a manual floor."""
    target = program.level_for(case.total)
    floor = program.level(case.floor)
    return floor if floor and floor.index > target.index else target


def review_direction(program: Program, case: ReviewCase, removed: Decimal | None = None) -> str:
    """'up', 'down' or 'unchanged' for a review before grace is considered. A member whose
    tier the program no longer has moves to what they earn: up or down from that tier's old
    threshold (`removed`; None: no tier yet)."""
    target = review_target(program, case)
    current = program.level(case.tier)
    if current is None:
        return "down" if removed is not None and target.threshold < removed else "up"
    if current.index < target.index:
        return "up"
    return "down" if current.index > target.index else "unchanged"


def review_reason(program: Program, case: ReviewCase, target: Level) -> str:
    unit = program.currency if program.basis == "spend" else "points"
    reason = f"review: qualifying {program.basis} {case.total} {unit} in {program.window_days} days"
    if case.floor == target.name and program.level_for(case.total).index < target.index:
        reason += f"; manual floor {target.name}"
    return reason


# --- member data -----------------------------------------------------------------------------


def contact_conflict(member_id: str, have: dict[str, str | None], erased: bool,
                     given: dict[str, str | None]) -> str | None:
    """Why contact details given with an enrollment may not be kept: they differ from what
    the member has (or had, before an erase); changing them is `member update`'s job."""
    for field, value in given.items():
        current = have.get(field)
        if value is not None and current is not None and value != current:
            what = "was erased" if erased else f"is {current!r}"
            return (f"member {member_id!r} already exists and their {field} {what}; change it with "
                    f"`loyaltyctl member update {member_id} --{field} ...`")
    return None
