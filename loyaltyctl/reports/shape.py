"""What every report shares: its shape (columns, rows, which columns are numbers), periods,
percentages and money rounding.

Periods are half-open: --since is included, --until is not (so
--since 2026-01-01 --until 2026-02-01 is January). Percentages are rounded half up to
one decimal place, money to the cent; a ratio with nothing to divide by is empty (None)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Iterable

from ..core.values import SCALE, ts_or_now
from ..errors import InputError
from ..store import programs as program_store
from ..store.programs import require_program

CENT = Decimal("0.01")
ONE_DP = Decimal("0.1")


@dataclass(frozen=True)
class Report:
    """A report as data: the renderers (table, JSON, CSV) show the same rows and keys."""

    columns: list[str]
    rows: Iterable[dict]  # long lists: a generator over a cursor, to be read once
    numeric: list[str]


def codes(db, code: str | None) -> list[str]:
    """The program a report is limited to (checked), or every applied program."""
    if code:
        require_program(db, code)
        return [code]
    return program_store.codes(db)


def cash(value_e4: int | Decimal) -> Decimal:
    return (Decimal(value_e4) / SCALE).quantize(CENT, rounding=ROUND_HALF_UP)


def pct(part, whole) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(ONE_DP, rounding=ROUND_HALF_UP)


def one_dp(value: Decimal) -> Decimal:
    return value.quantize(ONE_DP, rounding=ROUND_HALF_UP)


def span(since: str | None, until: str | None, as_of: str | None = None) -> tuple[str | None, str]:
    """[since, until): since None means from the beginning; until defaults to --as-of (now)."""
    lo = ts_or_now(since, "since") if since else None
    hi = ts_or_now(until, "until") if until else ts_or_now(as_of, "as_of")
    if lo is not None and hi <= lo:
        raise InputError(f"{hi} must be after --since {lo}", field="until")
    return lo, hi
