"""Benchmark of the reports and NPS summaries on a large ledger, against a raw-sqlite3 scan
of the entries measured in the same run.

    /work/venv/bin/python tests/benchmarks/bench_reports.py [--rows 1000000] [--keep DIR]

The ledger is generated with bulk INSERT ... SELECT in the shape the service writes: --rows
entries of which 93% purchases (one lot each), 5% redemptions (a lot move each) and 2% partial
refunds (a claw-back move each, ref_entry_id to their purchase); --rows/10 members in the
coffee program with tier changes; --rows/50 anonymous sales; --rows/10 NPS responses.
Target: every report under 2 s at 1,000,000 rows, on SQLite and (--pg) on PostgreSQL."""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from loyaltyctl.app import programs  # noqa: E402
from loyaltyctl.reports import activity, nps, points, revenue, tiers  # noqa: E402
from loyaltyctl.store.connection import open_db  # noqa: E402
from loyaltyctl.store.derived import gaps_sql  # noqa: E402

AS_OF = "2027-01-01T00:00:00Z"
FMT = "%Y-%m-%dT%H:%M:%SZ"
# k-th purchase: member k % m, at a spread-out moment of the two years before AS_OF.
WHEN = f"strftime('{FMT}', '2025-01-01T00:00:00Z', '+' || ((k * 104729) % 730) || ' days', '+' || (k % 86400) || ' seconds')"


def build(path: str, rows: int) -> None:
    db = open_db(path, create=True)
    programs.apply(db, [str(ROOT / "loyaltyctl" / "programs" / "coffee.yaml")])
    vid = db.scalar("SELECT id FROM program_versions WHERE program_code = 'coffee'")
    members = max(rows // 10, 1)
    purchases, redemptions = rows * 93 // 100, rows * 5 // 100
    refunds = rows - purchases - redemptions
    p = {"m": members, "v": vid, "P": purchases, "R": redemptions, "F": refunds, "N": max(rows // 10, 1),
         "S": max(rows // 50, 1)}
    t = time.perf_counter()
    with db.write():
        db.execute(
            """WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :m)
               INSERT INTO members (member_id, name, email, account, created_at)
               SELECT printf('M%07d', i), 'Member ' || i, NULL, 'ACC' || (i % 500), '2024-12-01T00:00:00Z' FROM n""", p)
        db.execute(
            """INSERT INTO enrollments (id, member_id, program_code, joined_at, recorded_at, tier)
               SELECT rowid, member_id, 'coffee', '2024-12-01T00:00:00Z', '2024-12-01T00:00:00Z', 'Bronze' FROM members""")
        db.execute(
            """INSERT INTO tier_changes (enrollment_id, tier, previous, source, reason, program_version_id,
                                         effective_at, recorded_at)
               SELECT id, 'Bronze', NULL, 'enroll', 'enrolled', :v, joined_at, joined_at FROM enrollments""", p)
        db.execute(
            """INSERT INTO tier_changes (enrollment_id, tier, previous, source, reason, program_version_id,
                                         effective_at, recorded_at)
               SELECT id, CASE WHEN id % 7 = 0 THEN 'Gold' ELSE 'Silver' END, 'Bronze', 'earn', 'upgrade', :v,
                      '2025-09-01T00:00:00Z', '2025-09-01T00:00:00Z' FROM enrollments WHERE id % 3 = 0""", p)
        db.execute(
            f"""WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < :P - 1)
                INSERT INTO entries (id, txn_id, enrollment_id, kind, rule_kind, rule_index, program_version_id,
                                     points, uncovered, amount_e4, rate, tier, multiplier, content,
                                     effective_at, recorded_at)
                SELECT k + 1, 'B' || k, k % :m + 1, 'earn', 'spend', 0, :v, 5 + (k * 7919) % 80, 0,
                       (5 + (k * 7919) % 80) * 10000 + (k % 100) * 100, '1', 'Bronze', '1', NULL,
                       {WHEN}, '2025-01-01T00:00:00Z' FROM n""", p)
        db.execute(
            f"""INSERT INTO lots (id, enrollment_id, entry_id, points, earned_at, expires_at, remaining)
                SELECT id, enrollment_id, id, points, effective_at, strftime('{FMT}', effective_at, '+365 days'), points
                FROM entries ORDER BY id""")
        # Redemption j takes 3 points from purchase j's lot a day later; refund j gives back one
        # currency unit (one point) of purchase P-1-j two days later.
        db.execute(
            f"""WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < :R - 1)
                INSERT INTO entries (txn_id, enrollment_id, kind, rule_kind, program_version_id, points,
                                     effective_at, recorded_at, ref_entry_id)
                SELECT 'R' || k, k % :m + 1, 'redeem', 'redeem', :v, -3,
                       strftime('{FMT}', {WHEN}, '+1 days'), '2025-01-01T00:00:00Z', k + 1 FROM n""", p)
        db.execute(
            f"""WITH RECURSIVE n(j) AS (SELECT 0 UNION ALL SELECT j + 1 FROM n WHERE j < :F - 1)
                INSERT INTO entries (txn_id, enrollment_id, kind, rule_kind, rule_index, program_version_id, points,
                                     amount_e4, rate, tier, multiplier, ref_entry_id, effective_at, recorded_at)
                SELECT 'F' || j, e.enrollment_id, 'refund', 'spend', 0, :v, -1, -10000, '1', 'Bronze', '1', e.id,
                       strftime('{FMT}', e.effective_at, '+2 days'), '2025-01-01T00:00:00Z'
                FROM n JOIN entries e ON e.id = :P - j""", p)
        db.execute(
            """INSERT INTO lot_moves (lot_id, entry_id, points, effective_at)
               SELECT CASE WHEN kind = 'redeem' THEN ref_entry_id ELSE ref_entry_id END, id, points, effective_at
               FROM entries WHERE kind IN ('redeem', 'refund')""")
        db.execute("UPDATE entries SET ref_entry_id = NULL WHERE kind = 'redeem'")
        db.execute(
            """UPDATE lots SET remaining = points + (SELECT COALESCE(SUM(m.points), 0) FROM lot_moves m
                                                    WHERE m.lot_id = lots.id)
               WHERE id IN (SELECT lot_id FROM lot_moves)""")
        db.execute(
            """UPDATE enrollments SET points_total = (SELECT SUM(points) FROM entries e
                                                      WHERE e.enrollment_id = enrollments.id)""")
        db.execute(
            f"""WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < :S - 1)
                INSERT INTO anonymous_sales (txn_id, program_code, amount_e4, effective_at, recorded_at)
                SELECT 'A' || k, 'coffee', (3 + k % 40) * 10000, {WHEN}, '2025-01-01T00:00:00Z' FROM n""", p)
        db.execute(
            f"""WITH RECURSIVE n(k) AS (SELECT 0 UNION ALL SELECT k + 1 FROM n WHERE k < :N - 1)
                INSERT INTO nps_responses (response_id, member_id, program_code, account, score, comment, content,
                                           answered_at, recorded_at)
                SELECT 'N' || k, printf('M%07d', k % :m + 1), 'coffee', 'ACC' || ((k % :m + 1) % 500),
                       (k * 31) % 11, CASE WHEN k % 5 = 0 THEN 'comment ' || k END, '{{}}', {WHEN},
                       '2025-01-01T00:00:00Z' FROM n""", p)
    with db.write():  # what the writers derive from rows they write: tier caches, purchase gaps
        db.execute("""UPDATE enrollments SET tier = (SELECT t.tier FROM tier_changes t
                                                     WHERE t.enrollment_id = enrollments.id
                                                     ORDER BY t.effective_at DESC, t.id DESC LIMIT 1)""")
        db.execute(f"INSERT INTO purchase_gaps (enrollment_id, gap, entry_id, at_s) {gaps_sql(db.dialect.epoch)}")
    with db.write():  # rows written behind the store's back: move its id sequences past them
        for table in ("entries", "lots", "enrollments"):
            db.execute(f"UPDATE sequences SET next_id = (SELECT COALESCE(MAX(id), 0) + 1 FROM {table}) WHERE name = ?",
                       (table,))
    db.close()  # no ANALYZE: loyaltyctl never gathers planner statistics, so neither does its benchmark
    os.sync()  # time the reports against a ledger at rest, not against the build's disk writes
    print(f"built {rows:,} entries ({purchases:,} purchases, {redemptions:,} redemptions, {refunds:,} refunds), "
          f"{members:,} members, {p['S']:,} anonymous sales, {p['N']:,} NPS responses "
          f"in {time.perf_counter() - t:.1f} s")


def timed(label: str, fn, baseline: float | None = None) -> float:
    t = time.perf_counter()
    result = fn()
    secs = time.perf_counter() - t
    rows = len(result["rows"]) if isinstance(result, dict) else len(result) if isinstance(result, list) else result
    ratio = f"  ({secs / baseline:.1f}x the raw scan)" if baseline else ""
    flag = "" if secs < 2 else "  OVER 2 s"
    print(f"{label:<34} {secs:7.3f} s  {rows:>6} rows{ratio}{flag}")
    return secs


def _drain(result):
    """A report's rows, read to the end (a streamed report is a generator)."""
    if hasattr(result, "rows"):  # a reports.shape.Report
        return list(result.rows)
    return result if isinstance(result, (dict, list)) else list(result)


def run_reports(db, baseline: float, backend: str) -> None:
    period = {"since": "2026-01-01T00:00:00Z", "until": "2026-07-01T00:00:00Z"}
    cases = [
        ("report tiers", lambda: tiers.tiers(db, as_of=AS_OF)),
        ("report balances", lambda: points.balances(db, as_of=AS_OF)),
        ("report liability", lambda: points.liability(db, as_of=AS_OF)),
        ("report roi", lambda: revenue.roi(db, **period)),
        ("report churn --period month", lambda: activity.churn(db, "month", until=AS_OF)),
        ("report churn --period quarter", lambda: activity.churn(db, "quarter", until=AS_OF)),
        ("report at-risk", lambda: activity.at_risk(db, as_of=AS_OF)),
        ("report ticket", lambda: revenue.ticket(db, **period)),
        ("nps summary", lambda: nps.summary(db)),
        ("nps summary --by tier", lambda: nps.summary(db, "tier")),
        ("nps summary --by account", lambda: nps.summary(db, "account")),
        ("nps summary --by month", lambda: nps.summary(db, "month")),
        ("nps comments --detractors", lambda: nps.comments(db, "detractors")),
    ]
    print(f"--- {backend}")
    worst = max(timed(label, lambda fn=fn: _drain(fn()), baseline) for label, fn in cases)
    print(f"slowest report on {backend}: {worst:.3f} s ({'under' if worst < 2 else 'OVER'} the 2 s target)")
    db.close()


def pg_copy(path: str):
    """The ledger copied into a fresh schema of $LOYALTYCTL_TEST_PG with `db copy`, opened."""
    import subprocess

    import psycopg

    sys.path.insert(0, str(ROOT / "tests"))
    import pg

    url = os.environ.get("LOYALTYCTL_TEST_PG") or sys.exit("--pg needs LOYALTYCTL_TEST_PG (a PostgreSQL URL)")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS bench_reports CASCADE")
        conn.execute("CREATE SCHEMA bench_reports")
    target = pg.with_search_path(url, "bench_reports")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "loyaltyctl", "db", "copy", path, target], check=True)
    print(f"copied to PostgreSQL in {time.perf_counter() - t:.1f}s (db copy ends with ANALYZE, as for an operator)")
    return open_db(target)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", help="Build (or reuse) the ledger in this directory.")
    ap.add_argument("--pg", action="store_true", help="Also time every report on PostgreSQL ($LOYALTYCTL_TEST_PG): "
                                                       "the ledger is copied there with `loyaltyctl db copy`.")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-reports-"))
    tmp.mkdir(parents=True, exist_ok=True)
    path = str(tmp / f"reports-{args.rows}.db")
    try:
        if not Path(path).exists():
            build(path, args.rows)
        raw = sqlite3.connect(path)
        baseline = timed("raw scan: SUM(amount_e4) of entries",
                         lambda: raw.execute("SELECT count(*), SUM(amount_e4) FROM entries").fetchone()[0])
        raw.close()
        run_reports(open_db(path), baseline, "SQLite")
        if args.pg:
            run_reports(pg_copy(path), baseline, "PostgreSQL")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
