"""Values: parsing and formatting of timestamps, amounts, points and keys, and the clock.

Every parser names the field it reads with its canonical name (the CSV column:
`amount`, `points`, `occurred_at`, ...); the CLI shows it under its option name."""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from ..errors import InputError

SCALE = 10_000  # amounts are stored as integers of 1/10,000 of a currency unit
TS_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_AMOUNT = re.compile(r"^\d+(\.\d+)?$")
# Timestamps outside these years are refused: expiry and window arithmetic adds up to a
# hundred years, which must stay inside the calendar.
FIRST_YEAR, LAST_YEAR = 1900, 2999
CLOCK_ENV = "LOYALTYCTL_NOW"  # pins "now" (tests, reproducible demos); read only here


def now() -> datetime:
    """The current moment in UTC, to the second; LOYALTYCTL_NOW (ISO-8601) pins it."""
    pinned = os.environ.get(CLOCK_ENV)
    if pinned:
        return parse_ts(pinned, CLOCK_ENV)
    return datetime.now(timezone.utc).replace(microsecond=0)


def now_ts() -> str:
    return fmt_ts(now())


# Entries may be dated this far ahead of "now": the clocks of tills and servers drift.
CLOCK_SKEW_SECONDS = 300


def not_future(ts: str, field: str, at_now: str | None = None) -> str:
    """Refuse a moment later than now plus the clock-skew allowance (entries and jobs record
    what happened, not what will); returns the moment."""
    current = at_now or now_ts()
    if ts > shift(current, seconds=CLOCK_SKEW_SECONDS):
        raise InputError(f"{ts} is in the future (now is {current}; clocks may be at most "
                         f"{CLOCK_SKEW_SECONDS // 60} minutes ahead)", field=field)
    return ts


def parse_ts(value: str, field: str = "timestamp") -> datetime:
    """ISO-8601; a value without a zone is UTC; a bare date is midnight UTC."""
    text = (value or "").strip()
    try:
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        dt = dt.astimezone(timezone.utc).replace(microsecond=0)
    except (ValueError, OverflowError):
        raise InputError(f"{_short(value)!r} is not an ISO-8601 timestamp (e.g. 2026-11-23T09:30:00Z)",
                         field=field) from None
    if not FIRST_YEAR <= dt.year <= LAST_YEAR:
        raise InputError(f"{_short(value)} is outside the years {FIRST_YEAR}-{LAST_YEAR}", field=field)
    return dt


def _short(value) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def fmt_ts(dt: datetime) -> str:
    """The stored form of a UTC timestamp, 'YYYY-MM-DDTHH:MM:SSZ' (isoformat is faster than strftime)."""
    return dt.isoformat()[:19] + "Z"


def to_dt(text: str) -> datetime:
    """Parse a timestamp stored by loyaltyctl."""
    if len(text) != 20 or text[10] != "T" or text[19] != "Z":
        raise ValueError(f"not a stored timestamp: {text!r}")
    return datetime.fromisoformat(text[:19]).replace(tzinfo=timezone.utc)  # much faster than strptime


def shift(ts: str, days: int = 0, seconds: int = 0) -> str:
    """A stored timestamp moved by whole days and seconds."""
    return fmt_ts(to_dt(ts) + timedelta(days=days, seconds=seconds))


def ts_or_now(value: str | None, field: str = "occurred_at") -> str:
    """A timestamp in the stored form, from user text (None: now)."""
    if value and len(value) == 20 and value[10] == "T" and value[19] == "Z" and FIRST_YEAR <= _year(value) <= LAST_YEAR:
        try:  # already in the stored form (the common case in imports): just check it is a real time
            datetime.fromisoformat(value[:19])
            return value
        except ValueError:
            pass
    return fmt_ts(parse_ts(value, field) if value else now())


def _year(value: str) -> int:
    head = value[:4]
    return int(head) if head.isdigit() else 0


def parse_amount(value: str, field: str = "amount", *, allow_zero: bool = False) -> Decimal:
    """An exact, non-negative decimal with at most 4 decimal places."""
    text = str(value).strip()
    if text.startswith("-"):
        raise InputError(f"amount must not be negative (got {_short(value)})", field=field)
    if not _AMOUNT.match(text):
        raise InputError(f"{_short(value)!r} is not a decimal amount (e.g. 12.50)", field=field)
    if len(text) > 40:
        raise InputError(f"amount {_short(value)} is too large", field=field)
    try:
        amount = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex already guards
        raise InputError(f"{_short(value)!r} is not a decimal amount", field=field) from None
    if amount.as_tuple().exponent < -4:
        raise InputError(f"{_short(value)} has more than 4 decimal places", field=field)
    if amount == 0 and not allow_zero:
        raise InputError("amount must be greater than zero", field=field)
    if amount >= Decimal(10) ** 14:
        raise InputError(f"amount {_short(value)} is too large", field=field)
    return amount


def to_e4(amount: Decimal) -> int:
    return int(amount * SCALE)


def from_e4(value: int | None) -> Decimal | None:
    if value is None:
        return None
    return (Decimal(value) / SCALE).quantize(Decimal("0.01")) if value % 100 == 0 else Decimal(value) / SCALE


# ISO 4217 minor units of the currencies that do not have two decimal places.
_MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
                     "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
    **dict.fromkeys(("CLF", "UYW"), 4),
}


def minor_unit(currency: str) -> int:
    """Decimal places of a currency's smallest unit (ISO 4217): 2 for GBP, 0 for JPY, 3 for KWD."""
    return _MINOR_UNITS.get(currency, 2)


def check_precision(amount: Decimal, currency: str, field: str = "amount") -> Decimal:
    """Refuse an amount finer than the currency's smallest unit (1.234 GBP)."""
    places = minor_unit(currency)
    if amount.as_tuple().exponent < -places and amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise InputError(f"{amount} has more decimal places than {currency} has ({places})", field=field)
    return amount


def money(value: Decimal | int | None, currency: str | None = None) -> str:
    """Money for display. With its currency: at the currency's smallest unit, rounded half
    up (points x point value can fall between cents). Without: two decimal places unless
    more are significant."""
    if value is None:
        return ""
    if isinstance(value, int):
        value = from_e4(value)
    if currency is not None:
        return f"{value.quantize(Decimal(1).scaleb(-minor_unit(currency)), rounding=ROUND_HALF_UP):f}"
    q = value.quantize(Decimal("0.01")) if value == value.quantize(Decimal("0.01")) else value.normalize()
    return f"{q:f}"


def num(amount: Decimal | None) -> str | None:
    """Canonical text of an amount, so 10, 10.0 and 10.00 are the same content."""
    return None if amount is None else f"{amount.normalize():f}"


MAX_POINTS = 10**15


def parse_points(value, field: str = "points", *, allow_negative: bool = False) -> int:
    text = str(value).strip()
    if len(text) > 40 or not re.fullmatch(r"[+-]?\d+", text):
        raise InputError(f"{_short(value)!r} is not a whole number of points", field=field)
    points = int(text)
    if points == 0:
        raise InputError("points must not be zero", field=field)
    if points < 0 and not allow_negative:
        raise InputError(f"points must be positive (got {points})", field=field)
    if abs(points) >= MAX_POINTS:
        raise InputError(f"{_short(points)} points is too large", field=field)
    return points


# The longest value of each text field, in characters: the same typed on the command line or
# read from a CSV file (README "Text fields"). A tag's limit is per tag.
TEXT_LIMITS = {
    "member_id": 200, "referred_by": 200, "txn_id": 200, "ref_txn_id": 200, "response_id": 200,
    "name": 200, "email": 254, "account": 200, "tags": 64, "reason": 500, "comment": 10_000,
    "program": 64, "tier": 64, "reward": 64, "event": 64, "partner": 64,
}
TEXT_LIMIT = 200  # any other text field


def text(value, field: str) -> str:
    """Text a person typed for `field`, stripped: refused when it holds a control character
    (escape sequences would repaint the terminal of whoever reads it later; line breaks and
    tabs break tables and CSV rows) or is longer than the field's limit."""
    clean = str(value).strip()
    limit = TEXT_LIMITS.get(field, TEXT_LIMIT)
    if len(clean) > limit:
        raise InputError(f"longer than {limit:,} characters ({len(clean):,})", field=field)
    printable(clean, field)
    return clean


CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc: C0 controls, DEL, C1 controls


def printable(value: str, field: str) -> None:
    """Refuse a value holding a control character, naming the first."""
    bad = CONTROL.search(value)
    if bad is not None:
        hint = " (a line break inside a quoted cell?)" if bad.group() in "\r\n" else ""
        raise InputError(f"contains a control character (U+{ord(bad.group()):04X}){hint}; only printable text "
                         "is stored", field=field)


def optional_text(value, field: str) -> str | None:
    """text() of an optional field: None when absent or blank."""
    return None if value is None else text(value, field) or None


def parse_key(value: str, field: str) -> str:
    """An idempotency key (--txn, --response-id): non-empty text within the field's limit."""
    key = text(value, field)
    if not key:
        raise InputError("must not be empty", field=field)
    return key


def tag_list(tags) -> list[str]:
    """Tags as given (repeated options, or ';'-separated), stripped, each once, in order."""
    out: list[str] = []
    for tag in tags:
        for t in str(tag).split(";"):
            t = text(t, "tags")
            if t and t not in out:
                out.append(t)
    return out
