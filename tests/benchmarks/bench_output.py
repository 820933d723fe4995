"""Output at scale (issue 19): time to first row, total time and peak RSS of each long list
in table (first screen on a pseudo-terminal, and --all), JSON and CSV, on a ledger of
--rows/10 members and --rows entries (built as bench_reports.py builds it).

    /work/venv/bin/python tests/benchmarks/bench_output.py [--rows 1000000] [--keep DIR]

Whole processes; peak RSS from /usr/bin/time -v (else getrusage of the children). Targets:
first row within 1 s, peak RSS under 100 MB."""

from __future__ import annotations

import argparse
import os
import pty
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_reports  # noqa: E402

EXE = str(Path(sys.executable).parent / "loyaltyctl")
COMMANDS = [["member", "list"], ["report", "expiring"], ["report", "at-risk"], ["report", "balances", "--all"]]


def measure(argv: list[str], env: dict, terminal: bool) -> tuple[float, float, float]:
    """(seconds to the first row, seconds in all, peak RSS MB) of one whole process."""
    timer = ["/usr/bin/time", "-f", "RSS %M"] if os.path.exists("/usr/bin/time") else []
    start = time.perf_counter()
    if terminal:
        master, slave = pty.openpty()
        proc = subprocess.Popen(timer + argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
        os.close(slave)
        reader = master
    else:
        read, write = os.pipe()
        proc = subprocess.Popen(timer + argv, stdout=write, stderr=subprocess.PIPE, env=env)
        os.close(write)
        reader = read
    first, seen, tail = None, b"", b""
    while True:
        try:
            chunk = os.read(reader, 1 << 16)
        except OSError:
            break
        if not chunk:
            break
        if first is None and re.search(rb"(^|\n)(M\d|\[|  \{|member_id)", seen[-64:] + chunk):
            first = time.perf_counter() - start
        seen = (seen + chunk)[-256:]
        tail = (tail + chunk)[-4096:]
    proc.wait()
    total = time.perf_counter() - start
    os.close(reader)
    err = (proc.stderr.read() if proc.stderr else b"") + tail
    found = re.findall(rb"RSS (\d+)", err)
    rss = int(found[-1]) / 1024 if found else float("nan")
    return first or total, total, rss


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", help="Build (or reuse) the ledger in this directory.")
    args = ap.parse_args()
    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-output-"))
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"reports-{args.rows}.db"
    try:
        if not path.exists():
            bench_reports.build(str(path), args.rows)
        env = dict(os.environ, LOYALTYCTL_DB=str(path), LOYALTYCTL_NOW=bench_reports.AS_OF, NO_COLOR="1",
                   COLUMNS="120", LINES="40", TERM="xterm")
        print(f"{'command':<42} {'first row':>9} {'total':>8} {'peak RSS':>9}")
        for cmd in COMMANDS:
            modes = [("table, terminal", [], True), ("table --all, terminal", ["--all"], True),
                     ("json", ["--format", "json"], False), ("csv", ["--format", "csv"], False)]
            for label, extra, terminal in modes:
                if "--all" in cmd and extra == ["--all"]:
                    continue
                first, total, rss = measure([EXE, *cmd, *extra], env, terminal)
                print(f"{' '.join(cmd) + ' (' + label + ')':<42} {first:8.2f}s {total:7.2f}s {rss:7.0f} MB")
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
