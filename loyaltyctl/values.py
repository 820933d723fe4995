"""Parsing and formatting of user-supplied values: timestamps, amounts, points."""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from .errors import InputError

SCALE = 10_000  # amounts are stored as integers of 1/10,000 of a currency unit
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_AMOUNT = re.compile(r"^\d+(\.\d+)?$")


CLOCK_ENV = "LOYALTYCTL_NOW"  # pins "now" (tests, reproducible demos); read only here


def now() -> datetime:
    """The current moment in UTC, to the second; LOYALTYCTL_NOW (ISO-8601) pins it."""
    pinned = os.environ.get(CLOCK_ENV)
    if pinned:
        return _pinned(pinned)
    return datetime.now(timezone.utc).replace(microsecond=0)


def _pinned(text: str) -> datetime:
    try:
        return parse_ts(text, CLOCK_ENV)
    except InputError:
        raise InputError(f"{CLOCK_ENV}: {text!r} is not an ISO-8601 timestamp (e.g. 2026-11-23T09:30:00Z)") from None


def parse_ts(value: str, field: str = "timestamp") -> datetime:
    """ISO-8601; a value without a zone is UTC; a bare date is midnight UTC."""
    text = (value or "").strip()
    try:
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise InputError(f"{field}: {value!r} is not an ISO-8601 timestamp (e.g. 2026-11-23T09:30:00Z)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc).replace(microsecond=0)


def fmt_ts(dt: datetime) -> str:
    """The stored form of a UTC timestamp, 'YYYY-MM-DDTHH:MM:SSZ' (isoformat is faster than strftime)."""
    return dt.isoformat()[:19] + "Z"


def to_dt(text: str) -> datetime:
    """Parse a timestamp stored by loyaltyctl."""
    if len(text) != 20 or text[10] != "T" or text[19] != "Z":
        raise ValueError(f"not a stored timestamp: {text!r}")
    return datetime.fromisoformat(text[:19]).replace(tzinfo=timezone.utc)  # much faster than strptime


def ts_or_now(value: str | None, field: str = "--at") -> str:
    if value and len(value) == 20 and value[10] == "T" and value[19] == "Z":
        try:  # already in the stored form (the common case in imports): just check it is a real time
            datetime.fromisoformat(value[:19])
            return value
        except ValueError:
            pass
    return fmt_ts(parse_ts(value, field) if value else now())


def parse_amount(value: str, field: str = "--amount", *, allow_zero: bool = False) -> Decimal:
    """An exact, non-negative decimal with at most 4 decimal places."""
    text = str(value).strip()
    if text.startswith("-"):
        raise InputError(f"{field}: amount must not be negative (got {value})")
    if not _AMOUNT.match(text):
        raise InputError(f"{field}: {value!r} is not a decimal amount (e.g. 12.50)")
    try:
        amount = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex already guards
        raise InputError(f"{field}: {value!r} is not a decimal amount") from None
    if amount.as_tuple().exponent < -4:
        raise InputError(f"{field}: {value} has more than 4 decimal places")
    if amount == 0 and not allow_zero:
        raise InputError(f"{field}: amount must be greater than zero")
    if amount >= Decimal(10) ** 14:
        raise InputError(f"{field}: amount {value} is too large")
    return amount


def to_e4(amount: Decimal) -> int:
    return int(amount * SCALE)


def from_e4(value: int | None) -> Decimal | None:
    if value is None:
        return None
    return (Decimal(value) / SCALE).quantize(Decimal("0.01")) if value % 100 == 0 else Decimal(value) / SCALE


def money(value: Decimal | int | None) -> str:
    """Currency for display: two decimal places unless more are significant."""
    if value is None:
        return ""
    if isinstance(value, int):
        value = from_e4(value)
    q = value.quantize(Decimal("0.01")) if value == value.quantize(Decimal("0.01")) else value.normalize()
    return f"{q:f}"


def parse_points(value, field: str = "--points", *, allow_negative: bool = False) -> int:
    text = str(value).strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise InputError(f"{field}: {value!r} is not a whole number of points")
    points = int(text)
    if points == 0:
        raise InputError(f"{field}: points must not be zero")
    if points < 0 and not allow_negative:
        raise InputError(f"{field}: points must be positive (got {points})")
    if abs(points) >= 10**15:
        raise InputError(f"{field}: {points} points is too large")
    return points


def parse_key(value: str, field: str) -> str:
    """An idempotency key (--txn, --response-id): non-empty, at most 200 characters."""
    key = value.strip()
    if not key:
        raise InputError(f"{field}: must not be empty")
    if len(key) > 200:
        raise InputError(f"{field}: longer than 200 characters")
    return key
