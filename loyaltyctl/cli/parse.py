"""Option values checked while the command line is parsed: a bad value is a usage error
(exit 2) naming the option, before any database is opened.

Each check is a Typer callback(ctx, param, value). The rules themselves live in
values.py (and nps.py); this adds the bounds that keep dates and counts inside what the
date arithmetic and SQLite integers can hold, and keeps oversized values out of messages.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Callable

EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2999, 12, 31, 23, 59, 59, tzinfo=timezone.utc)
MAX_DAYS = 36_500  # 100 years: LATEST plus this still fits a datetime
MAX_COUNT = 1_000_000_000
MAX_TEXT = 64  # longer than any date or number we accept


def _bad(message: str):
    import typer

    return typer.BadParameter(message)


def shown(value: Any) -> str:
    """A value for a message: repr'd (control characters escaped), cut when oversized."""
    text = str(value)
    if isinstance(value, int) and len(text) <= MAX_TEXT:
        return text
    return repr(text) if len(text) <= MAX_TEXT else repr(text[:MAX_TEXT]) + f"... ({len(text)} characters)"


def _text(value: str) -> str:
    if len(value) > MAX_TEXT:
        raise _bad(f"{shown(value)} is too long to be a valid value")
    return value


def _usage(parse: Callable[[str], Any], value: str) -> Any:
    """Run a values.py parser; its InputError becomes a usage error (the option is named by Click)."""
    from ..errors import InputError

    try:
        return parse(_text(value))
    except InputError as exc:
        raise _bad(exc.detail) from None


def moment(ctx, param, value: str | None) -> str | None:
    """An ISO-8601 moment between 1970 and 2999, returned in the stored form."""
    if value is None:
        return None
    from ..core.values import fmt_ts, parse_ts

    dt = _usage(parse_ts, value)
    if not EARLIEST <= dt <= LATEST:
        raise _bad(f"{shown(value)} is out of range ({EARLIEST:%Y-%m-%d} to {LATEST:%Y-%m-%d})")
    return fmt_ts(dt)


def ranged(low: int, high: int, unit: str = "") -> Callable:
    """A whole number from low to high (Click has already refused anything not an integer)."""
    def check(ctx, param, value: int | None) -> int | None:
        if value is not None and not low <= value <= high:
            raise _bad(f"{shown(value)} is out of range ({low:,} to {high:,}{unit})")
        return value
    return check


days = ranged(1, MAX_DAYS, " days")
count = ranged(1, MAX_COUNT)


def points(ctx, param, value: str | None) -> int | None:
    """A positive whole number of points."""
    from ..core.values import parse_points

    return None if value is None else _usage(parse_points, value)


def signed_points(ctx, param, value: str | None) -> int | None:
    """A non-zero whole number of points, negative to remove."""
    from ..core.values import parse_points

    return None if value is None else _usage(lambda v: parse_points(v, allow_negative=True), value)


def amount(ctx, param, value: str | None):
    """An exact positive decimal amount (values.parse_amount)."""
    from ..core.values import parse_amount

    return None if value is None else _usage(parse_amount, value)


def cost(ctx, param, value: str | None) -> str | None:
    """An exact decimal amount, zero allowed; passed on as text."""
    from ..core.values import parse_amount

    if value is not None:
        _usage(lambda v: parse_amount(v, allow_zero=True), value)
    return value


def score(ctx, param, value: str | None) -> int | None:
    """An NPS score: a whole number from 0 to 10."""
    from ..app.nps import parse_score

    return None if value is None else _usage(parse_score, value)


def factor(ctx, param, value: str) -> str:
    """at-risk's --factor (analytics.parse_factor); passed on as text."""
    from ..reports.activity import parse_factor

    _usage(parse_factor, value)
    return value


def _each(parse: Callable[[str], Any]) -> Callable:
    """A repeatable option: each value parsed (io/baskets.py), a tuple of the results."""
    def check(ctx, param, values):
        return tuple(_usage(parse, v) for v in values or ())
    return check


def _line(value: str):
    from ..io.baskets import parse_line

    return parse_line(value)


def _discount(value: str):
    from ..io.baskets import parse_discount

    return parse_discount(value)


def _refund_line(value: str):
    from ..io.baskets import parse_refund_line

    return parse_refund_line(value)


lines = _each(_line)
discounts = _each(_discount)
refund_lines = _each(_refund_line)


def text(field: str) -> Callable:
    """Text typed for `field` (values.text: printable, within the field's limit, the same rule
    as a CSV import's); a repeated option's values each."""
    def check(ctx, param, value):
        if value is None:
            return None
        from ..core.values import text as parse_text
        from ..errors import InputError

        try:
            if isinstance(value, (list, tuple)):
                return [parse_text(v, field) for v in value]
            return parse_text(value, field)
        except InputError as exc:
            raise _bad(exc.detail) from None
    return check


def delimiter(ctx, param, value: str | None) -> str | None:
    """An import's --delimiter (io/csv.delimiter)."""
    from ..app.batch import parse_delimiter

    return None if value is None else _usage(parse_delimiter, value)


def encoding(ctx, param, value: str | None) -> str | None:
    """An import's --encoding: an ASCII-compatible text encoding (io/csv.encoding)."""
    from ..app.batch import parse_encoding

    return None if value is None else _usage(parse_encoding, value)
