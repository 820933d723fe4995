"""Pure arithmetic of the program rules: earning, claw-back, expiry dates, tiers.
No I/O here; the service layer feeds it values and records what it returns."""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal


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


def claw_back(
    purchase_amount: Decimal,
    refunded_before: Decimal,
    refund: Decimal,
    points_earned: int,
    clawed_before: int,
    rate: Decimal,
    multiplier: Decimal,
) -> int:
    """Points to take back so the purchase nets what its remaining amount would earn."""
    remaining_amount = purchase_amount - refunded_before - refund
    target = earn_points(remaining_amount, rate, multiplier).points
    return max(0, points_earned - clawed_before - target)


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


def window_start(at: datetime, window_days: int) -> datetime:
    return at - timedelta(days=window_days)


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
