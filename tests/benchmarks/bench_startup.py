"""Start-up time of everyday commands against `python -c "import typer"`.

Runs each command as a whole process N times, interleaved (so machine noise hits
all of them alike), and prints the median wall time and its ratio to the
baseline measured in the same run. Target: every ratio within 1.5x. Then prints
the heaviest `-X importtime` entries of each command, and which optional heavy
modules (pydantic, yaml, csv, sqlite_utils, rich) each one loaded.

    /work/venv/bin/python tests/benchmarks/bench_startup.py [N]
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
EXE = str(BIN / "loyaltyctl")
TARGET = 1.5
HEAVY = ("pydantic", "yaml", "csv", "sqlite_utils", "rich")


def run(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def importtime(module_argv: list[str], env: dict, top: int = 8) -> list[tuple[int, str]]:
    out = subprocess.run([sys.executable, "-X", "importtime", *module_argv], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True).stderr
    tops = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit():
            name = parts[2][1:]  # one separator space; deeper imports are indented further
            if not name.startswith(" "):
                tops.append((int(parts[1]), name))
    return sorted(tops, reverse=True)[:top]


def loaded(cmd_args: list[str], env: dict) -> list[str]:
    code = ("import runpy, sys\n"
            f"sys.argv = ['loyaltyctl', *{cmd_args!r}]\n"
            "try:\n    runpy.run_module('loyaltyctl', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            f"print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})), file=sys.stderr)")
    out = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                         text=True).stderr.strip().splitlines()
    return out[-1].split() if out else []


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with tempfile.TemporaryDirectory() as tmp:
        # Byte-code caching on, as after `pip install` (this may run with PYTHONDONTWRITEBYTECODE set);
        # the cache goes to the temporary directory, not into the source tree.
        env = dict(os.environ, LOYALTYCTL_DB=os.path.join(tmp, "bench.db"), NO_COLOR="1",
                   PYTHONPYCACHEPREFIX=os.path.join(tmp, "pycache"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([EXE, "demo"], env=env, stdout=subprocess.DEVNULL, check=True)
        member = "D0002"
        commands = {
            "baseline: python -c 'import typer'": [sys.executable, "-c", "import typer"],
            "loyaltyctl --version": [EXE, "--version"],
            f"loyaltyctl member show {member} --format json": [EXE, "member", "show", member, "--format", "json"],
            f"loyaltyctl earn {member} --amount 5": [EXE, "earn", member, "--amount", "5"],
            f"loyaltyctl member show {member} (table)": [EXE, "member", "show", member],
        }
        times: dict[str, list[float]] = {k: [] for k in commands}
        for argv in commands.values():  # warm the page cache and .pyc files
            run(argv, env)
        for _ in range(n):
            for name, argv in commands.items():
                times[name].append(run(argv, env))
        base = statistics.median(next(iter(times.values())))
        print(f"whole-process start-up, median of {n} interleaved runs each (target <= {TARGET}x baseline)")
        worst = 0.0
        for name, samples in times.items():
            med = statistics.median(samples)
            ratio = med / base
            if name.startswith("loyaltyctl") and "(table)" not in name:
                worst = max(worst, ratio)
            print(f"  {name:55s} {med * 1000:7.1f} ms  {ratio:5.2f}x")
        print(f"worst ratio (targeted commands): {worst:.2f}x -> {'OK' if worst <= TARGET else 'OVER TARGET'}")

        print("\nheavy optional modules loaded:")
        for args in (["--version"], ["member", "show", member, "--format", "json"], ["earn", member, "--amount", "5"],
                     ["member", "show", member]):
            print(f"  loyaltyctl {' '.join(args):40s} {', '.join(loaded(args, env)) or '(none)'}")

        for args in (["member", "show", member, "--format", "json"], ["earn", member, "--amount", "5"]):
            print(f"\n-X importtime, top-level entries of loyaltyctl {' '.join(args)} (cumulative us):")
            for cumulative, name in importtime(["-m", "loyaltyctl", *args], env):
                print(f"  {cumulative:8d}  {name}")


if __name__ == "__main__":
    main()
