"""Start-up time of everyday commands against `python -c "import typer"` (issue 19).

Each command runs as a whole process paired with the baseline (A B A B ..., as farm-bench
--vs does), so machine noise hits both alike; the ratio is taken pair by pair and the
median printed with its spread. Targets: table `member show` and `earn` within 1.3x,
`--help` within 1.8x. Measure an installed copy (`pip install .`, as the README does):
an editable install adds its import finder to every command.

Then the floors under the commands: what importing the frozen dataclasses of core/ costs
(Python 3.11 compiles six methods for each), and what each targeted command's imports cost
with nothing run; then the heaviest `-X importtime` entries.

    .venv/bin/python tests/benchmarks/bench_startup.py [PAIRS]
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
BASELINE = [sys.executable, "-c", "import typer"]
MEMBER = "D0002"
# name: (argv, target ratio or None)
COMMANDS = {
    "--version": (["--version"], None),
    f"member show {MEMBER} (table)": (["member", "show", MEMBER], 1.3),
    f"member show {MEMBER} --format json": (["member", "show", MEMBER, "--format", "json"], None),
    f"earn {MEMBER} --amount 5": (["earn", MEMBER, "--amount", "5"], 1.3),
    "--help": (["--help"], 1.8),
    "member show --help": (["member", "show", "--help"], None),
}
# What a command cannot start without, timed alone: core's dataclass modules, and each targeted
# command's own imports with no work done.
FLOORS = {
    "import typer + core's dataclass modules": "import typer, loyaltyctl.core.records, loyaltyctl.core.commands, "
                                               "loyaltyctl.core.rules, loyaltyctl.core.program",
    "member show's imports, nothing run": "import typer, loyaltyctl.cli, loyaltyctl.cli.members, "
                                          "loyaltyctl.app.members, loyaltyctl.render",
    "earn's imports, nothing run": "import typer, loyaltyctl.cli, loyaltyctl.cli.transactions, "
                                   "loyaltyctl.app.ledger, loyaltyctl.render",
}


def run(argv: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def paired(argv: list[str], env: dict, pairs: int) -> tuple[float, list[float]]:
    """(median seconds of the command, ratios to the baseline pair by pair)."""
    run(argv, env), run(BASELINE, env)  # warm the page cache and byte-code
    own, ratios = [], []
    for _ in range(pairs):
        a, b = run(argv, env), run(BASELINE, env)
        own.append(a)
        ratios.append(a / b)
    return statistics.median(own), ratios


def importtime(argv: list[str], env: dict, top: int = 8) -> list[tuple[int, str]]:
    out = subprocess.run([sys.executable, "-X", "importtime", "-m", "loyaltyctl", *argv], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True).stderr
    tops = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[1].strip().isdigit() and not parts[2][1:].startswith(" "):
            tops.append((int(parts[1]), parts[2][1:]))
    return sorted(tops, reverse=True)[:top]


def main() -> None:
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    if "__editable__" in "".join(os.listdir(next(p for p in sys.path if p.endswith("site-packages")))):
        print("note: an editable install; figures are for `pip install .` only when measured on one")
    with tempfile.TemporaryDirectory() as tmp:
        # Byte-code caching on, as after `pip install` (this may run with PYTHONDONTWRITEBYTECODE set);
        # the cache goes to the temporary directory, not into the source tree.
        env = dict(os.environ, LOYALTYCTL_DB=os.path.join(tmp, "bench.db"), NO_COLOR="1",
                   PYTHONPYCACHEPREFIX=os.path.join(tmp, "pycache"))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        subprocess.run([EXE, "demo"], env=env, stdout=subprocess.DEVNULL, check=True)
        print(f"whole-process start-up, {pairs} pairs each with `python -c 'import typer'`; "
              "ratio median [min-max]")
        for name, (args, target) in COMMANDS.items():
            seconds, ratios = paired([EXE, *args], env, pairs)
            verdict = "" if target is None else f"  target {target}x: " + (
                "met" if statistics.median(ratios) <= target else "NOT met")
            print(f"  loyaltyctl {name:38s} {seconds * 1000:6.1f} ms  {statistics.median(ratios):4.2f}x "
                  f"[{min(ratios):.2f}-{max(ratios):.2f}]{verdict}")
        for name, code in FLOORS.items():
            seconds, ratios = paired([sys.executable, "-c", code], env, pairs)
            print(f"  floor: {name:42s} {seconds * 1000:6.1f} ms  {statistics.median(ratios):4.2f}x")
        for args in (["member", "show", MEMBER], ["earn", MEMBER, "--amount", "5"], ["--help"]):
            print(f"\n-X importtime, top-level entries of loyaltyctl {' '.join(args)} (cumulative us):")
            for cumulative, name in importtime(args, env):
                print(f"  {cumulative:8d}  {name}")


if __name__ == "__main__":
    main()
