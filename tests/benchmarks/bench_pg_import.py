"""Benchmark: `loyaltyctl import transactions` into PostgreSQL against a plain COPY (issue 16).

    LOYALTYCTL_TEST_PG=postgresql://... python tests/benchmarks/bench_pg_import.py --rows 1000000

The same generated file as bench_import.py (purchases and redemptions over rows/10 members of
the coffee program), imported into a fresh schema after `import members` (untimed). The
baseline, measured in the same run: the same CSV loaded with one `COPY ... FROM STDIN` into a
single table of text columns, the least PostgreSQL can do with these rows. Prints rows/s of
both, their ratio, and the import's peak RSS."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tests"))

import bench_import  # noqa: E402
import pg  # noqa: E402

SCHEMA = "bench_import"


def plain_copy(url: str, data: Path) -> float:
    import psycopg

    with psycopg.connect(pg.with_search_path(url, SCHEMA), autocommit=True) as conn:
        conn.execute("CREATE TABLE raw (txn_id TEXT, member_id TEXT, kind TEXT, occurred_at TEXT, amount TEXT, "
                     "points TEXT)")
        start = time.perf_counter()
        with conn.cursor().copy("COPY raw FROM STDIN WITH (FORMAT csv, HEADER true)") as copy, open(data, "rb") as f:
            while block := f.read(1 << 20):
                copy.write(block)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    url = os.environ.get("LOYALTYCTL_TEST_PG")
    if not url:
        raise SystemExit("set LOYALTYCTL_TEST_PG to a PostgreSQL URL (source .ci/postgres.sh && pg_start)")
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
    rows, members = args.rows, max(1, args.rows // 10)
    tmp = Path(tempfile.mkdtemp(prefix="bench-pg-import-"))
    try:
        data, people = tmp / "txns.csv", tmp / "members.csv"
        bench_import.generate(data, rows, members)
        bench_import.members_csv(people, members)
        target = pg.with_search_path(url, SCHEMA)
        cli = [sys.executable, "-m", "loyaltyctl", "--db", target]
        for step in (["init"], ["program", "apply", str(bench_import.PROGRAM)], ["import", "members", str(people)]):
            subprocess.run([*cli, *step], check=True, capture_output=True)
        print(f"{rows:,} rows over {members:,} members; {os.cpu_count()} cores; load {os.getloadavg()[0]:.2f}")
        raw = plain_copy(url, data)
        print(f"plain COPY into one table: {raw:.2f}s  {rows / raw:,.0f} rows/s", flush=True)
        env = {**os.environ, "COLUMNS": "120"}
        cmd = [*cli, "import", "transactions", str(data), "--program", "coffee", "--format", "json"]
        seconds, rss, out = bench_import.measured(cmd, env)
        summary = json.loads(out)
        print(f"loyaltyctl import:        {seconds:.2f}s  {rows / seconds:,.0f} rows/s  {seconds / raw:.1f}x the "
              f"plain COPY  peak RSS {rss / 2**20:.0f} MB  (applied {summary['applied']:,}, "
              f"rejected {summary['rejected']:,})")
        ok = subprocess.run([*cli, "verify"], capture_output=True, text=True)
        print(f"verify: {ok.stdout.strip() or ok.stderr.strip()}")
    finally:
        shutil.rmtree(tmp)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


if __name__ == "__main__":
    main()
