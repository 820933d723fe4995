"""Fuzzing every command's options and arguments (issue 14, "No tracebacks, ever").

Each example calls one command with generated values for any of its options and
arguments: huge, negative and non-numbers, far and impossible dates, empty and huge
strings, control characters, codes that exist, paths to the ledger and its inputs.
Whatever they are, the command ends cleanly: exit 0, 1 or 2, an `Error:` line on
failure, never a traceback, and a command that fails leaves the ledger's bytes as
they were (for an import, a failure of the whole command, not a rejected row).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import CASES, fill, leaves, ledger
from conftest import PROGRAMS, Cli

SETTINGS = settings(max_examples=int(os.environ.get("FUZZ_EXAMPLES", 12)), deadline=None, derandomize=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
COMMANDS = dict(leaves())
HOSTILE = [
    "", " ", "0", "1", "-1", "-0", "7", "42.5", "NaN", "nan", "inf", "-inf", "1e999", "0x10", "1_000", "1,5",
    "99999999999999999999", "9" * 5000, "-" + "9" * 5000, "0." + "1" * 60,
    "9999-12-31T23:59:59Z", "9999-12-31", "0001-01-01", "1969-12-31T23:59:59Z", "2026-02-30", "2026-13-01",
    "2026-06-01T25:00:00Z", "2026-06-01T10:00:00+23:59", "10000-01-01", "2026-03-01T10:00:00Z", "yesterday",
    "\x1b[31mred", "a\x00b", "tab\there", "line\nbreak", "\u202eevil", "x" * 100_000, "é" * 300,
    "'; DROP TABLE entries; --", "=HYPERLINK(\"http://x\")",
    "coffee", "books", "nope", "M1", "M2", "NOBODY", "P1", "Gold", "free_coffee", "email_signup", "hotel",
    "month", "quarter", "week", "json", "csv", "table", "xml", "ledger", "members", "balances",
    "{db}", "{db}-wal", "{dir}/txns.csv", "{dir}/members.csv", "{dir}/nps.csv", "{dir}/backup.db", "{dir}",
    "{dir}/new.csv", "{coffee}", "{programs}", "/dev/null", "-",
]
VALUES = st.one_of(st.sampled_from(HOSTILE), st.text(max_size=20), st.integers().map(str))


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("fuzz-options")
    ledger(directory)
    return directory


def _call(name: str, data) -> list[str]:
    """The command with a drawn subset of its parameters, each with a drawn value."""
    args = name.split()
    for param in COMMANDS[name].params:
        if param.param_type_name == "argument":
            count = 1 if param.nargs == 1 else data.draw(st.integers(1, 3))
            if param.required or data.draw(st.booleans()):
                args += [data.draw(VALUES) for _ in range(count)]
        elif getattr(param, "is_flag", False):
            if data.draw(st.booleans()):
                args.append(data.draw(st.sampled_from(param.opts)))
        elif param.required or data.draw(st.booleans()):
            args += [data.draw(st.sampled_from(param.opts)), data.draw(VALUES)]
    return args


def _journal(db: Path) -> bytes:
    """The ledger as its file and WAL hold it (the -shm is an index that readers may touch)."""
    return b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())


@pytest.mark.parametrize("name", sorted(set(CASES) - {"demo"}))
@SETTINGS
@given(data=st.data())
def test_any_option_values_end_cleanly(template, name, data):
    work = Path(tempfile.mkdtemp(prefix="fuzz-"))
    cwd = os.getcwd()
    try:
        for f in template.iterdir():
            shutil.copy(f, work / f.name)
        # The example programs as copies: a drawn `backup {coffee} --force` or `export -o
        # {programs} --force` may write over them, and must never reach the checkout's files.
        shutil.copytree(PROGRAMS, work / "programs")
        os.chdir(work)
        c = Cli(work / "ledger.db")
        args = fill(_call(name, data), db=c.db, dir=work, foreign=work / "missing.db",
                    programs=work / "programs", coffee=work / "programs" / "coffee.yaml")
        before = _journal(c.db)
        result = c(*args, ok=None)  # a traceback re-raises here and fails the test
        assert result.exit_code in (0, 1, 2), (args[:6], result.exit_code, result.stderr[-500:])
        err = result.stderr.strip()
        assert "Traceback" not in err
        if result.exit_code == 0:
            return
        lines = err.splitlines()
        assert lines and len(err) < 5000, (args[:6], err[:500])
        whole = lines[-1].startswith("Error: ")
        assert whole or name.startswith("import"), (args[:6], err[:500])  # else: one line per rejected row
        if whole:
            assert sum(line.startswith("Error: ") for line in lines) >= 1
            if name not in ("program validate",):
                assert _journal(c.db) == before, (args[:6], err[:500])
    finally:
        os.chdir(cwd)
        shutil.rmtree(work, ignore_errors=True)
