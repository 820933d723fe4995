"""Admin commands: verify catches corruption, backup/restore, member erase, schema migrations."""

from __future__ import annotations

import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest

from conftest import PROGRAMS, Cli

FIXTURES = Path(__file__).resolve().parent / "fixtures"
sys.path.insert(0, str(FIXTURES))
AS_OF = "2026-06-01T00:00:00Z"


@pytest.fixture
def ledger(cli) -> Cli:
    """Two coffee members with earns, a redemption, a refund, an expiry and an NPS comment.

    ALICE: 200 (lot 1) + 400 (lot 2) on Bronze -> 600, Silver from the second purchase;
    redeems 150 from lot 1 (soonest expiry); refund of 50 of the 400 purchase claws back 50
    -> balance 400. BOB: 80 earned 2025-01-10, expired 2026-01-10 -> 0."""
    cli("program", "apply", str(PROGRAMS / "coffee.yaml"))
    cli("member", "enroll", "ALICE", "-p", "coffee", "--name", "Alice Smith", "--email", "alice@example.com",
        "--at", "2025-01-01T09:00:00Z")
    cli("member", "enroll", "BOB", "-p", "coffee", "--name", "Bob Jones", "--email", "bob@example.com",
        "--at", "2025-01-01T09:00:00Z")
    cli("earn", "BOB", "--amount", "80", "--txn", "B1", "--at", "2025-01-10T10:00:00Z")
    cli("earn", "ALICE", "--amount", "200", "--txn", "A1", "--at", "2025-06-01T10:00:00Z")
    cli("earn", "ALICE", "--amount", "400", "--txn", "A2", "--at", "2025-06-02T10:00:00Z")
    cli("redeem", "ALICE", "--reward", "free_coffee", "--txn", "A3", "--at", "2025-06-03T10:00:00Z")
    cli("refund", "A2", "--amount", "50", "--txn", "A4", "--at", "2025-06-04T10:00:00Z")
    cli("expire", "--as-of", "2026-01-15T00:00:00Z")
    cli.sql("""INSERT INTO nps_responses (response_id, member_id, program_code, score, comment, answered_at,
               recorded_at) VALUES ('R1', 'ALICE', 'coffee', 3, 'my neighbour Carol Price told me',
               '2025-06-05T00:00:00Z', '2025-06-05T00:00:00Z')""")
    return cli


def balances(cli: Cli) -> dict:
    return {r["member_id"]: r["balance"] for r in cli.json("member", "list", "--as-of", AS_OF)}


# --- verify --------------------------------------------------------------------


def test_verify_ok_on_a_healthy_ledger(ledger):
    assert balances(ledger) == {"ALICE": 400, "BOB": 0}
    out = ledger("verify").stdout
    assert out.strip() == f"OK: {ledger.db} (6 entries, 3 lots, 2 enrollments)"
    data = ledger.json("verify")
    assert data["ok"] is True and data["violations"] == []
    assert data["entries"] == 6  # B1, A1, A2, A3, A4, expire of B1's lot
    assert data["lots"] == 3


def _corrupt(ledger: Cli, tmp_path: Path, sql: str, foreign_keys: bool = True) -> Cli:
    """A corrupted copy of the ledger (the original stays healthy); on PostgreSQL, the ledger's
    own schema is corrupted, as a copy would need a second server-side schema."""
    if ledger.postgres:
        if not foreign_keys:
            pytest.skip("PostgreSQL enforces every foreign key: a dangling reference cannot be written")
        assert ledger.execute(sql) == 1, f"the corruption must touch exactly one row: {sql}"
        return ledger
    copy = tmp_path / "corrupt.db"
    src = sqlite3.connect(ledger.db)
    dst = sqlite3.connect(copy)
    src.backup(dst)
    src.close()
    if not foreign_keys:
        dst.execute("PRAGMA foreign_keys = OFF")
    with dst:
        cur = dst.execute(sql)
        assert cur.rowcount == 1, f"the corruption must touch exactly one row: {sql}"
    dst.close()
    return Cli(copy)


CORRUPTIONS = {
    "lot remainder bumped": ("UPDATE lots SET remaining = remaining + 1 WHERE id = 2", {"lot_remaining"}),
    "lot move deleted": (
        "DELETE FROM lot_moves WHERE entry_id = (SELECT id FROM entries WHERE txn_id = 'A3')",
        {"lot_remaining", "entry_balance"},
    ),
    "cached balance changed": (
        "UPDATE enrollments SET points_total = points_total + 10 WHERE member_id = 'ALICE'",
        {"enrollment_totals"},
    ),
    "cached tier changed": ("UPDATE enrollments SET tier = 'Gold' WHERE member_id = 'BOB'", {"tier_cache"}),
    "redemption overdrew": (
        "UPDATE entries SET uncovered = -5, points = points - 5 WHERE txn_id = 'A3'",
        {"redemption_overdraw", "enrollment_totals"},
    ),
    "lot used after expiry": (
        "UPDATE lot_moves SET effective_at = '2026-06-03T10:00:00Z' "
        "WHERE entry_id = (SELECT id FROM entries WHERE txn_id = 'A3')",
        {"move_after_expiry", "move_time"},
    ),
    "entry cites a missing rule": ("UPDATE entries SET rule_index = 7 WHERE txn_id = 'A1'", {"entry_rule"}),
    "dangling lot move": (
        "INSERT INTO lot_moves (lot_id, entry_id, points, effective_at) VALUES (999, 1, 0, '2025-06-01T10:00:00Z')",
        {"foreign_key_check"},
    ),
}


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_verify_names_the_broken_invariant(ledger, tmp_path, name):
    sql, expected = CORRUPTIONS[name]
    bad = _corrupt(ledger, tmp_path, sql, foreign_keys=name != "dangling lot move")
    result = bad("verify", ok=False)
    assert result.exit_code == 1
    named = {line.split(":", 1)[0] for line in result.stdout.splitlines()}
    assert named == expected, result.stdout
    data = json.loads(bad("verify", "--format", "json", ok=False).stdout)
    assert data["ok"] is False and {v["check"] for v in data["violations"]} == expected
    if not ledger.postgres:
        assert ledger("verify").stdout.startswith("OK: ")  # the original is untouched


def test_verify_reports_sqlite_corruption_without_a_traceback(ledger, tmp_path):
    conn = sqlite3.connect(ledger.db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'entries'").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    data = bytearray(ledger.db.read_bytes())
    start = (root - 1) * size
    data[start:start + 40] = b"\x55" * 40  # scribble over the b-tree header of the entries table
    torn = Cli(tmp_path / "torn.db")
    torn.db.write_bytes(bytes(data))
    result = torn("verify", ok=False)
    assert result.exit_code == 1 and "Traceback" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(line.startswith("integrity_check: ") for line in lines) and len(lines) <= 20
    # other commands on the damaged file: one clean line, no traceback
    assert "database disk image is malformed" in torn.fail("member", "list")
    err = torn.fail("backup", str(tmp_path / "b.db"))
    assert "backup" in err and not (tmp_path / "b.db").exists()


# --- backup and restore --------------------------------------------------------------


def test_backup_is_private_verified_and_refuses_to_overwrite(ledger, tmp_path):
    dest = tmp_path / "backup.db"
    out = ledger("backup", str(dest)).stdout
    assert "verified" in out and "6 entries" in out
    assert dest.stat().st_mode & 0o777 == 0o600
    assert balances(Cli(dest)) == {"ALICE": 400, "BOB": 0}
    ledger("earn", "ALICE", "--amount", "10", "--txn", "A5", "--at", "2025-07-01T10:00:00Z")
    before = dest.read_bytes()
    err = ledger.fail("backup", str(dest))
    assert "already exists" in err and "--force" in err
    assert dest.read_bytes() == before
    ledger("backup", str(dest), "--force")
    assert balances(Cli(dest))["ALICE"] == 412  # 10 x 1.25 (Silver) = 12.5 -> 12


def test_backup_of_a_corrupt_ledger_fails_verification(ledger, tmp_path):
    bad = _corrupt(ledger, tmp_path, "UPDATE enrollments SET points_total = 1 WHERE member_id = 'ALICE'")
    err = bad.fail("backup", str(tmp_path / "b.db"))
    assert "failed verification" in err and "enrollment_totals" in err
    assert not (tmp_path / "b.db").exists()


def test_restore_refuses_without_force_and_restores_with_it(ledger, tmp_path):
    dest = tmp_path / "backup.db"
    ledger("backup", str(dest))
    ledger("earn", "ALICE", "--amount", "1000", "--txn", "A9", "--at", "2025-07-01T10:00:00Z")
    assert balances(ledger)["ALICE"] == 1400 + 250  # 1000 x 1.25 (Silver) = 1250 more
    dump = ledger.dump()
    err = ledger.fail("restore", str(dest))
    assert "--force" in err
    assert ledger.dump() == dump
    out = ledger("restore", str(dest), "--force").stdout
    assert "restored" in out and "6 entries" in out
    assert balances(ledger) == {"ALICE": 400, "BOB": 0}
    assert ledger.json("verify")["ok"]
    assert ledger.db.stat().st_mode & 0o777 == 0o600
    # the restored ledger keeps working, and the txn recorded after the backup is gone
    ledger("earn", "ALICE", "--amount", "10", "--txn", "A9", "--at", "2025-07-01T10:00:00Z")


def test_restore_into_a_new_path_and_bad_sources(ledger, tmp_path):
    dest = tmp_path / "backup.db"
    ledger("backup", str(dest))
    fresh = Cli(tmp_path / "new.db")
    fresh("restore", str(dest))
    assert balances(fresh) == {"ALICE": 400, "BOB": 0}
    assert fresh.db.stat().st_mode & 0o777 == 0o600
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    dump = ledger.dump()
    assert "not a" in ledger.fail("restore", str(junk), "--force")
    assert "no such file" in ledger.fail("restore", str(tmp_path / "missing.db"), "--force")
    future = tmp_path / "future.db"
    shutil.copy(dest, future)
    conn = sqlite3.connect(future)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    assert "schema 99" in ledger.fail("restore", str(future), "--force")
    assert ledger.dump() == dump


# --- member data -----------------------------------------------------------------


def _raw_bytes(path: Path) -> bytes:
    out = b""
    for suffix in ("", "-wal", "-journal"):
        p = Path(str(path) + suffix)
        if p.exists():
            out += p.read_bytes()
    return out


def test_erase_removes_personal_data_and_keeps_totals(ledger):
    reports = [("member", "list", "--as-of", AS_OF), ("report", "balances", "--as-of", AS_OF),
               ("report", "tiers", "--as-of", AS_OF), ("history", "ALICE", "--as-of", AS_OF)]
    before = [ledger.json(*r) for r in reports]
    ledger_export = ledger("export", "ledger").stdout
    result = ledger.json("member", "erase", "ALICE")
    assert result["status"] == "erased" and result["comments"] == 1 and result["scrubbed"] is True
    shown = ledger.json("member", "show", "ALICE", "--as-of", AS_OF)
    assert shown["name"] == "[erased]" and shown["email"] == "[erased]"
    assert shown["balance"] == 400
    after = [ledger.json(*r) for r in reports]
    for b, a in zip(before, after):
        assert json.dumps(a).replace("[erased]", "Alice Smith") == json.dumps(b)
    assert ledger("export", "ledger").stdout == ledger_export
    assert ledger.json("verify")["ok"]
    conn = sqlite3.connect(ledger.db)
    assert conn.execute("SELECT comment, score FROM nps_responses").fetchall() == [("[erased]", 3)]
    conn.close()
    dump = ledger.dump()
    for secret in ("Alice Smith", "alice@example.com", "Carol Price"):
        assert secret not in dump
        assert secret.encode() not in _raw_bytes(ledger.db), f"{secret} still in the database file's bytes"
    assert "Bob Jones" in dump  # only the erased member
    assert ledger.json("member", "erase", "ALICE")["status"] == "already erased"
    assert "unknown member" in ledger.fail("member", "erase", "NOBODY")


def _ledger_bytes(path: Path) -> bytes:
    """The database file, its WAL and its shared-memory file, as raw bytes."""
    return b"".join(Path(f"{path}{suffix}").read_bytes() for suffix in ("", "-wal", "-shm")
                    if Path(f"{path}{suffix}").exists())


def test_erase_scrubs_every_copy_from_the_file_wal_and_shm(cli, tmp_path, monkeypatch):
    """Name, email and NPS comment as typed on the command line (with the JSON copies NPS answers
    and requests keep), quoted in reasons of the member's own and of others, recorded while
    an import checkpoints in job_runs: none of it survives anywhere in the ledger's files."""
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    cli("program", "apply", str(PROGRAMS / "coffee.yaml"))
    name, email, comment = "Zelda Quuxworth", "zelda.q@example.org", "the barista Yorrick was rude"
    at = "--at", "2026-02-01T10:00:00Z"
    cli("member", "enroll", "Z1", "-p", "coffee", "--name", name, "--email", email, *at)
    cli("member", "enroll", "Z2", "-p", "coffee", "--name", "Other Person", *at)
    cli("earn", "Z1", "--amount", "50", "--txn", "P1", *at)
    cli("adjust", "Z1", "--points", "5", "--reason", f"goodwill for {name.upper()}", "--txn", "A1", *at)
    cli("adjust", "Z2", "--points", "5", "--reason", f"referred by {name} <{email}>", "--txn", "A2", *at)
    cli("tiers", "set", "Z1", "--tier", "Gold", "--reason", f"VIP: {email}", "--until", "2031-01-01", *at)
    cli("nps", "record", "Z1", "--score", "3", "--comment", comment, "--response-id", "R1", *at)
    cli("nps", "record", "Z2", "--score", "9", "--comment", f"thanks to {name}", *at)
    bulk = tmp_path / "more.csv"
    bulk.write_text("txn_id,member_id,kind,occurred_at,points,reason\n"
                    f"B1,Z1,adjust,2026-02-02T10:00:00Z,3,{name} birthday\n")
    cli("import", "transactions", str(bulk))
    before = {m["member_id"]: m["balance"] for m in cli.json("member", "list")}
    assert all(v.encode() in _ledger_bytes(cli.db) for v in (name, email, comment))

    result = cli.json("member", "erase", "Z1", "--yes")
    assert (result["status"], result["comments"], result["scrubbed"]) == ("erased", 1, True)
    # reason and content of A1, A2 and B1, the tier's reason, Z2's comment and its copy
    assert result["quotes"] == 9
    raw = _ledger_bytes(cli.db)
    for secret in (name, email, comment, "Yorrick", name.upper(), name.split()[1]):
        assert secret.encode() not in raw, f"{secret!r} is still in the ledger's bytes"
    assert b"Other Person" in raw  # only what belongs to the erased member
    assert {m["member_id"]: m["balance"] for m in cli.json("member", "list")} == before
    assert cli.json("explain", "A2")["explanation"][0] == "manual adjustment: referred by [erased] <[erased]>"
    assert [r["comment"] for r in cli.json("nps", "comments")] == ["thanks to [erased]", "[erased]"]
    assert cli.json("verify")["ok"]
    # the answer's copy is gone, so recording it again cannot compare: it is a duplicate, nothing new
    again = cli.json("nps", "record", "Z1", "--score", "3", "--comment", comment, "--response-id", "R1", *at)
    assert again["status"] == "duplicate"
    assert comment.encode() not in _ledger_bytes(cli.db)


def test_a_backup_taken_before_the_erase_is_purged_as_the_readme_says(ledger, tmp_path):
    backup = tmp_path / "loyalty-2026-05-01.db"
    ledger("backup", str(backup))
    ledger("member", "erase", "ALICE", "--yes")
    assert b"Alice Smith" in backup.read_bytes()  # older backups still hold the data
    ledger("--db", str(backup), "member", "erase", "ALICE", "--yes")  # README: erase it there too
    for secret in (b"Alice Smith", b"alice@example.com", b"Carol Price"):
        assert secret not in _ledger_bytes(backup)
    assert ledger.json("--db", str(backup), "verify")["ok"]
    ledger("restore", str(backup), "--force")
    assert ledger.json("member", "show", "ALICE")["name"] == "[erased]"


def test_database_and_its_journal_files_are_private(ledger):
    assert ledger.db.stat().st_mode & 0o777 == 0o600
    wal = Path(str(ledger.db) + "-wal")
    if wal.exists():
        assert wal.stat().st_mode & 0o777 == 0o600


# --- schema migrations -------------------------------------------------------------


def _v1_copy(tmp_path: Path) -> Cli:
    dest = tmp_path / "old.db"
    shutil.copy(FIXTURES / "v1.db", dest)
    dest.chmod(0o600)
    return Cli(dest)


def _user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def test_v1_fixture_migrates_and_keeps_its_data(tmp_path):
    from loyaltyctl.store.connection import SCHEMA_VERSION
    from loyaltyctl.store.migrations import MIGRATIONS

    assert SCHEMA_VERSION >= 2 and SCHEMA_VERSION == len(MIGRATIONS)
    old = _v1_copy(tmp_path)
    assert _user_version(old.db) == 1
    shown = {(r["member_id"], r["program"]): r for r in old.json("member", "list", "--as-of", "2025-12-01")}
    assert _user_version(old.db) == SCHEMA_VERSION
    # the figures of tests/fixtures/make_v1_db.py: ALICE coffee 120 + 400 - 150 - 20 (refund of 20.50 of 120.50)
    assert {k: (r["balance"], r["tier"]) for k, r in shown.items()} == {
        ("ALICE", "coffee"): (350, "Silver"), ("ALICE", "books"): (33, None), ("BOB", "coffee"): (80, "Bronze")}
    assert old.json("verify")["ok"]
    conn = sqlite3.connect(old.db)
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    comments = conn.execute("SELECT response_id, comment FROM nps_responses ORDER BY response_id").fetchall()
    conn.close()
    assert "nps_member" in indexes  # the member-data migration
    assert comments == [("R1", "Alice loves the flat white"), ("R2", "queue too long")]
    # the migrated ledger works: idempotency keys recorded under v1 still hold
    assert old.json("earn", "ALICE", "-p", "coffee", "--amount", "400", "--txn", "A2",
                    "--at", "2025-03-01T10:00:00Z")["status"] == "duplicate"
    assert old.json("member", "erase", "ALICE")["comments"] == 1


def test_a_failing_migration_leaves_the_old_version_untouched(tmp_path, monkeypatch):
    from loyaltyctl.store import connection as dbmod

    old = _v1_copy(tmp_path)
    before = old.dump()
    broken = dbmod.MIGRATIONS + [["CREATE TABLE half_done (x INTEGER)", "CREATE TABLE oops ("]]
    monkeypatch.setattr(dbmod, "MIGRATIONS", broken)
    monkeypatch.setattr(dbmod, "SCHEMA_VERSION", len(broken))
    err = old.fail("member", "list")
    assert "cannot open database" in err
    assert _user_version(old.db) == 1
    assert old.dump() == before  # no earlier migration of the run was kept either


def test_a_newer_database_is_refused(tmp_path):
    old = _v1_copy(tmp_path)
    conn = sqlite3.connect(old.db)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    before = old.db.read_bytes()
    err = old.fail("member", "list")
    assert "schema version 99" in err and "upgrade loyaltyctl" in err
    assert old.db.read_bytes() == before


def test_a_foreign_sqlite_file_is_refused(tmp_path):
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE t (x)")
    conn.close()
    assert "not a loyaltyctl ledger" in Cli(other).fail("member", "list")


def test_the_v1_fixture_is_what_its_script_builds(tmp_path):
    """tests/fixtures/v1.db is what make_v1_db.py builds with the loyaltyctl of schema version 1."""
    import subprocess
    import sys

    from make_v1_db import V1_COMMIT

    root = FIXTURES.parent.parent
    if subprocess.run(["git", "-C", str(root), "cat-file", "-e", V1_COMMIT], capture_output=True).returncode:
        pytest.skip(f"git history with {V1_COMMIT} is not available (shallow clone?)")
    subprocess.run([sys.executable, str(FIXTURES / "make_v1_db.py"), str(tmp_path / "rebuilt.db")], check=True,
                   capture_output=True)
    sql = ["PRAGMA user_version", "SELECT txn_id, kind, points, uncovered, amount_e4, effective_at FROM entries ORDER BY 1",
           "SELECT points, remaining, earned_at, expires_at FROM lots ORDER BY id",
           "SELECT member_id, program_code, points_total, tier FROM enrollments ORDER BY 1, 2",
           "SELECT sql FROM sqlite_master ORDER BY name"]
    contents = []
    for path in (FIXTURES / "v1.db", tmp_path / "rebuilt.db"):
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        contents.append([conn.execute(q).fetchall() for q in sql])
        conn.close()
    assert contents[0] == contents[1]
    assert contents[0][0] == [(1,)]
