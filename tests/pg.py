"""A real PostgreSQL for tests (issue 16): one server per run, one schema per test.

LOYALTYCTL_TEST_PG is the server's URL (`.ci/run` starts one and sets it). Without it the
PostgreSQL tests skip with a reason; with LOYALTYCTL_TEST_PG_REQUIRED=1 (CI) they fail instead,
and so do they when a URL is given but the server cannot be reached. conftest reads both
variables before it clears the user's LOYALTYCTL_* and passes them to `settings`.

`pg_schema` gives a test a fresh schema `t_<random>` and a URL whose connections see only it
(`options=-csearch_path=...`), so the same URL can later go to `--db`; the schema is dropped after."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest

URL_VAR = "LOYALTYCTL_TEST_PG"
REQUIRED_VAR = "LOYALTYCTL_TEST_PG_REQUIRED"


@dataclass(frozen=True)
class Settings:
    url: str | None
    required: bool


@dataclass(frozen=True)
class Schema:
    """A test's own schema: `url` connects with search_path set to `name` alone."""

    name: str
    url: str

    def connect(self, **kwargs):
        import psycopg

        return psycopg.connect(self.url, **kwargs)


def settings_from(environ) -> Settings:
    return Settings(url=environ.get(URL_VAR) or None, required=environ.get(REQUIRED_VAR) == "1")


def with_search_path(url: str, schema: str) -> str:
    """`url` with `-csearch_path=schema` added to its libpq `options` parameter."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["options"] = " ".join(filter(None, [query.get("options"), f"-csearch_path={schema}"]))
    return urlunsplit(parts._replace(query=urlencode(query)))


def unavailable(settings: Settings, reason: str, misconfigured: bool = False) -> None:
    """Skip, or fail when PostgreSQL was asked for: the required flag, or a URL that fails."""
    if settings.required or misconfigured:
        pytest.fail(f"PostgreSQL tests: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL tests: {reason}")


def admin_connection(settings: Settings):
    """An autocommit connection to the server, or skip/fail with the reason there is none."""
    if not settings.url:
        unavailable(settings, f"{URL_VAR} is not set (.ci/run starts a server and sets it)")
    try:
        import psycopg
    except ImportError:
        unavailable(settings, "psycopg is not installed (pip install '.[postgres]')")
    try:
        conn = psycopg.connect(settings.url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        unavailable(settings, f"server at {settings.url} is unreachable: {str(e).strip()}", True)
    # A test that leaves a transaction open on its schema makes DROP SCHEMA wait: error instead.
    conn.execute("SET lock_timeout = '10s'")
    return conn


@contextmanager
def temporary_schema(admin, url: str) -> Iterator[Schema]:
    from psycopg import sql

    name = "t_" + secrets.token_hex(6)
    admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    try:
        yield Schema(name=name, url=with_search_path(url, name))
    finally:
        admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def dump(url: str) -> str:
    """Every row of every table of the URL's schema, in a stable order, as text. Sequences are
    left out: PostgreSQL never rolls a sequence back, so a failed or dry-run command that
    wrote nothing may still leave a gap in the ids the next command gets (README)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "ORDER BY table_name")]
        lines = []
        for table in tables:
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = %s ORDER BY ordinal_position", (table,))]
            order = ", ".join(f'"{c}"' for c in columns)
            for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}'):
                lines.append(f"{table}: {row!r}")
        return "\n".join(lines)
