"""Benchmark: a long import sharing the ledger with operators and cron (issue 17.2).

    python tests/benchmarks/bench_fair.py                 # 200,000 rows
    python tests/benchmarks/bench_fair.py --rows 20000 --runs 3

Builds a ledger (coffee program, rows/10 members), then, on copies of it, runs
`import transactions` of a generated file of purchases alone (the baseline, measured in
the same run) and again while three processes run `earn` in a loop and a cron `expire`
starts in the middle (tests/fixtures/fair.py). Prints the import's rows/s both ways and
their ratio, each earn's wall time during the import (p50, p99, max: waiting for the
write lock included), the expire's, and the lock failures (the target: none, p99 < 3 s)."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

import fair  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="bench-fair-") as directory:
            outcome = fair.run(Path(directory), args.rows)
        print(f"run {run + 1}: {outcome.summary()}", flush=True)


if __name__ == "__main__":
    main()
