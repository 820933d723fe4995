"""Benchmark of `loyaltyctl import transactions` against a raw csv + sqlite3 baseline.

    /work/venv/bin/python tests/benchmarks/bench_import.py            # 1,000,000 rows
    /work/venv/bin/python tests/benchmarks/bench_import.py --rows 100000

Generates a deterministic CSV of purchase/redeem rows over rows/10 members of the
tiered `coffee` program (expiry after 365 days), enrolls the members (untimed),
then times, each as a subprocess on a fresh database:
  - the raw baseline: stdlib csv + sqlite3.executemany into a plain table with a
    unique txn_id index (WAL, synchronous=NORMAL, commits every 2000 rows);
  - the import itself (end to end: process start, parsing, rules, ledger writes);
  - the same import again (every row a duplicate).
  - the ledger-write floor: the rows that import wrote (entries, lots, lot moves, tier
    changes) copied with INSERT ... SELECT into the database as it was before the import,
    committing every 16,000 entries (as the import does): what SQLite alone needs to store them in this schema
    with its indexes, with no parsing or rules at all.
Prints rows/s, the ratio to the baseline, and the peak RSS of each import process."""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "loyaltyctl" / "programs" / "coffee.yaml"
COLUMNS = ["txn_id", "member_id", "kind", "occurred_at", "amount", "points"]


def generate(path: Path, rows: int, members: int, seed: int = 20261123) -> None:
    """Purchases (about 85%) and redemptions a member can afford, in time order over ~230 days."""
    rng = random.Random(seed)
    start = datetime(2026, 1, 2, tzinfo=timezone.utc)
    step = timedelta(seconds=max(1, int(230 * 86400 / rows)))
    earned = [0] * members  # a lower bound of each member's points (rate 1, multiplier >= 1)
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(COLUMNS)
        at = start
        for i in range(rows):
            m = rng.randrange(members)
            ts = at.strftime("%Y-%m-%dT%H:%M:%SZ")
            if earned[m] >= 50 and rng.random() < 0.15:
                pts = rng.randrange(10, min(earned[m], 200) + 1)
                earned[m] -= pts
                w.writerow([f"T{i:08d}", f"M{m:06d}", "redeem", ts, "", pts])
            else:
                amount = rng.randrange(100, 9000)  # pence
                earned[m] += amount // 100
                w.writerow([f"T{i:08d}", f"M{m:06d}", "purchase", ts, f"{amount // 100}.{amount % 100:02d}", ""])
            at += step


def members_csv(path: Path, members: int) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["member_id", "program", "joined_at"])
        for m in range(members):
            w.writerow([f"M{m:06d}", "coffee", "2026-01-01T00:00:00Z"])


def raw_baseline(csv_path: Path, db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("CREATE TABLE t (txn_id TEXT NOT NULL, member_id TEXT, kind TEXT, occurred_at TEXT, amount TEXT, points TEXT)")
    conn.execute("CREATE UNIQUE INDEX t_txn ON t(txn_id)")
    with open(csv_path, newline="") as f:
        reader = csv.reader(f)
        next(reader)
        batch = []
        for row in reader:
            batch.append(row)
            if len(batch) == 2000:
                conn.execute("BEGIN")
                conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", batch)
                conn.execute("COMMIT")
                batch = []
        if batch:
            conn.execute("BEGIN")
            conn.executemany("INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)", batch)
            conn.execute("COMMIT")
    conn.close()


def write_floor(before: Path, imported: Path, batch: int = 16_000) -> float:
    """Seconds to copy the imported ledger rows into `before` (a copy of the pre-import
    database), batch by batch, with the pragmas the import uses."""
    conn = sqlite3.connect(before, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA cache_size = -32768")
    conn.execute("ATTACH ? AS src", (str(imported),))
    top = conn.execute("SELECT COALESCE(MAX(id), 0) FROM src.entries").fetchone()[0]
    start = time.perf_counter()
    for low in range(1, top + 1, batch):
        span = {"lo": low, "hi": low + batch - 1}
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO entries SELECT * FROM src.entries WHERE id BETWEEN :lo AND :hi", span)
        conn.execute("INSERT INTO lots SELECT * FROM src.lots WHERE entry_id BETWEEN :lo AND :hi", span)
        conn.execute("INSERT INTO lot_moves SELECT * FROM src.lot_moves WHERE entry_id BETWEEN :lo AND :hi", span)
        conn.execute("""UPDATE lots SET remaining = (SELECT s.remaining FROM src.lots s WHERE s.id = lots.id)
                        WHERE id IN (SELECT lot_id FROM src.lot_moves WHERE entry_id BETWEEN :lo AND :hi)""", span)
        conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")  # after the entries: a tier change cites the entry that made it
    conn.execute("""INSERT INTO tier_changes SELECT * FROM src.tier_changes
                    WHERE id > (SELECT COALESCE(MAX(id), 0) FROM main.tier_changes)""")
    conn.execute("COMMIT")
    conn.execute("""UPDATE enrollments SET (points_total, uncovered, tier) =
                        (SELECT s.points_total, s.uncovered, s.tier FROM src.enrollments s WHERE s.id = enrollments.id)""")
    seconds = time.perf_counter() - start
    conn.close()
    return seconds


def measured(cmd: list[str], env: dict) -> tuple[float, int, str]:
    """Run cmd through a fresh helper process so RUSAGE_CHILDREN is this command's alone;
    returns (seconds, peak RSS in bytes, stdout)."""
    helper = [sys.executable, __file__, "--child", json.dumps(cmd)]
    out = subprocess.run(helper, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}")
    info = json.loads(out.stdout.strip().splitlines()[-1])
    return info["seconds"], info["maxrss"], info["stdout"]


def child(cmd: list[str]) -> None:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if out.returncode not in (0,):
        print(out.stdout, out.stderr, file=sys.stderr)
        raise SystemExit(out.returncode)
    maxrss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"seconds": seconds, "maxrss": maxrss, "stdout": out.stdout}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--members", type=int, default=None, help="default: rows / 10")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(json.loads(args.child))
        return
    rows, members = args.rows, args.members or max(1, args.rows // 10)
    tmp = Path(tempfile.mkdtemp(prefix="bench-import-"))
    env = {**os.environ, "COLUMNS": "120"}
    env.pop("LOYALTYCTL_DB", None)
    data, people = tmp / "txns.csv", tmp / "members.csv"
    t = time.perf_counter()
    generate(data, rows, members)
    members_csv(people, members)
    print(f"generated {rows:,} rows over {members:,} members ({data.stat().st_size / 1e6:.1f} MB) "
          f"in {time.perf_counter() - t:.1f}s")

    db = tmp / "loyalty.db"
    cli = [sys.executable, "-m", "loyaltyctl", "--db", str(db)]
    subprocess.run([*cli, "init"], check=True, capture_output=True)
    subprocess.run([*cli, "program", "apply", str(PROGRAM)], check=True, capture_output=True)
    t = time.perf_counter()
    subprocess.run([*cli, "import", "members", str(people)], check=True, capture_output=True)
    print(f"enrolled {members:,} members in {time.perf_counter() - t:.1f}s (not timed below)")

    before = tmp / "before.db"
    subprocess.run([*cli, "verify"], check=True, capture_output=True)  # checkpoints the WAL into the file
    shutil.copy(db, before)

    raw_db = tmp / "raw.db"
    raw, raw_rss, _ = measured([sys.executable, __file__, "--raw", str(data), str(raw_db)], env)
    raw_rate = rows / raw
    print(f"raw csv+sqlite3 baseline: {raw:.2f}s  {raw_rate:,.0f} rows/s  peak RSS {raw_rss / 2**20:.0f} MB")

    cmd = [*cli, "import", "transactions", str(data), "--program", "coffee", "--format", "json"]
    first, rss1, out = measured(cmd, env)
    summary = json.loads(out)
    rate1 = rows / first
    print(f"import:    {first:.2f}s  {rate1:,.0f} rows/s  {first / raw:.1f}x raw  peak RSS {rss1 / 2**20:.0f} MB  "
          f"(applied {summary['applied']:,}, duplicates {summary['duplicates']:,}, rejected {summary['rejected']:,})")
    again, rss2, out = measured(cmd, env)
    summary = json.loads(out)
    rate2 = rows / again
    print(f"re-import: {again:.2f}s  {rate2:,.0f} rows/s  {again / raw:.1f}x raw  peak RSS {rss2 / 2**20:.0f} MB  "
          f"(applied {summary['applied']:,}, duplicates {summary['duplicates']:,}, rejected {summary['rejected']:,})")
    floor = write_floor(before, db)
    print(f"ledger-write floor: {floor:.2f}s  {rows / floor:,.0f} rows/s  {floor / raw:.1f}x raw "
          f"(the import's own rows copied with INSERT ... SELECT; the import takes {first / floor:.1f}x this)")
    print(f"targets: >= 100,000 rows/s [{'met' if rate1 >= 100_000 else 'NOT met'}], within 4x of raw "
          f"[{'met' if first / raw <= 4 else 'NOT met'}], peak RSS < 200 MB [{'met' if max(rss1, rss2) < 200 * 2**20 else 'NOT met'}], "
          f"re-import at least as fast [{'met' if rate2 >= rate1 else 'NOT met'}]")
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--raw":
        raw_baseline(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        main()
