"""Reliability: concurrent operators, SIGKILL at random points, backups under load, hostile input."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import PROGRAMS, Cli, ago

WORKER = Path(__file__).resolve().parent / "fixtures" / "worker.py"
ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def _verify(path: Path) -> dict:
    from loyaltyctl.app import admin as maintenance
    from loyaltyctl.store.connection import open_db

    db = open_db(str(path))
    try:
        return maintenance.verify(db)
    finally:
        db.close()


def _copy_db(src: Path, dest: Path) -> None:
    """Copy a database with its WAL contents (a plain file copy can miss recent commits)."""
    a, b = sqlite3.connect(src), sqlite3.connect(dest)
    try:
        a.backup(b)
    finally:
        a.close()
        b.close()


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _clean_failure(r: dict) -> bool:
    """exit 1 with one `Error:` line that is a business error, never a lock or a crash."""
    err = r["stderr"].strip()
    return (r["exit"] == 1 and r["crash"] is None and err.startswith("Error: ") and len(err.splitlines()) == 1
            and "locked" not in err and "database error" not in err and "Traceback" not in err)


# --- concurrency -------------------------------------------------------------------

MEMBERS = [f"M{i}" for i in range(5)]


@pytest.mark.slow
def test_eight_concurrent_operators_never_lock_overdraw_or_lose_points(coffee, tmp_path):
    for m in MEMBERS:
        coffee("member", "enroll", m, "-p", "coffee", "--at", ago(700))
        # an old lot past its expiry (365 days; for the expire job to record meanwhile) and a live one
        coffee("earn", m, "--amount", "300", "--txn", f"old-{m}", "--at", ago(500))
        coffee("earn", m, "--amount", "100", "--txn", f"live-{m}", "--at", ago(60))
    start = {r["member_id"]: r["balance"] for r in coffee.json("member", "list", "-p", "coffee")}
    assert start == dict.fromkeys(MEMBERS, 100)  # the 300 expired 135 days ago, whether or not `expire` ran

    procs, outs = [], []
    for w in range(8):
        out = tmp_path / f"worker{w}.jsonl"
        outs.append(out)
        procs.append(subprocess.Popen([sys.executable, str(WORKER), "mixed", coffee.location, str(w), "300",
                                       ",".join(MEMBERS), str(out)], env=ENV))
    time.sleep(1.0)
    jobs = []
    for name, args in (("expire", ["expire", "--format", "json"]), ("review", ["tiers", "review", "--format", "json"])):
        out = tmp_path / f"{name}.jsonl"
        jobs.append(out)
        procs.append(subprocess.Popen([sys.executable, str(WORKER), "run", coffee.location, str(out), *args], env=ENV))
    for p in procs:
        assert p.wait(timeout=600) == 0

    for out in jobs:
        [r] = _lines(out)
        assert r["exit"] == 0 and r["crash"] is None, r
    assert json.loads(_lines(jobs[0])[0]["stdout"])["lots"] == 5  # the five old lots

    results = [r for out in outs for r in _lines(out)]
    assert len(results) == 2400
    expected = dict(start)
    counts: dict = defaultdict(int)
    for r in results:
        kind = r["args"][0]
        if r["exit"] == 0:
            data = json.loads(r["stdout"])
            assert data["status"] == "recorded"
            expected[data["member_id"]] += data["points"]
            counts[kind, "ok"] += 1
        else:
            assert _clean_failure(r), r
            counts[kind, "refused"] += 1
    # every kind of command both succeeded and was refused (overdraws, over-refunds) along the way
    assert all(counts[k, "ok"] > 100 for k in ("earn", "redeem", "refund")), counts
    assert counts["redeem", "refused"] > 0 and counts["refund", "refused"] > 0, counts

    final = {r["member_id"]: r["balance"] for r in coffee.json("member", "list", "-p", "coffee")}
    assert final == expected
    report = _verify(coffee.location)
    assert report["ok"], report["violations"][:5]
    # every expiry is recorded, so the balance now is exactly the sum of the member's entries
    sums = dict(coffee.sql(
        "SELECT n.member_id, SUM(e.points) FROM entries e JOIN enrollments n ON n.id = e.enrollment_id GROUP BY 1"))
    assert sums == final
    # replay in commit order (per member, ids are taken after the member's row is locked, so
    # they follow commit order on both backends): no redemption took more than the member had
    running = dict(start)
    for member, kind, points, uncovered in coffee.sql(
            """SELECT n.member_id, e.kind, e.points, e.uncovered FROM entries e
               JOIN enrollments n ON n.id = e.enrollment_id WHERE e.txn_id LIKE 'w%' ORDER BY e.id"""):
        if kind == "redeem":
            assert running[member] >= -points and uncovered == 0
        running[member] += points
    assert running == final


# --- a long import shares the ledger ---------------------------------------------------------


def _fair(directory: Path, rows: int):
    sys.path.insert(0, str(WORKER.parent))
    import fair

    outcome = fair.run(directory, rows)
    print(outcome.summary())  # the figures (pytest -s shows them; tests/benchmarks/bench_fair.py too)
    return fair, outcome


@pytest.mark.slow
@pytest.mark.parametrize("rows", [10_000, 200_000])
def test_a_long_import_lets_operators_and_cron_in_between_its_chunks(tmp_path, rows):
    fair, outcome = _fair(tmp_path, rows)
    assert outcome.failures == []  # no "database is locked", no other error
    assert (outcome.imported["applied"], outcome.imported["rejected"]) == (rows, 0)
    assert len(outcome.earn_s) >= fair.LOOPS * 3, outcome.earn_s  # they did earn during the import
    assert outcome.percentile(0.99) < 3.0, outcome.summary()
    report = _verify(tmp_path / "shared.db")
    assert report["ok"], report["violations"][:3]
    conn = sqlite3.connect(tmp_path / "shared.db")
    expired = conn.execute("SELECT count(*) FROM entries WHERE kind = 'expire'").fetchone()[0]
    writers = conn.execute("SELECT count(*) FROM loyaltyctl_meta WHERE key LIKE 'writer:%'").fetchone()[0]
    conn.close()
    assert (expired, writers) == (5, 0)  # the old lots of M0-M4; the import withdrew its notice


@pytest.mark.slow
def test_a_writer_kept_waiting_is_told_which_import_holds_the_ledger(tmp_path, monkeypatch):
    """An --all-or-nothing import is one transaction: a command that waits longer than the
    busy timeout says it is that import, not just "locked"."""
    from loyaltyctl.store import waits

    sys.path.insert(0, str(WORKER.parent))
    import fair

    db, data = fair.ledger(tmp_path, 30_000)
    importer = subprocess.Popen([sys.executable, "-m", "loyaltyctl", "--db", str(db), "import", "transactions",
                                 str(data), "--all-or-nothing"], env=fair.env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _announced(db):
            time.sleep(0.05)
        time.sleep(0.5)  # its transaction has begun
        monkeypatch.setattr(waits, "BUSY_TIMEOUT_MS", 300)
        err = Cli(db).fail("earn", "M1", "--amount", "5")
    finally:
        importer.wait(timeout=600)
    assert "another loyaltyctl process is writing to it (import transactions" in err, err
    assert f"transactions.csv --all-or-nothing, pid {importer.pid}, since " in err and "waited 0.3 s" in err, err
    assert not _announced(db)


def _announced(db: Path) -> bool:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return bool(conn.execute("SELECT count(*) FROM loyaltyctl_meta WHERE key LIKE 'writer:%'").fetchone()[0])
    finally:
        conn.close()


# --- crashes ---------------------------------------------------------------------

CRASH_MEMBERS = 40


def _transactions_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    lines = ["txn_id,member_id,kind,occurred_at,amount,points,ref_txn_id"]
    purchases: list[tuple[str, str, int]] = []
    for i in range(rows):
        member = f"C{rng.randrange(CRASH_MEMBERS):03d}"
        at = f"2025-{1 + i * 12 // rows:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"
        roll = rng.random()
        if roll < 0.7 or not purchases:
            amount = rng.randint(5, 300)
            lines.append(f"T{i},{member},purchase,{at},{amount}.{rng.randint(0, 99):02d},,")
            purchases.append((f"T{i}", member, amount))
        elif roll < 0.9:
            lines.append(f"T{i},{member},redeem,{at},,{rng.randint(50, 400)},")
        else:
            ref, owner, amount = rng.choice(purchases)
            lines.append(f"T{i},{owner},refund,{at},{rng.randint(1, amount)},,{ref}")
    path.write_text("\n".join(lines) + "\n")


def _canonical(path: Path) -> dict:
    """The ledger's content, ignoring when things were recorded and job bookkeeping."""
    conn = sqlite3.connect(path)
    try:
        q = {
            "entries": """SELECT e.txn_id, n.member_id, n.program_code, e.kind, e.points, e.uncovered, e.amount_e4,
                                 e.effective_at FROM entries e JOIN enrollments n ON n.id = e.enrollment_id
                          ORDER BY e.txn_id""",
            "moves": """SELECT e.txn_id, l.id, m.points, m.effective_at FROM lot_moves m
                        JOIN entries e ON e.id = m.entry_id JOIN lots l ON l.id = m.lot_id ORDER BY e.txn_id, l.id""",
            "lots": "SELECT id, points, remaining, earned_at, expires_at FROM lots ORDER BY id",
            "tiers": """SELECT n.member_id, t.tier, t.previous, t.source, t.effective_at FROM tier_changes t
                        JOIN enrollments n ON n.id = t.enrollment_id ORDER BY n.member_id, t.effective_at, t.id""",
            "enrollments": "SELECT member_id, program_code, points_total, uncovered, tier FROM enrollments ORDER BY 1, 2",
        }
        return {k: conn.execute(sql).fetchall() for k, sql in q.items()}
    finally:
        conn.close()


def _run_in_process(path: Path, *args: str) -> None:
    from typer.testing import CliRunner

    from loyaltyctl.cli import app

    r = CliRunner().invoke(app, ["--db", str(path), *args])
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code in (0, 1) and "Traceback" not in r.stderr, r.stderr
    return r


@pytest.fixture(scope="module")
def crash_setup(tmp_path_factory):
    """base.db: members enrolled; imported.db: + the CSV; expired.db / reviewed.db: + each job,
    all done uninterrupted; the crash trials must end exactly there."""
    d = tmp_path_factory.mktemp("crash")
    base = d / "base.db"
    c = Cli(base)
    c("init")
    c("program", "apply", str(PROGRAMS / "coffee.yaml"))
    members = d / "members.csv"
    members.write_text("member_id,program,joined_at\n" + "".join(
        f"C{i:03d},coffee,2024-12-01T00:00:00Z\n" for i in range(CRASH_MEMBERS)))
    c("import", "members", str(members))
    csv = d / "txns.csv"
    _transactions_csv(csv, 5000)
    paths = {"base": base, "csv": csv}
    for name, src, args in (("imported", "base", ["import", "transactions", str(csv), "--program", "coffee"]),
                            ("expired", "imported", ["expire", "--as-of", "2026-06-15T00:00:00Z"]),
                            ("reviewed", "imported", ["tiers", "review", "--as-of", "2026-01-01T00:00:00Z"])):
        dest = d / f"{name}.db"
        _copy_db(paths[src], dest)
        _run_in_process(dest, *args)
        paths[name] = dest
        scratch = d / f"{name}-timing.db"  # how long the whole process takes, start-up included
        _copy_db(paths[src], scratch)
        start = time.monotonic()
        subprocess.run([sys.executable, "-m", "loyaltyctl", "--db", str(scratch), *args], env=ENV,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        paths[name + "_seconds"] = time.monotonic() - start
    for k in ("base", "imported", "expired", "reviewed"):
        assert _verify(paths[k])["ok"]
    return paths


def _kill_trial(setup, tmp_path: Path, trial: int, src: str, want: str, args: list[str], rng) -> str:
    """Start the command in its own process, SIGKILL it after a random delay, check the file
    verifies, re-run the command to completion and compare with the uninterrupted run."""
    db = tmp_path / f"trial{trial}.db"
    _copy_db(setup[src], db)
    proc = subprocess.Popen([sys.executable, "-m", "loyaltyctl", "--db", str(db), *args], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # spread the kills over the process's life, most of them where the work (and the commits) happen
    wall = setup[want + "_seconds"]
    time.sleep(rng.uniform(0.6 * wall, 1.1 * wall))
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = _verify(db)
    assert killed["ok"], (trial, args, killed["violations"][:3])
    state = _canonical(db)
    stage = "none" if state == _canonical(setup[src]) else "all" if state == _canonical(setup[want]) else "partial"
    _run_in_process(db, *args)
    assert _canonical(db) == _canonical(setup[want]), (trial, args, stage)
    assert _verify(db)["ok"]
    _run_in_process(db, *args)  # and a third run changes nothing
    assert _canonical(db) == _canonical(setup[want])
    return stage


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_completes_exactly_once(crash_setup, tmp_path):
    rng = random.Random(2026)
    trials = ([("base", "imported", ["import", "transactions", str(crash_setup["csv"]), "--program", "coffee"])] * 12
              + [("imported", "expired", ["expire", "--as-of", "2026-06-15T00:00:00Z"])] * 5
              + [("imported", "reviewed", ["tiers", "review", "--as-of", "2026-01-01T00:00:00Z"])] * 5)
    stages = defaultdict(list)
    for i, (src, want, args) in enumerate(trials):
        stages[args[0]].append(_kill_trial(crash_setup, tmp_path, i, src, want, args, rng))
    print(dict(stages), {k: round(v, 2) for k, v in crash_setup.items() if k.endswith("_seconds")})
    # the import commits in batches: some kills landed between its commits (mid-run)
    assert "partial" in stages["import"], stages
    # jobs are one transaction each: a kill leaves all or nothing, never a part
    assert "partial" not in stages["expire"] + stages["tiers"], stages


# --- backups under load ----------------------------------------------------------------


@pytest.mark.slow
def test_backup_while_another_process_keeps_earning(coffee, tmp_path):
    for m in MEMBERS:
        coffee("member", "enroll", m, "-p", "coffee", "--at", "2025-01-01T00:00:00Z")
    stop = tmp_path / "stop"
    out = tmp_path / "loop.jsonl"
    writer = subprocess.Popen([sys.executable, str(WORKER), "earn-loop", str(coffee.db), str(stop), str(out)], env=ENV)
    try:
        deadline = time.monotonic() + 30
        while (not out.exists() or len(out.read_text().splitlines()) < 20) and time.monotonic() < deadline:
            time.sleep(0.1)
        backups = []
        for i in range(3):
            dest = tmp_path / f"backup{i}.db"
            r = coffee("backup", str(dest))
            assert "verified" in r.stdout
            backups.append(dest)
            time.sleep(0.3)
    finally:
        stop.write_text("stop")
        assert writer.wait(timeout=60) == 0
    earns = _lines(out)
    assert all(r["exit"] == 0 and r["crash"] is None for r in earns), [r for r in earns if r["exit"]][:3]
    counts = []
    for dest in backups:
        assert dest.stat().st_mode & 0o777 == 0o600
        report = _verify(dest)
        assert report["ok"], report["violations"][:3]
        conn = sqlite3.connect(dest)
        n = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
        # internally consistent: each balance is the sum of its entries, 9 points (7.50 x 1.25 ... or 7) each
        totals = conn.execute("""SELECT n.points_total, (SELECT SUM(points) FROM entries e WHERE e.enrollment_id = n.id),
                                        (SELECT SUM(remaining) FROM lots l WHERE l.enrollment_id = n.id)
                                 FROM enrollments n""").fetchall()
        conn.close()
        assert all(t[0] == (t[1] or 0) == (t[2] or 0) for t in totals), totals
        counts.append(n)
    # the copies are snapshots taken while writes went on: they grow, and the live db kept going past them
    assert counts == sorted(counts) and counts[0] >= 20 and counts[-1] > counts[0]
    assert len(earns) > counts[-1]
    live = {r["member_id"]: r["balance"] for r in coffee.json("member", "list")}
    assert sum(live.values()) == sum(json.loads(r["stdout"])["points"] for r in earns)


# --- hostile input -----------------------------------------------------------------------


def test_yaml_alias_bomb_is_refused_quickly(cli, tmp_path):
    bomb = tmp_path / "bomb.yaml"
    levels = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 10)]
    bomb.write_text("\n".join(levels) + "\ncode: x\n")
    start = time.monotonic()
    err = cli.fail("program", "validate", str(bomb))
    assert time.monotonic() - start < 1.0
    assert "bomb.yaml:2:" in err and "aliases are not allowed" in err
    dump = cli.dump()
    cli.fail("program", "apply", str(bomb))
    assert cli.dump() == dump


def test_yaml_python_tags_are_not_executed(cli, tmp_path):
    evil = tmp_path / "evil.yaml"
    marker = tmp_path / "pwned"
    evil.write_text(f'code: !!python/object/apply:os.system ["touch {marker}"]\nname: x\n')
    err = cli.fail("program", "validate", str(evil))
    assert "evil.yaml:1:" in err
    assert not marker.exists()


def test_oversized_fields_and_control_characters_are_rejected_per_row(coffee, tmp_path):
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", "2025-01-01T00:00:00Z")
    f = tmp_path / "t.csv"
    f.write_text("txn_id,member_id,kind,occurred_at,amount,reason\n"
                 "T1,M1,purchase,2025-02-01T00:00:00Z,10,\n"
                 f"T2,M1,purchase,2025-02-01T00:00:00Z,10,{'x' * 10_001}\n"
                 "T3,M1,purchase,2025-02-01T00:00:00Z,10\x1b[31m,\n"
                 "T4\x00,M1,purchase,2025-02-01T00:00:00Z,10,\n"
                 "T5,M1,purchase,2025-02-01T00:00:00Z,20,\n")
    r = coffee("import", "transactions", str(f), "--format", "json", ok=False)
    assert r.exit_code == 1 and "Traceback" not in r.stderr
    data = json.loads(r.stdout)
    assert (data["applied"], data["rejected"]) == (2, 3)
    assert [(x["line"], x["error"].split(":")[0]) for x in data["rejects"]] == [(3, "reason"), (4, "amount"), (5, "txn_id")]
    assert "longer than 10,000" in data["rejects"][0]["error"]
    assert "control character (U+001B)" in data["rejects"][1]["error"]
    assert coffee.json("member", "show", "M1", "--as-of", "2025-03-01")["balance"] == 30


def test_sql_looking_input_is_stored_as_data(coffee):
    evil = "x'); DROP TABLE entries; --"
    coffee("member", "enroll", evil, "-p", "coffee", "--name", "Robert'); DROP TABLE members;--",
           "--at", "2025-01-01T00:00:00Z")
    coffee("earn", evil, "--amount", "10", "--txn", "' OR '1'='1", "--at", "2025-02-01T00:00:00Z")
    shown = coffee.json("member", "show", evil, "--as-of", "2025-03-01")
    assert shown["member_id"] == evil and shown["name"].startswith("Robert'") and shown["balance"] == 10
    assert coffee.json("explain", "' OR '1'='1")["txn_id"] == "' OR '1'='1"
    assert "unknown" in coffee.fail("member", "show", "' OR 1=1 --")
    assert coffee.json("verify")["ok"]
