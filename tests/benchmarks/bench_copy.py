"""Benchmark of `db copy` on a large ledger: SQLite -> PostgreSQL -> SQLite, rows/s, against
`verify` alone on the source (part of every copy) measured in the same run.

    LOYALTYCTL_TEST_PG=postgresql://... python tests/benchmarks/bench_copy.py [--rows 1000000]

The source is bench_reports' generated ledger with its derived caches (tiers, purchase gaps)
brought up to date, so it verifies like one the service wrote. The PostgreSQL side is a fresh
schema on the server the URL names, dropped at the end."""

from __future__ import annotations

import argparse
import os
import resource
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_reports  # noqa: E402
from pg import with_search_path  # noqa: E402

from loyaltyctl.app import admin  # noqa: E402
from loyaltyctl.store.connection import open_db  # noqa: E402
from loyaltyctl.store.derived import gaps_sql  # noqa: E402


def settle(path: str) -> None:
    """The caches bench_reports leaves stale: each enrollment's tier, the purchase gaps."""
    db = open_db(path)
    with db.write():
        db.execute("""UPDATE enrollments SET tier = (SELECT t.tier FROM tier_changes t WHERE t.enrollment_id = enrollments.id
                      ORDER BY t.effective_at DESC, t.id DESC LIMIT 1)""")
        db.execute(f"INSERT INTO purchase_gaps (enrollment_id, gap, entry_id, at_s) {gaps_sql(db.dialect.epoch)}")
    db.close()


def timed(label: str, fn, rows: int) -> float:
    t = time.perf_counter()
    fn()
    secs = time.perf_counter() - t
    print(f"{label:<28} {secs:7.1f} s  {rows / secs:>9,.0f} rows/s")
    return secs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    import psycopg

    os.environ.setdefault("LOYALTYCTL_NOW", "2030-01-01T12:00:00Z")
    url = os.environ["LOYALTYCTL_TEST_PG"]
    work = Path(tempfile.mkdtemp(prefix="bench-copy-"))
    source, back = str(work / "source.db"), str(work / "back.db")
    bench_reports.build(source, args.rows)
    settle(source)
    schema = "bench_" + secrets.token_hex(4)
    admin_conn = psycopg.connect(url, autocommit=True)
    admin_conn.execute(f"CREATE SCHEMA {schema}")
    try:
        db = open_db(source, write=False)
        total = sum(db.scalar(f"SELECT count(*) FROM {t}") for t in admin.copying.tables(db))
        timed("verify (source alone)", lambda: admin.verify(db), total)
        db.close()
        print(f"{total:,} rows in all tables")
        target = with_search_path(url, schema)
        timed("db copy SQLite -> PostgreSQL", lambda: admin.copy_ledger(source, target), total)
        timed("db copy PostgreSQL -> SQLite", lambda: admin.copy_ledger(target, back), total)
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    finally:
        admin_conn.execute(f"DROP SCHEMA {schema} CASCADE")
        admin_conn.close()


if __name__ == "__main__":
    main()
