"""Benchmark of the nightly jobs: `expire` over a ledger of N earn lots (half past expiry)
and `tiers review` over its members, each against a plain-SQL floor measured in the same run.

    /work/venv/bin/python tests/benchmarks/bench_jobs.py [--lots 1000000] [--members 100000] [--keep DIR]

The ledger is generated with bulk INSERT ... SELECT in the shape the service writes (one earn
entry per lot, lots with earned_at/expires_at/remaining, an enroll tier change per member).
Targets: expire < 10 s for 1,000,000 lots; tiers review < 10 s for 100,000 members."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from loyaltyctl.app import jobs, programs  # noqa: E402
from loyaltyctl.store.connection import open_db  # noqa: E402

AS_OF = "2027-01-01T00:00:00Z"
FMT = "%Y-%m-%dT%H:%M:%SZ"


def build(path: str, lots: int, members: int) -> None:
    db = open_db(path, create=True)
    programs.apply(db, [str(ROOT / "loyaltyctl" / "programs" / "coffee.yaml")])
    vid = db.scalar("SELECT id FROM program_versions WHERE program_code = 'coffee'")
    t = time.perf_counter()
    with db.write():
        db.execute(
            """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :m)
               INSERT INTO members (member_id, name, email, created_at)
               SELECT printf('M%07d', i), 'Member ' || i, NULL, '2024-12-01T00:00:00Z' FROM n""",
            {"m": members},
        )
        db.execute(
            """INSERT INTO enrollments (id, member_id, program_code, joined_at, recorded_at, tier)
               SELECT rowid, member_id, 'coffee', '2024-12-01T00:00:00Z', '2024-12-01T00:00:00Z', 'Bronze' FROM members"""
        )
        db.execute(
            """INSERT INTO tier_changes (enrollment_id, tier, previous, source, reason, program_version_id,
                                         effective_at, recorded_at)
               SELECT id, 'Bronze', NULL, 'enroll', 'enrolled', :v, joined_at, joined_at FROM enrollments""",
            {"v": vid},
        )
        # Lot k belongs to member k % members; earned over the two years before AS_OF, so about
        # half of the lots are past their 365-day expiry. Amounts 5..84.99, 1 point per unit.
        db.execute(
            f"""WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < :lots - 1)
                INSERT INTO entries (id, txn_id, enrollment_id, kind, rule_kind, rule_index, program_version_id,
                                     points, uncovered, amount_e4, rate, tier, multiplier, content,
                                     effective_at, recorded_at)
                SELECT k + 1, 'B' || k, k % :m + 1, 'earn', 'spend', 0, :v, 5 + (k * 7919) % 80, 0,
                       (5 + (k * 7919) % 80) * 10000 + (k % 100) * 100, '1', 'Bronze', '1', NULL,
                       strftime('{FMT}', '2025-01-01T00:00:00Z', '+' || ((k * 104729) % 730) || ' days',
                                '+' || (k % 86400) || ' seconds'), '2025-01-01T00:00:00Z'
                FROM n""",
            {"lots": lots, "m": members, "v": vid},
        )
        db.execute(
            f"""INSERT INTO lots (enrollment_id, entry_id, points, earned_at, expires_at, remaining)
                SELECT enrollment_id, id, points, effective_at,
                       strftime('{FMT}', effective_at, '+365 days'), points FROM entries ORDER BY id"""
        )
        db.execute(
            """UPDATE enrollments SET points_total = (SELECT SUM(points) FROM entries e WHERE e.enrollment_id = enrollments.id)"""
        )
    with db.write():  # rows written behind the store's back: move its id sequences past them
        for table in ("entries", "lots", "enrollments"):
            db.execute(f"UPDATE sequences SET next_id = (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}) WHERE name = ?",
                       (table,))
    db.close()  # no ANALYZE: loyaltyctl never gathers planner statistics, so neither does its benchmark
    os.sync()  # time the jobs against a ledger at rest, not against the build's disk writes
    print(f"built {lots:,} lots over {members:,} members in {time.perf_counter() - t:.1f} s")


def floor_expire(db) -> float:
    """Plain SQL: copy the due lots and zero them, rolled back."""
    t = time.perf_counter()
    db.execute("BEGIN IMMEDIATE")
    db.execute("CREATE TEMP TABLE t (lot_id INTEGER, enrollment_id INTEGER, points INTEGER, expires_at TEXT)")
    db.execute("""INSERT INTO t SELECT id, enrollment_id, remaining, expires_at FROM lots
                  WHERE expires_at <= ? AND remaining > 0""", (AS_OF,))
    db.execute("UPDATE lots SET remaining = 0 WHERE expires_at <= ? AND remaining > 0", (AS_OF,))
    elapsed = time.perf_counter() - t
    db.execute("ROLLBACK")
    db.execute("DROP TABLE IF EXISTS temp.t")
    return elapsed


def floor_review(db) -> float:
    t = time.perf_counter()
    db.all("""SELECT enrollment_id, SUM(amount_e4) FROM entries
              WHERE kind = 'earn' AND effective_at > '2026-01-01T00:00:00Z' AND effective_at <= ?
              GROUP BY enrollment_id""", (AS_OF,))
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lots", type=int, default=1_000_000)
    ap.add_argument("--members", type=int, default=None, help="default: lots / 10")
    ap.add_argument("--keep", help="build the database in this directory and keep it")
    args = ap.parse_args()
    members = args.members or max(1, args.lots // 10)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_jobs_"))
    work.mkdir(parents=True, exist_ok=True)
    path = str(work / "bench.db")
    try:
        build(path, args.lots, members)
        db = open_db(path)
        due = db.scalar("SELECT count(*) FROM lots WHERE expires_at <= ? AND remaining > 0", (AS_OF,))
        f_exp = floor_expire(db)
        t = time.perf_counter()
        result = jobs.expire(db, AS_OF)
        t_exp = time.perf_counter() - t
        assert result["lots"] == due, (result["lots"], due)
        again = jobs.expire(db, AS_OF)
        assert again["lots"] == 0
        f_rev = floor_review(db)
        t = time.perf_counter()
        review = jobs.review(db, AS_OF)
        t_rev = time.perf_counter() - t
        print(f"expire:       {result['lots']:,} lots, {result['points']:,} points, {result['members']:,} members "
              f"in {t_exp:.2f} s ({result['lots'] / t_exp:,.0f} lots/s); plain SQL floor {f_exp:.2f} s; "
              f"ratio {t_exp / f_exp:.1f}x; target < 10 s: {'met' if t_exp < 10 else 'MISSED'}")
        print(f"tiers review: {members:,} members, {review['up']:,} up, {review['down']:,} down in {t_rev:.2f} s; "
              f"plain GROUP BY floor {f_rev:.2f} s; ratio {t_rev / f_rev:.1f}x; "
              f"target < 10 s: {'met' if t_rev < 10 else 'MISSED'}")
        db.close()
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
