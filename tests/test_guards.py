"""Nothing an operator types destroys the ledger (issue 17, items 1, 4, 5, 6).

- No command writes onto the ledger, its -wal/-shm, or one of its own inputs, however the
  path is spelled; existing files are overwritten only with --force; exports and rejects
  are private (0600).
- Only init and demo make a ledger: every other command refuses an empty or foreign file
  and leaves it byte for byte as it was.
- Full disks, unreadable configuration, unwritable directories, far dates and huge
  numbers end in one line, never a traceback.
- Read-only files and directories, and another writer holding the lock, are named as such.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from commands import CASES, CREATORS, NO_LEDGER, fill, foreign, ledger
from conftest import Cli, clean_env

BIN = Path(sys.executable).parent
EXE = str(BIN / "loyaltyctl")
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("guards")
    ledger(directory)
    return directory


@pytest.fixture
def world(base, tmp_path, monkeypatch) -> tuple[Cli, Path]:
    for f in base.iterdir():
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path / "ledger.db"), tmp_path


def files_of(path: Path) -> dict[str, bytes]:
    """The file's bytes and its journal's, and which files lie beside it (a -shm is an index of
    the WAL that readers update: only its presence counts)."""
    return {p.name: b"" if p.name.endswith("-shm") else p.read_bytes()
            for p in sorted(path.parent.glob(path.name + "*"))}


# --- 1. output paths ------------------------------------------------------------------------

WRITERS = {
    "export -o": lambda out, d: ["export", "members", "-o", out],
    "import transactions --rejects": lambda out, d: ["import", "transactions", d / "txns.csv", "--rejects", out],
    "import members --rejects": lambda out, d: ["import", "members", d / "members.csv", "--rejects", out],
    "import nps --rejects": lambda out, d: ["import", "nps", d / "nps.csv", "--rejects", out],
    "backup": lambda out, d: ["backup", out, "--force"],
}


def _ledger_aliases(c: Cli, d: Path) -> dict[str, Path]:
    (d / "link.db").symlink_to(c.db)
    os.link(c.db, d / "hard.db")
    (d / "sub").mkdir()
    return {"the ledger": c.db, "its WAL": Path(f"{c.db}-wal"), "its shared memory": Path(f"{c.db}-shm"),
            "a symlink to it": d / "link.db", "a hard link to it": d / "hard.db",
            "a roundabout spelling": d / "sub" / ".." / "ledger.db"}


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_no_command_writes_onto_the_ledger_or_its_journal(world, writer):
    c, d = world
    for what, target in _ledger_aliases(c, d).items():
        before = files_of(c.db)
        err = c.fail(*WRITERS[writer](target, d), "--force")
        assert "choose another file" in err and "the ledger" in err, (what, err)
        assert files_of(c.db) == before, what


@pytest.mark.parametrize("writer", [w for w in sorted(WRITERS) if "rejects" in w])
def test_rejects_never_overwrite_the_file_being_imported(world, writer):
    c, d = world
    source = WRITERS[writer]("x", d)[2]
    (d / "alias.csv").symlink_to(source)
    text = source.read_text()
    for target in (source, d / "alias.csv"):
        err = c.fail(*WRITERS[writer](target, d), "--force")
        assert f"the input file {source}" in err
        assert source.read_text() == text


def test_restore_refuses_the_backup_as_its_own_target(world):
    c, d = world
    backup = Cli(d / "backup.db")
    before = files_of(backup.db)
    assert "choose another file" in backup.fail("restore", str(d / "backup.db"), "--force")
    assert files_of(backup.db) == before


@pytest.mark.parametrize("writer", ["export -o", "import transactions --rejects", "import members --rejects",
                                    "import nps --rejects", "backup"])
def test_an_existing_file_is_kept_without_force_and_outputs_are_private(world, writer):
    c, d = world
    out = d / "out.file"
    out.write_bytes(b"keep me\n")
    out.chmod(0o644)
    args = [a for a in WRITERS[writer](out, d) if a != "--force"]
    err = c.fail(*args)
    assert "already exists" in err and "--force" in err
    assert out.read_bytes() == b"keep me\n"
    c(*args, "--force", ok=None)
    assert out.read_bytes() != b"keep me\n" and out.stat().st_mode & 0o777 == 0o600
    out.unlink()
    c(*args, ok=None)
    assert out.stat().st_mode & 0o777 == 0o600


def test_export_to_stdout_devices_and_pipes_needs_no_force(world):
    c, _ = world
    assert c("export", "members", "-o", "-").stdout.startswith("member_id,")
    assert c("export", "members", "-o", os.devnull).stderr.startswith("exported 2 members rows")


# --- 4. only init and demo make a ledger ------------------------------------------------------


def _not_ledgers(d: Path) -> dict[str, Path]:
    made = {"an empty file": d / "empty.db", "a text file": d / "text.db"}
    made["an empty file"].write_bytes(b"")
    made["a text file"].write_text("member_id,name\nM1,Ada\n")
    for version in (0, 1, 4, 5, 6, 99):
        made[f"another program's SQLite file (user_version {version})"] = foreign(d / f"f{version}.db", version)
    wal = foreign(d / "fwal.db", 2)
    conn = sqlite3.connect(wal)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    made["another program's SQLite file in WAL mode"] = wal
    empty_sqlite = d / "blank.db"
    sqlite3.connect(empty_sqlite).execute("VACUUM").connection.close()
    made["an SQLite file without tables"] = empty_sqlite
    return made


@pytest.mark.parametrize("name", sorted(set(CASES) - CREATORS - NO_LEDGER))
def test_a_file_that_is_not_a_ledger_is_refused_byte_for_byte_untouched(world, name):
    c, d = world
    for what, path in _not_ledgers(d).items():
        if name == "restore" and what in ("an empty file", "an SQLite file without tables"):
            continue  # restore fills an empty file as it creates a missing one (say, a truncated ledger)
        before = files_of(path)
        err = Cli(path).fail(*fill(CASES[name][0], db=path, dir=d, foreign=path))
        assert "not a loyaltyctl ledger" in err or "is empty" in err, (what, err)
        assert files_of(path) == before, what  # same bytes, no -wal/-shm/-journal left beside it


@pytest.mark.parametrize("creator", sorted(CREATORS))
def test_init_and_demo_make_a_ledger_of_an_empty_file_but_refuse_a_foreign_one(tmp_path, creator):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    Cli(empty)(creator)
    assert Cli(empty).json("verify")["ok"]
    other = foreign(tmp_path / "other.db", 0)
    before = files_of(other)
    assert "not a loyaltyctl ledger" in Cli(other).fail(creator)
    assert files_of(other) == before


def test_a_ledger_from_before_the_identity_is_recognised_and_stamped(tmp_path):
    old = tmp_path / "old.db"
    shutil.copy(FIXTURES / "v1.db", old)
    old.chmod(0o600)
    Cli(old)("member", "list")
    conn = sqlite3.connect(old)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x4C594C54
    assert conn.execute("SELECT value FROM loyaltyctl_meta WHERE key = 'format'").fetchone() == ("loyaltyctl ledger",)
    conn.close()


# --- 5. no tracebacks -------------------------------------------------------------------------


def _restricted() -> list[str]:
    """A command prefix that makes permissions bite: as root, drop the capabilities that bypass
    them (setpriv); as anyone else, nothing. Skips when that is not possible here."""
    if os.geteuid() != 0:
        return []
    caps = "-dac_override,-dac_read_search,-fowner,-chown"
    prefix = ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]
    if shutil.which("setpriv") is None or subprocess.run([*prefix, "true"], capture_output=True).returncode:
        pytest.skip("running as root without a way to drop the capabilities that bypass file permissions")
    return prefix


def run(args, cwd: Path, restricted: bool = False, **env) -> subprocess.CompletedProcess:
    full = clean_env(HOME=str(cwd), XDG_CONFIG_HOME=str(cwd / "xdg"), **env)
    return subprocess.run([*(_restricted() if restricted else []), EXE, *map(str, args)], cwd=cwd, env=full,
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)


def one_line(result, code: int = 1) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    err = result.stderr.strip()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("Error: "), err
    return err


def test_an_unreadable_config_directory_is_one_line(tmp_path):
    config = tmp_path / "xdg" / "loyaltyctl"
    config.mkdir(parents=True)
    (config / "loyaltyctl.toml").write_text('db = "x.db"\n')
    config.chmod(0)
    try:
        err = one_line(run(["member", "list"], tmp_path, restricted=True))
    finally:
        config.chmod(0o755)
    assert "cannot read configuration" in err and "Permission denied" in err


def test_init_in_an_unwritable_directory_is_one_line(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    err = one_line(run(["--db", locked / "l.db", "init"], tmp_path, restricted=True))
    assert "cannot create database" in err and not (locked / "l.db").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("args", [["export", "ledger", "-o", "/dev/full"], ["export", "ledger"],
                                  ["member", "show", "M1"], ["report", "tiers"], ["history", "M1", "-f", "json"],
                                  ["program", "list", "-f", "csv"]])
def test_a_full_disk_is_one_line(base, tmp_path, args):
    shutil.copy(base / "ledger.db", tmp_path / "ledger.db")
    env = clean_env(LOYALTYCTL_DB=str(tmp_path / "ledger.db"))
    with open("/dev/full", "w") as full:
        result = subprocess.run([EXE, *args], stdout=full, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    err = one_line(subprocess.CompletedProcess(args, result.returncode, "", result.stderr))
    assert "No space left on device" in err


HUGE = "9" * 5000
FAR = "9999-12-31T23:59:59Z"


@pytest.mark.parametrize("args", [
    ["member", "show", "M1", "--as-of", FAR], ["earn", "M1", "--amount", "5", "--at", FAR],
    ["report", "liability", "--as-of", "9999-12-31"], ["report", "expiring", "--as-of", "9999-12-31"],
    ["report", "at-risk", "--as-of", "9999-12-31"], ["report", "roi", "--since", "0001-01-01"],
    ["report", "churn", "--until", FAR], ["expire", "--as-of", FAR], ["tiers", "review", "--as-of", FAR],
    ["report", "expiring", "--within", "3000000"], ["report", "expiring", "--within", HUGE],
    ["report", "balances", "--limit", "99999999999999999999"], ["report", "balances", "--limit", HUGE],
    ["report", "expiring", "--min-points", HUGE], ["redeem", "M1", "--points", HUGE],
    ["adjust", "M1", "--points", "-" + HUGE, "--reason", "x"], ["nps", "record", "M1", "--score", HUGE],
    ["earn", "M1", "--amount", HUGE], ["report", "at-risk", "--factor", HUGE], ["report", "roi", "--cost", HUGE],
    ["member", "list", "--as-of", "x" * 100_000],
], ids=lambda a: " ".join(a)[:60])
def test_far_dates_and_huge_numbers_are_usage_errors_that_do_not_echo_them(world, args):
    c, _ = world
    before = files_of(c.db)
    err = c.usage(*args)
    assert len(err) < 200, err
    assert files_of(c.db) == before


# --- 6. read-only files, leftover journals, locks, CSV formulas -------------------------------


def test_reads_work_in_a_read_only_directory_and_writes_say_why_not(base, tmp_path):
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    shutil.copy(base / "ledger.db", shelf / "ledger.db")
    shelf.chmod(0o555)
    db = shelf / "ledger.db"
    try:
        for args in (["member", "show", "M1"], ["report", "balances"], ["verify"], ["export", "ledger"],
                     ["program", "list"]):
            result = run(["--db", db, *args], tmp_path, restricted=True)
            assert result.returncode == 0 and result.stderr == "", (args, result.stderr)
        err = one_line(run(["--db", db, "earn", "M1", "--amount", "5"], tmp_path, restricted=True))
        assert "is read-only" in err and str(shelf) in err and "attempt to write" not in err
        assert sorted(p.name for p in shelf.iterdir()) == ["ledger.db"]
    finally:
        shelf.chmod(0o755)


def test_a_read_only_ledger_says_read_only(base, tmp_path):
    db = tmp_path / "ledger.db"
    shutil.copy(base / "ledger.db", db)
    db.chmod(0o444)
    before = files_of(db)
    err = one_line(run(["--db", db, "earn", "M1", "--amount", "5"], tmp_path, restricted=True))
    assert "is read-only" in err and "restore a backup" not in err
    assert run(["--db", db, "member", "show", "M1"], tmp_path, restricted=True).returncode == 0
    assert files_of(db) == before


@pytest.mark.parametrize("leftover", ["-wal", "-shm"])
def test_a_leftover_journal_file_that_keeps_the_ledger_read_only_is_named(base, tmp_path, leftover):
    db = tmp_path / "ledger.db"
    shutil.copy(base / "ledger.db", db)
    stale = Path(f"{db}{leftover}")
    stale.write_bytes(b"")
    if os.geteuid() == 0:
        os.chown(stale, 65534, 65534)  # left by another user (say, a cron job's)
    stale.chmod(0o444)
    err = one_line(run(["--db", db, "earn", "M1", "--amount", "5"], tmp_path, restricted=True))
    assert f"{stale} is not writable" in err and "do not delete it" in err


def test_waiting_for_another_writer_says_so(world, monkeypatch):
    from loyaltyctl.store import waits

    c, _ = world
    monkeypatch.setattr(waits, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(c.db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        err = c.fail("earn", "M1", "--amount", "5")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "another loyaltyctl process is writing" in err and "restore a backup" not in err


def test_csv_cells_hiding_a_formula_behind_spaces_or_a_newline_are_neutralised(world):
    c, _ = world
    conn = sqlite3.connect(c.db)
    with conn:  # data already stored (input rules may refuse such names today)
        conn.execute("UPDATE members SET name = ? WHERE member_id = 'M1'", ("\n=HYPERLINK(\"http://x\")",))
        conn.execute("UPDATE members SET name = ? WHERE member_id = 'M2'", ("  +1+2",))
    conn.close()
    import csv
    import io

    rows = {r["member_id"]: r["name"] for r in csv.DictReader(io.StringIO(c("export", "members").stdout))}
    assert rows == {"M1": "'\n=HYPERLINK(\"http://x\")", "M2": "'  +1+2"}


def test_backup_is_one_file_and_restore_reads_it_from_a_read_only_place_leaving_nothing(base, tmp_path):
    shelf = tmp_path / "shelf"
    shelf.mkdir()
    shutil.copy(base / "ledger.db", tmp_path / "ledger.db")
    assert run(["--db", tmp_path / "ledger.db", "backup", shelf / "b.db"], tmp_path).returncode == 0
    assert sorted(p.name for p in shelf.iterdir()) == ["b.db"]
    shelf.chmod(0o555)
    try:
        result = run(["--db", tmp_path / "restored.db", "restore", shelf / "b.db"], tmp_path, restricted=True)
        assert result.returncode == 0, result.stderr
        assert sorted(p.name for p in shelf.iterdir()) == ["b.db"]
    finally:
        shelf.chmod(0o755)
    assert Cli(tmp_path / "restored.db").json("member", "show", "M1", "--as-of", "2026-06-01")["balance"] == 100
