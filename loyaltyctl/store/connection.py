"""The connection: path resolution, opening (with migrations), transactions.

Database is the one object the rest of the store runs SQL through; it knows its
dialect (store/dialect.py), so one SQL text serves SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import DatabaseError
from .dialect import SQLITE
from .migrations import MIGRATIONS

SCHEMA_VERSION = len(MIGRATIONS)
BUSY_TIMEOUT_MS = 30_000


def resolve_path(db: str | None) -> str:
    """--db wins, then LOYALTYCTL_DB, then the config file, then ./loyalty.db."""
    if db:
        return db
    env = os.environ.get("LOYALTYCTL_DB")
    if env:
        return env
    from ..config import load_config

    return load_config().get("db") or "loyalty.db"


class Database:
    """A connection in autocommit mode; writes go through `write()` (BEGIN IMMEDIATE)."""

    def __init__(self, conn: sqlite3.Connection, path: str):
        self.conn = conn
        self.path = path
        self.dialect = SQLITE
        self._depth = 0

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def execute(self, sql: str, params=()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows) -> sqlite3.Cursor:
        return self.conn.executemany(sql, rows)

    def one(self, sql: str, params=()):
        return self.conn.execute(sql, params).fetchone()

    def scalar(self, sql: str, params=()):
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def all(self, sql: str, params=()) -> list:
        return self.conn.execute(sql, params).fetchall()

    @contextmanager
    def write(self, *, foreign_keys: bool = True) -> Iterator["Database"]:
        """One transaction, taken with BEGIN IMMEDIATE so read-then-write is safe
        against other processes; nested calls join the outer transaction.

        foreign_keys=False skips SQLite's per-row parent lookups for this transaction only
        (the pragma cannot change inside one; a nested call keeps the checks on). Only for
        set-based writes whose every reference is read from its parent table under this lock."""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        if not foreign_keys:
            self.conn.execute("PRAGMA foreign_keys = OFF")
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0
        finally:
            if not foreign_keys:
                self.conn.execute("PRAGMA foreign_keys = ON")

    @contextmanager
    def savepoint(self) -> Iterator["Database"]:
        """Inside a transaction: undo just this block if it raises."""
        self.conn.execute("SAVEPOINT row")
        try:
            yield self
        except BaseException:
            self.conn.execute("ROLLBACK TO row")
            self.conn.execute("RELEASE row")
            raise
        else:
            self.conn.execute("RELEASE row")

    @contextmanager
    def rollback_only(self) -> Iterator["Database"]:
        """A transaction that is always rolled back (dry runs)."""
        self.conn.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self
        finally:
            self._depth = 0
            self.conn.execute("ROLLBACK")

    def large_cache(self, mib: int = 64) -> None:
        """A bigger page cache for this connection (batch imports, big catch-up jobs)."""
        self.conn.execute(f"PRAGMA cache_size = -{int(mib) * 1024}")

    def close(self) -> None:
        self.conn.close()


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn


def _create_private(path: str) -> None:
    """Create the file readable and writable by its owner only (0600)."""
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise DatabaseError(f"cannot create database {path}: directory {parent} does not exist")
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.close(fd)


def open_db(path: str, *, create: bool = False) -> Database:
    """Open an existing database (migrating it if older), or create it with create=True."""
    exists = os.path.exists(path)
    if not exists and not create:
        raise DatabaseError(f"database {path} does not exist; create it with `loyaltyctl init`")
    try:
        if not exists:
            _create_private(path)
        conn = _connect(path)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0 and conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise DatabaseError(f"{path} is not a loyaltyctl database")
        if version > SCHEMA_VERSION:
            raise DatabaseError(
                f"{path} has schema version {version}, newer than this loyaltyctl supports "
                f"({SCHEMA_VERSION}); upgrade loyaltyctl"
            )
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        db = Database(conn, path)
        if version < SCHEMA_VERSION:
            migrate(db, version)
        return db
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"cannot open database {path}: {exc}") from None


def migrate(db: Database, current: int) -> None:
    """Apply the missing migrations in one transaction."""
    with db.write():
        version = db.scalar("PRAGMA user_version")  # re-read under the lock
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in statements:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
