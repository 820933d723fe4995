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
    from loyaltyctl.store import waits

    c = _enrolled(pg_schema.url)
    monkeypatch.setattr(waits, "BUSY_TIMEOUT_MS", 300)
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


# --- db copy -----------------------------------------------------------------------

AS_OF = "2026-06-01T00:00:00Z"
VIEWS = [("member", "list", "--as-of", AS_OF), ("history", "ALICE", "--as-of", AS_OF),
         ("history", "BOB", "--as-of", AS_OF), ("report", "liability", "--as-of", AS_OF),
         ("nps", "comments"), ("export", "ledger")]


def _ledger(c: Cli) -> Cli:
    """Members, earns (one a basket), a redemption, a refund, an expiry, a manual tier, NPS."""
    c("init")
    c("program", "apply", str(PROGRAMS / "coffee.yaml"))
    at = "--at", "2025-01-01T09:00:00Z"
    c("member", "enroll", "ALICE", "-p", "coffee", "--name", "Alice Smith", "--email", "alice@example.com", *at)
    c("member", "enroll", "BOB", "-p", "coffee", "--name", "Bob Jones", *at)
    c("earn", "BOB", "--amount", "80", "--txn", "B1", "--at", "2025-01-10T10:00:00Z")
    c("earn", "ALICE", "--amount", "200", "--txn", "A1", "--at", "2025-06-01T10:00:00Z")
    c("earn", "ALICE", "--line", "LATTE:2:3.40", "--line", "CAKE:1:2.60", "--txn", "A2", "--at", "2025-06-02T10:00:00Z")
    c("earn", "ALICE", "--amount", "400", "--txn", "A3", "--at", "2025-06-02T11:00:00Z")
    c("redeem", "ALICE", "--reward", "free_coffee", "--txn", "A4", "--at", "2025-06-03T10:00:00Z")
    c("refund", "A3", "--amount", "50", "--txn", "A5", "--at", "2025-06-04T10:00:00Z")
    c("tiers", "set", "BOB", "--tier", "Gold", "--reason", "VIP", "--until", "2027-01-01", *at)
    c("nps", "record", "ALICE", "--score", "9", "--comment", "lovely", "--response-id", "R1", *at)
    c("expire", "--as-of", "2026-01-15T00:00:00Z")
    return c


def _views(c: Cli) -> list[str]:
    return [c(*v, *(() if v[0] == "export" else ("--format", "json"))).stdout for v in VIEWS]


def test_db_copy_round_trip_sqlite_postgresql_sqlite(tmp_path, pg_schema):
    first = _ledger(Cli(tmp_path / "first.db"))
    before, source_bytes = _views(first), (tmp_path / "first.db").read_bytes()
    copied = first.json("db", "copy", str(first.db), pg_schema.url)
    assert copied["verified"] is True and (copied["entries"], copied["members"]) == (7, 2)
    assert (tmp_path / "first.db").read_bytes() == source_bytes  # the source is only read
    pg = Cli(pg_schema.url)
    assert _views(pg) == before
    # the copy's statistics are gathered at once: reports are planned with them from the start
    assert pg.sql("""SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = current_schema()
                     AND relname IN ('entries', 'lots', 'enrollments') AND last_analyze IS NOT NULL""") == [(3,)]
    out = first("db", "copy", pg_schema.url, str(tmp_path / "back.db")).stdout
    assert out.startswith(f"copied {pg_schema.url} to {tmp_path / 'back.db'}: 7 entries, 2 members, ") and "verified" in out
    back = Cli(tmp_path / "back.db")
    assert _views(back) == before
    assert back.json("verify")["ok"] and pg.json("verify")["ok"]
    assert (tmp_path / "back.db").stat().st_mode & 0o777 == 0o600
    # ids handed out next follow the copied ones, on both backends (sequences advanced)
    for c in (pg, back):
        c("member", "enroll", "CAROL", "-p", "coffee", "--at", "2025-07-01T09:00:00Z")
        c("earn", "ALICE", "--amount", "10", "--txn", "A9", "--at", "2025-07-01T10:00:00Z")
        c("nps", "record", "CAROL", "--score", "7", "--at", "2025-07-01T10:00:00Z")
        assert c.json("verify")["ok"]
    assert pg.sql("SELECT max(id) FROM entries") == back.sql("SELECT max(id) FROM entries")


def test_db_copy_between_two_sqlite_files_and_into_a_ledger_just_made_by_init(tmp_path):
    first = _ledger(Cli(tmp_path / "first.db"))
    empty = Cli(tmp_path / "empty.db")
    empty("init")
    out = first("db", "copy", str(first.db), str(empty.db)).stdout
    assert "7 entries, 2 members" in out
    assert _views(empty) == _views(first)
    assert empty.sql("SELECT name, next_id FROM sequences ORDER BY name") == [
        (t, first.sql(f"SELECT max(id) + 1 FROM {t}")[0][0]) for t in ("enrollments", "entries", "lots")]


def test_db_copy_refuses_a_target_with_data_and_leaves_it_untouched(tmp_path):
    first = _ledger(Cli(tmp_path / "first.db"))
    other = Cli(tmp_path / "other.db")
    other("init")
    other("program", "apply", str(PROGRAMS / "coffee.yaml"))  # a program is data
    dump, raw = other.dump(), (tmp_path / "other.db").read_bytes()
    err = first.fail("db", "copy", str(first.db), str(other.db))
    assert "already holds a ledger with data" in err
    assert other.dump() == dump and (tmp_path / "other.db").read_bytes() == raw
    foreign = tmp_path / "foreign.db"
    foreign.write_bytes(b"not a database at all" * 50)
    assert "not a loyaltyctl ledger" in first.fail("db", "copy", str(first.db), str(foreign))
    assert foreign.read_bytes() == b"not a database at all" * 50


def test_db_copy_refuses_a_postgresql_target_with_data(tmp_path, pg_schema):
    first = _ledger(Cli(tmp_path / "first.db"))
    target = _enrolled(pg_schema.url)
    dump = target.dump()
    assert "already holds a ledger with data" in first.fail("db", "copy", str(first.db), pg_schema.url)
    assert target.dump() == dump


def test_db_copy_refuses_the_same_ledger(tmp_path, pg_schema):
    first = _ledger(Cli(tmp_path / "first.db"))
    (tmp_path / "link.db").symlink_to(tmp_path / "first.db")
    dump = first.dump()
    for target in (first.db, tmp_path / "link.db"):
        assert "same ledger" in first.fail("db", "copy", str(first.db), str(target))
    assert first.dump() == dump
    pg = _enrolled(pg_schema.url)
    dump = pg.dump()
    same = pg_schema.url.replace("127.0.0.1", "localhost") if "127.0.0.1" in pg_schema.url else pg_schema.url
    for target in (pg_schema.url, same):
        assert "same ledger" in pg.fail("db", "copy", pg_schema.url, target)
    assert pg.dump() == dump


def test_db_copy_refuses_an_old_source_without_writing_to_it(tmp_path):
    import shutil

    old = tmp_path / "old.db"
    shutil.copy(PROGRAMS.parent.parent / "tests" / "fixtures" / "v1.db", old)
    raw = old.read_bytes()
    err = Cli(old).fail("db", "copy", str(old), str(tmp_path / "new.db"))
    assert "older than this loyaltyctl's" in err and f"loyaltyctl --db {old} verify" in err
    assert old.read_bytes() == raw and not (tmp_path / "new.db").exists()
    missing = Cli(tmp_path / "missing.db").fail("db", "copy", str(tmp_path / "missing.db"), str(tmp_path / "n.db"))
    assert "not a loyaltyctl ledger" in missing and not (tmp_path / "n.db").exists()


def test_a_copy_that_fails_verification_writes_nothing(tmp_path):
    first = _ledger(Cli(tmp_path / "first.db"))
    first.execute("UPDATE enrollments SET points_total = 1 WHERE member_id = 'ALICE'")
    err = first.fail("db", "copy", str(first.db), str(tmp_path / "new.db"))
    assert "fails verification (enrollment_totals" in err
    assert not (tmp_path / "new.db").exists()


# --- backup and restore on PostgreSQL -------------------------------------------------


def _pg_bin() -> str:
    """The directory of pg_dump and pg_restore: on PATH, else Debian's /usr/lib/postgresql/*/bin."""
    import glob
    import os
    import shutil

    found = shutil.which("pg_dump")
    if found and shutil.which("pg_restore"):
        return os.path.dirname(found)
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_dump"), key=lambda p: int(p.split("/")[-3]))
    if not dirs:
        pytest.skip("pg_dump is not installed")
    return os.path.dirname(dirs[-1])


def test_backup_and_restore_wrap_pg_dump_and_pg_restore(pg_schema, tmp_path, monkeypatch):
    import os

    monkeypatch.setenv("PATH", f"{_pg_bin()}{os.pathsep}{os.environ['PATH']}")
    c = _ledger(Cli(pg_schema.url))
    before = _views(c)
    dest = tmp_path / "ledger.dump"
    out = c("backup", str(dest)).stdout
    assert out.strip() == f"backed up to {dest} (7 entries, 2 members), verified"
    assert dest.stat().st_mode & 0o777 == 0o600
    raw = dest.read_bytes()
    assert "already exists" in c.fail("backup", str(dest)) and dest.read_bytes() == raw
    c("earn", "ALICE", "--amount", "1000", "--txn", "A9", "--at", "2025-07-01T10:00:00Z")
    dump = c.dump()
    assert "--force" in c.fail("restore", str(dest))
    assert c.dump() == dump
    out = c("restore", str(dest), "--force").stdout
    assert out.strip() == f"restored {pg_schema.url} from {dest} (7 entries, 2 members)"
    assert _views(c) == before and c.json("verify")["ok"]
    c("earn", "ALICE", "--amount", "1000", "--txn", "A9", "--at", "2025-07-01T10:00:00Z")  # gone, and ids go on
    c("backup", str(dest), "--force")
    assert dest.read_bytes() != raw and dest.stat().st_mode & 0o777 == 0o600


def test_restore_on_postgresql_refuses_a_foreign_schema_and_a_non_archive(pg_schema, pg_server, tmp_path, monkeypatch):
    import os

    import pg
    from conftest import PG

    monkeypatch.setenv("PATH", f"{_pg_bin()}{os.pathsep}{os.environ['PATH']}")
    c = _ledger(Cli(pg_schema.url))
    dest = tmp_path / "ledger.dump"
    c("backup", str(dest))
    with pg.temporary_schema(pg_server, PG.url) as other:
        err = Cli(other.url).fail("restore", str(dest))
        assert f"holds the ledger of schema {pg_schema.name!r}" in err and f"search_path is {pg_schema.name}" in err
        assert pg.dump(other.url) == ""
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"not an archive")
    dump = c.dump()
    assert "not appear to be a valid archive" in c.fail("restore", str(junk), "--force")
    assert c.dump() == dump


def test_backup_and_restore_on_postgresql_without_the_tools_give_the_command(pg_schema, tmp_path, monkeypatch):
    c = _ledger(Cli(pg_schema.url))
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    dest = tmp_path / "ledger.dump"
    err = c.fail("backup", str(dest))
    assert "pg_dump is not on PATH" in err
    assert f"run: (umask 077 && pg_dump --format=custom --schema={pg_schema.name} -f {dest} " in err
    assert not dest.exists()
    dest.write_bytes(b"an archive")
    dump = c.dump()
    err = c.fail("restore", str(dest), "--force")
    assert "pg_restore is not on PATH" in err and "run: pg_restore --single-transaction" in err
    assert err.endswith(f"{dest} && loyaltyctl --db '{pg_schema.url}' verify")
    assert c.dump() == dump and dest.read_bytes() == b"an archive"


# --- member erase on PostgreSQL -------------------------------------------------------


def test_erase_on_postgresql_vacuums_what_it_changed_and_says_what_stays(pg_schema):
    c = _ledger(Cli(pg_schema.url))
    c("adjust", "BOB", "--points", "5", "--reason", "for Alice Smith's friend", "--txn", "J1",
      "--at", "2025-07-01T10:00:00Z")
    result = c.json("member", "erase", "ALICE", "--yes")
    assert (result["status"], result["comments"], result["quotes"]) == ("erased", 1, 2)  # J1's reason and copy
    assert result["scrubbed"] is False and result["vacuumed"] == ["entries", "members", "nps_responses"]
    assert "Alice Smith" not in c.dump() and "alice@example.com" not in c.dump()
    err = c("member", "erase", "BOB", "--yes").stderr
    assert "PostgreSQL keeps the old text in its WAL" in err and "VACUUM (FULL)" in err
    assert "VACUUM (FULL)" in " ".join(c("member", "erase", "--help").stdout.split())
    assert c.json("verify")["ok"]
