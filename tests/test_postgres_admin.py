"""Admin on PostgreSQL (issue 16): lock waits, `db copy` between backends, backup/restore
through pg_dump/pg_restore, what `member erase` can scrub. Tests that need a server take
`pg_schema` and skip without one (tests/pg.py)."""

from __future__ import annotations

import pytest

from conftest import PROGRAMS, Cli


def _enrolled(url: str) -> Cli:
    c = Cli(url)
    c("init")
    c("program", "apply", str(PROGRAMS / "coffee.yaml"))
    c("member", "enroll", "M1", "-p", "coffee", "--at", "2025-01-01T09:00:00Z")
    return c


# --- lock waits ------------------------------------------------------------------


def test_a_lock_wait_on_postgresql_ends_in_one_line(pg_schema, monkeypatch):
    from loyaltyctl.store import connection

    c = _enrolled(pg_schema.url)
    monkeypatch.setattr(connection, "BUSY_TIMEOUT_MS", 300)
    holder = pg_schema.connect()  # not autocommit: its transaction stays open
    try:
        holder.execute("SELECT id FROM enrollments WHERE member_id = 'M1' FOR UPDATE")
        err = c.fail("earn", "M1", "--amount", "5", "--txn", "T1")
    finally:
        holder.rollback()
        holder.close()
    assert "is locked: another loyaltyctl process is writing to it (waited 0.3 s)" in err, err
    assert c.sql("SELECT count(*) FROM entries") == [(0,)]
    c("earn", "M1", "--amount", "5", "--txn", "T1")  # once the lock is gone
