"""What SQLite and PostgreSQL spell differently. Every other SQL text in the store is
written in the subset both accept; these functions return the few pieces that are not.

Timestamps are stored as text, 'YYYY-MM-DDTHH:MM:SSZ' (UTC), which both compare in time
order; these helpers do the arithmetic on them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

_TS = "%Y-%m-%dT%H:%M:%SZ"
_PG_TS = 'YYYY-MM-DD"T"HH24:MI:SS"Z"'


@dataclass(frozen=True)
class Dialect:
    """What SQLite and PostgreSQL spell differently (epoch seconds, dates, hints)."""

    name: str

    def epoch(self, expr: str) -> str:
        """Seconds since 1970 of a stored timestamp."""
        if self.name == "sqlite":
            return f"CAST(strftime('%s', {expr}) AS BIGINT)"
        return f"CAST(EXTRACT(EPOCH FROM CAST({expr} AS TIMESTAMPTZ)) AS BIGINT)"

    def from_epoch(self, expr: str) -> str:
        """The stored timestamp of seconds since 1970."""
        if self.name == "sqlite":
            return f"strftime('{_TS}', {expr}, 'unixepoch')"
        return f"to_char(to_timestamp({expr}) AT TIME ZONE 'UTC', '{_PG_TS}')"

    def add_days(self, expr: str, days: str) -> str:
        """A stored timestamp moved by a whole number of days (an SQL integer expression)."""
        if self.name == "sqlite":
            return f"strftime('{_TS}', {expr}, ({days}) || ' days')"
        return (f"to_char((CAST({expr} AS TIMESTAMPTZ) AT TIME ZONE 'UTC') + make_interval(days => CAST({days} AS INT)),"
                f" '{_PG_TS}')")

    def least(self, a: str, b: str) -> str:
        return f"min({a}, {b})" if self.name == "sqlite" else f"LEAST({a}, {b})"

    def ids(self, param: str) -> str:
        """A set of integers passed as one parameter (see values())."""
        if self.name == "sqlite":
            return f"(SELECT value FROM json_each(:{param}))"
        return f"(SELECT j.value FROM unnest(CAST(:{param} AS BIGINT[])) AS j(value))"

    def texts(self, param: str) -> str:
        """A set of strings passed as one parameter (see values())."""
        if self.name == "sqlite":
            return f"(SELECT value FROM json_each(:{param}))"
        return f"(SELECT j.value FROM unnest(CAST(:{param} AS TEXT[])) AS j(value))"

    def values(self, items):
        """The parameter for ids() and texts(): JSON text for SQLite; for PostgreSQL an array,
        whose length the planner sees (a JSON set counts as 100 rows to it, so looking up one
        member's rows read whole tables: anonymous sales by txn_id, refunds by purchase)."""
        return json.dumps(list(items)) if self.name == "sqlite" else list(items)

    def not_indexed(self) -> str:
        """Planner hint: read the table rather than an index (SQLite only)."""
        return "NOT INDEXED" if self.name == "sqlite" else ""

    def indexed_by(self, index: str) -> str:
        return f"INDEXED BY {index}" if self.name == "sqlite" else ""

    def cross_join(self) -> str:
        """SQLite's CROSS JOIN keeps its planner to the join order written; PostgreSQL plans freely."""
        return "CROSS JOIN" if self.name == "sqlite" else "JOIN"

    def or_fail(self) -> str:
        """SQLite's OR FAIL spares a statement journal where the caller rolls back anyway."""
        return "OR FAIL" if self.name == "sqlite" else ""

    def for_update(self) -> str:
        """Lock the rows read for a write that depends on them (SQLite: the write lock does)."""
        return "" if self.name == "sqlite" else "FOR UPDATE"

    def serial_key(self) -> str:
        """A temporary table's key numbered 1, 2, ... in insertion order."""
        return "INTEGER PRIMARY KEY" if self.name == "sqlite" else "BIGSERIAL PRIMARY KEY"

    def unary_plus(self) -> str:
        """SQLite's '+column' keeps the planner off an index on it; PostgreSQL needs no hint."""
        return "+" if self.name == "sqlite" else ""


SQLITE = Dialect("sqlite")
POSTGRES = Dialect("postgresql")

_TOKEN = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"])*\"|::|:[A-Za-z_][A-Za-z0-9_]*|\?|%|[^'\":?%]+|.", re.S)


def insert_sql(table: str, columns) -> str:
    """An INSERT of one row into `table`, with ? placeholders (both backends' executemany take them)."""
    return f'INSERT INTO "{table}" ({", ".join(columns)}) VALUES ({", ".join("?" * len(columns))})'


@lru_cache(maxsize=2048)
def to_pyformat(sql: str) -> str:
    """SQLite's :name and ? placeholders as psycopg's %(name)s and %s, outside quoted text
    (a to_char pattern's 'HH24:MI' is text, not a parameter); literal % doubled."""
    out = []
    for token in _TOKEN.findall(sql):
        if token.startswith(("'", '"')):
            out.append(token.replace("%", "%%"))
        elif token == "?":
            out.append("%s")
        elif token == "%":
            out.append("%%")
        elif token.startswith(":") and token != "::":
            out.append(f"%({token[1:]})s")
        else:
            out.append(token)
    return "".join(out)
