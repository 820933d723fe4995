"""Shared fixtures: every test gets its own database, a pinned clock and an environment
that nothing of the user's (LOYALTYCTL_*, HOME, XDG_CONFIG_HOME) can leak into."""

from __future__ import annotations

import inspect
import json
import os
import re
import sqlite3
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import pg

# "Now" for the whole run: LOYALTYCTL_TEST_NOW picks another moment (CI runs the suite under
# two), so no test depends on the wall clock. Read before the user's LOYALTYCTL_* are cleared.
NOW = os.environ.get("LOYALTYCTL_TEST_NOW") or "2030-01-01T12:00:00Z"
# The PostgreSQL server for pg_schema (tests/pg.py), if any: LOYALTYCTL_TEST_PG(_REQUIRED).
PG = pg.settings_from(os.environ)
# LOYALTYCTL_TEST_* stay: pytest-xdist's workers inherit this environment and read them too.
for _name in [k for k in os.environ
              if (k.startswith("LOYALTYCTL_") and not k.startswith("LOYALTYCTL_TEST_"))
              or k == "_LOYALTYCTL_COMPLETE"]:
    del os.environ[_name]
_HOME = tempfile.mkdtemp(prefix="loyaltyctl-test-home-")
os.environ.update(LOYALTYCTL_NOW=NOW, HOME=_HOME, XDG_CONFIG_HOME=os.path.join(_HOME, ".config"))


def ago(days: int) -> str:
    """The pinned "now" less `days` days, in the stored form (for data that must be recent)."""
    from datetime import datetime, timedelta

    moment = datetime.fromisoformat(NOW.replace("Z", "+00:00")) - timedelta(days=days)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a loyaltyctl subprocess: the test run's (pinned clock, isolated
    HOME) without NO_COLOR, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env.update(extra)
    return env

from loyaltyctl.cli import app

# Typer rebuilds the whole click command tree on every invoke (~0.1 s, most of a test
# command's time); a process builds it once, so the tests do too.
import typer.main  # noqa: E402
import typer.testing  # noqa: E402

_COMMAND = typer.main.get_command(app)
_build = typer.testing._get_command
typer.testing._get_command = lambda a: _COMMAND if a is app else _build(a)

ROOT = Path(__file__).resolve().parent.parent
PROGRAMS = ROOT / "loyaltyctl" / "programs"


class Cli:
    """Runs loyaltyctl in-process against one ledger: a SQLite file, or a PostgreSQL URL."""

    def __init__(self, db: Path | str):
        self.db = db
        self.runner = CliRunner()

    @property
    def location(self) -> str:
        """The --db value: a file's path or a PostgreSQL URL (for subprocesses and helpers;
        tests that name `cli.db` are taken to need the SQLite file and skip on PostgreSQL)."""
        return str(self.db)

    @property
    def postgres(self) -> bool:
        return str(self.db).startswith("postgresql://")

    def __call__(self, *args: str, ok: bool | None = True, input: str | None = None):
        result = self.runner.invoke(app, ["--db", str(self.db), *map(str, args)], input=input)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        if ok is True:
            assert result.exit_code == 0, f"{args}: exit {result.exit_code}\n{result.stdout}\n{result.stderr}"
        elif ok is False:
            assert result.exit_code != 0, f"{args} unexpectedly succeeded:\n{result.stdout}"
        return result

    def json(self, *args: str):
        return json.loads(self(*args, "--format", "json").stdout)

    def fail(self, *args: str) -> str:
        """Run a command that must fail with one line on stderr and no traceback; return that line."""
        result = self(*args, ok=False)
        assert result.exit_code == 1, f"{args}: exit {result.exit_code}: {result.stderr}"
        err = result.stderr.strip()
        assert err.startswith("Error: "), err
        assert "Traceback" not in err and len(err.splitlines()) == 1, err
        return err

    def usage(self, *args: str) -> str:
        """Run a command with a bad option value: exit 2, click's usage lines, then one `Error:`
        line naming the option; no traceback. Return that line."""
        result = self(*args, ok=False)
        assert result.exit_code == 2, f"{args}: exit {result.exit_code}: {result.stderr}"
        err = result.stderr.strip()
        assert "Traceback" not in err and err.startswith("Usage: "), err
        last = err.splitlines()[-1]
        assert last.startswith("Error: ") and err.count("Error:") == 1, err
        return last

    def sql(self, query: str, params=()) -> list[tuple]:
        """Run one SQL statement (SQLite's `?` placeholders) on this ledger, whichever the
        backend, for tests that read or tamper with the tables: the rows as tuples."""
        return self._sql(query, params)[0]

    def execute(self, query: str, params=()) -> int:
        """Run one writing SQL statement on this ledger; the number of rows it changed."""
        return self._sql(query, params)[1]

    def _sql(self, query: str, params) -> tuple[list[tuple], int]:
        if self.postgres:
            import psycopg

            from loyaltyctl.store.dialect import to_pyformat

            with psycopg.connect(self.db, autocommit=True) as conn:
                cur = conn.execute(to_pyformat(query), params or None)
                return ([tuple(r) for r in cur.fetchall()] if cur.description else []), cur.rowcount
        conn = sqlite3.connect(self.db)
        try:
            with conn:
                cur = conn.execute(query, params)
                return ([tuple(r) for r in cur.fetchall()] if cur.description else []), cur.rowcount
        finally:
            conn.close()

    def dump(self) -> str:
        """The whole database as text, to prove a failed command wrote nothing."""
        if self.postgres:
            return pg.dump(self.db)
        conn = sqlite3.connect(self.db)
        try:
            return "\n".join(conn.iterdump())
        finally:
            conn.close()


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    """Undo whatever a test set in the environment: back to the pinned clock and clean HOME."""
    for name in [k for k in os.environ if k.startswith("LOYALTYCTL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("LOYALTYCTL_NOW", NOW)
    monkeypatch.setenv("HOME", _HOME)
    monkeypatch.setenv("XDG_CONFIG_HOME", os.path.join(_HOME, ".config"))


# The black-box suite runs on both backends: every test that uses `cli` (or a fixture built on
# it) runs once on a SQLite file and once in its own PostgreSQL schema. Tests that open the
# SQLite file themselves (sqlite3, or the file handed to other tools) run on SQLite only.
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def cli(request, tmp_path, monkeypatch) -> Cli:
    monkeypatch.chdir(tmp_path)
    if request.param == "postgresql":
        admin = request.getfixturevalue("pg_server")
        schema = pg.temporary_schema(admin, PG.url)
        c = Cli(schema.__enter__().url)
        request.addfinalizer(lambda: schema.__exit__(None, None, None))
    else:
        c = Cli(tmp_path / "test.db")
    c("init")
    return c


_FILE_BOUND = re.compile(r"sqlite3|\.db\b(?!\()|_copy_db|open_db")


def pytest_collection_modifyitems(config, items):
    """The PostgreSQL run of a test that reads the SQLite file itself is skipped, with the reason."""
    for item in items:
        if getattr(item, "callspec", None) is None or item.callspec.params.get("cli") != "postgresql":
            continue
        try:
            source = inspect.getsource(item.function)
        except (OSError, TypeError):
            continue
        if _FILE_BOUND.search(source):
            item.add_marker(pytest.mark.skip(reason="reads or hands over the SQLite file itself"))


@pytest.fixture
def coffee(cli) -> Cli:
    """A database with every example program applied."""
    cli("program", "apply", str(PROGRAMS))
    return cli


@pytest.fixture(scope="session")
def pg_server():
    """An autocommit connection to the run's PostgreSQL; skips or fails as tests/pg.py says."""
    conn = pg.admin_connection(PG)
    yield conn
    conn.close()


@pytest.fixture
def pg_schema(pg_server) -> pg.Schema:
    """A schema of the test's own on the run's PostgreSQL, dropped after the test."""
    with pg.temporary_schema(pg_server, PG.url) as schema:
        yield schema
