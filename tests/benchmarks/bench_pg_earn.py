"""Benchmark: concurrent `earn`s on one PostgreSQL ledger against pgbench's ceiling (issue 16).

    LOYALTYCTL_TEST_PG=postgresql://... python tests/benchmarks/bench_pg_earn.py
    python tests/benchmarks/bench_pg_earn.py --duration 20 --clients "8 32" --members 10000

Builds a ledger in its own schema (coffee program, --members members enrolled by `import
members`), then for each client count runs that many processes, each with one connection,
calling loyaltyctl's library path (`app.ledger.earn`: member locked FOR UPDATE, the engine's
posting, entry + lot + totals + purchase gap written; no process start per operation) on
random members for --duration seconds. Then, in the same run, tests/benchmarks/pg_baseline/
run.sh runs pgbench with the equivalent transaction as plain SQL (the server's ceiling for
this work). Prints transactions/s, p50/p99 latency and errors for both, and the ratio
(target: loyaltyctl at least 50% of pgbench). Without LOYALTYCTL_TEST_PG a throwaway server is
started with .ci/postgres.sh (durability off, as in CI)."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

SCHEMA = "bench_lib"


def client(url: str, members: int, until: float, seed: int, out) -> None:
    from loyaltyctl.app import ledger
    from loyaltyctl.store.connection import open_db

    rng = random.Random(seed)
    db = open_db(url)
    latencies, errors = [], 0
    while time.time() < until:
        member = f"M{rng.randrange(members):07d}"
        amount = Decimal(rng.randrange(100, 9999)) / 100
        start = time.perf_counter()
        try:
            ledger.earn(db, member, program_code="coffee", amount=amount, txn=uuid.uuid4().hex)
        except Exception as exc:  # counted and shown: the target is zero
            errors += 1
            if errors == 1:
                print(f"client {seed}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        latencies.append(time.perf_counter() - start)
    db.close()
    out.put((latencies, errors))


def build(url: str, members: int) -> None:
    import psycopg

    import pg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
        conn.execute(f"CREATE SCHEMA {SCHEMA}")
    schema_url = pg.with_search_path(url, SCHEMA)
    with tempfile.TemporaryDirectory() as tmp:
        people = Path(tmp) / "members.csv"
        people.write_text("member_id,program,joined_at\n" + "".join(
            f"M{i:07d},coffee,2024-12-01T00:00:00Z\n" for i in range(members)))
        cli = [sys.executable, "-m", "loyaltyctl", "--db", schema_url]
        for args in (["init"], ["program", "apply", str(ROOT / "loyaltyctl" / "programs" / "coffee.yaml")],
                     ["import", "members", str(people)]):
            subprocess.run([*cli, *args], check=True, capture_output=True)
    with psycopg.connect(schema_url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


def run_clients(url: str, clients: int, members: int, duration: float) -> tuple[float, list[float], int]:
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = time.time() + 1.0  # every client connected before the clock starts
    until = start + duration
    procs = [ctx.Process(target=client, args=(url, members, until, i, out)) for i in range(clients)]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    return len(latencies) / duration, latencies, sum(e for _, e in results)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] * 1000 if values else float("nan")


def pgbench(url: str, duration: int, clients: str, members: int) -> dict[int, float]:
    env = {**os.environ, "LOYALTYCTL_TEST_PG": url}
    out = subprocess.run(["bash", str(ROOT / "tests" / "benchmarks" / "pg_baseline" / "run.sh"), "--duration",
                          str(duration), "--clients", clients, "--members", str(members)],
                         env=env, capture_output=True, text=True, check=True).stdout
    print("pgbench (tests/benchmarks/pg_baseline/run.sh, the same transaction as plain SQL):")
    print("  " + out.strip().replace("\n", "\n  "))
    return {int(line.split()[0]): float(line.split()[1]) for line in out.splitlines() if line[:1].isdigit()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--clients", default="8 32")
    parser.add_argument("--members", type=int, default=10_000)
    args = parser.parse_args()
    url = os.environ.get("LOYALTYCTL_TEST_PG")
    if not url:
        raise SystemExit("set LOYALTYCTL_TEST_PG to a PostgreSQL URL (source .ci/postgres.sh && pg_start)")
    import pg

    t = time.perf_counter()
    build(url, args.members)
    print(f"ledger: {args.members:,} members in schema {SCHEMA}, built in {time.perf_counter() - t:.1f}s; "
          f"{os.cpu_count()} cores; load average {os.getloadavg()[0]:.2f}")
    schema_url = pg.with_search_path(url, SCHEMA)
    ours = {}
    print(f"{'clients':<8} {'tps':>8} {'p50_ms':>8} {'p99_ms':>8} {'errors':>7}   loyaltyctl library path")
    for c in map(int, args.clients.split()):
        tps, lat, errors = run_clients(schema_url, c, args.members, args.duration)
        ours[c] = tps
        print(f"{c:<8} {tps:8.0f} {pct(lat, 0.5):8.2f} {pct(lat, 0.99):8.2f} {errors:7d}", flush=True)
    base = pgbench(url, args.duration, args.clients, args.members)
    for c, tps in ours.items():
        if c in base:
            print(f"{c} clients: loyaltyctl {tps:,.0f} tps = {tps / base[c]:.0%} of pgbench's {base[c]:,.0f} "
                  f"[target >= 50%: {'met' if tps >= base[c] / 2 else 'NOT met'}]")
    with __import__("psycopg").connect(url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {SCHEMA} CASCADE")


if __name__ == "__main__":
    main()
