"""Points reports: top balances, points expiring soon, and liability (the same figure
`program plan` shows before and after a change)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.values import money, shift, ts_or_now
from ..errors import InputError
from ..store import jobs as job_sql
from ..store import reports as sql
from ..store.programs import require_program
from .shape import Report, codes


def balances(db, program: str | None = None, limit: int | None = 20, as_of: str | None = None) -> Report:
    """Top members by balance (limit None: every member, largest balance first)."""
    if limit is not None and limit <= 0:
        raise InputError(f"must be a positive number (got {limit})", field="limit")
    at = ts_or_now(as_of, "as_of")
    if program:
        require_program(db, program)
    return Report(["member_id", "name", "program", "tier", "balance", "value", "currency"],
                  _valued(db, sql.top_balances(db, at, program, limit)), ["balance", "value"])


def _valued(db, rows):
    values: dict = {}
    for r in rows:
        code = r["program_code"]
        if code not in values:
            p = require_program(db, code)
            values[code] = (p.point_value, p.currency)
        pv, cur = values[code]
        yield {"member_id": r["member_id"], "name": r["name"], "program": code, "tier": r["tier"],
               "balance": r["balance"], "value": money(r["balance"] * pv, cur), "currency": cur}


def expiring(db, within: int = 30, min_points: int = 1, program: str | None = None,
             as_of: str | None = None) -> Report:
    """Members with points in lots expiring within `within` days, as they stand at --as-of."""
    if within <= 0:
        raise InputError("days must be positive", field="within")
    at = ts_or_now(as_of, "as_of")
    if program:
        require_program(db, program)
    rows = (r | {"expires_on": r["first_expiry"][:10]}
            for r in job_sql.expiring(db, at, shift(at, within), program, min_points))
    # name, email, points and expires_on are what a mail merge needs ("your 300 points expire on ...")
    return Report(["member_id", "name", "email", "program_code", "points", "lots", "first_expiry", "expires_on"], rows,
                  ["points", "lots"])


def expiring_total(db, within: int = 30, min_points: int = 1, program: str | None = None,
                   as_of: str | None = None) -> tuple[int, int]:
    """How many members `expiring` lists and the points they have expiring (checked as it is)."""
    at = ts_or_now(as_of, "as_of")
    return job_sql.expiring_total(db, at, shift(at, within), program, min_points)


@dataclass(frozen=True)
class Outstanding:
    """A program's unexpired points at a moment, and the part expiring within 30 and 90 days."""

    members: int
    points: int
    expiring_30d: int
    expiring_90d: int


def outstanding(db, at: str, program: str | None = None) -> dict[str, Outstanding]:
    found = sql.liability(db, at, shift(at, 30), shift(at, 90), program)
    return {r["program"]: Outstanding(r["members"], r["points"], r["expiring_soon"], r["expiring_later"])
            for r in found}


def liability(db, program: str | None = None, as_of: str | None = None) -> Report:
    """Outstanding unexpired points per program at --as-of, their currency value, and the
    part expiring within 30 and 90 days."""
    at = ts_or_now(as_of, "as_of")
    found = outstanding(db, at, program)
    rows = []
    for code in codes(db, program):
        p = require_program(db, code)
        o = found.get(code) or Outstanding(0, 0, 0, 0)
        rows.append({"program": code, "members": o.members, "points": o.points,
                     "value": money(o.points * p.point_value, p.currency), "expiring_30d": o.expiring_30d,
                     "value_30d": money(o.expiring_30d * p.point_value, p.currency), "expiring_90d": o.expiring_90d,
                     "value_90d": money(o.expiring_90d * p.point_value, p.currency), "currency": p.currency})
    return Report(["program", "members", "points", "value", "expiring_30d", "value_30d", "expiring_90d",
                   "value_90d", "currency"], rows,
                  ["members", "points", "value", "expiring_30d", "value_30d", "expiring_90d", "value_90d"])
