"""The connection: path resolution, opening (with migrations), transactions.

Database is the one object the rest of the store runs SQL through; it knows its
dialect (store/dialect.py), so one SQL text serves SQLite and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from ..errors import DatabaseError, Retry
from . import waits
from .dialect import SQLITE, insert_sql
from .migrations import APPLICATION_ID, LEGACY_TABLES, META_TABLE, MIGRATIONS, SCHEMA_VERSION



def is_url(target: str) -> bool:
    """A PostgreSQL connection URL rather than a file name."""
    return target.startswith(("postgresql://", "postgres://"))


def resolve_path(db: str | None) -> str:
    """--db wins, then LOYALTYCTL_DB, then the config file, then ./loyalty.db."""
    if db:
        return db
    env = os.environ.get("LOYALTYCTL_DB")
    if env:
        return env
    from ..config import load_config

    return load_config().get("db") or "loyalty.db"


ATTEMPTS = 5


def transaction(db, work):
    """`work()` in one write transaction (or the caller's), run again when a concurrent writer
    got there first; SQLite's single writer never needs it."""
    if db.in_transaction:
        return work()
    for attempt in range(ATTEMPTS):
        try:
            with db.write():
                return work()
        except Retry:
            if attempt == ATTEMPTS - 1:
                raise DatabaseError(f"{db.path}: other writers kept changing what this command needs; "
                                    "try again") from None
    raise AssertionError("unreachable")  # pragma: no cover


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

    def insert(self, table: str, columns: tuple[str, ...], rows) -> None:
        """Append rows to a table (PostgreSQL streams a large batch with COPY)."""
        self.load(table, list(columns), [rows])

    def one(self, sql: str, params=()):
        return self.conn.execute(sql, params).fetchone()

    def scalar(self, sql: str, params=()):
        row = self.conn.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def all(self, sql: str, params=()) -> list:
        return self.conn.execute(sql, params).fetchall()

    def stream(self, sql: str, params=()) -> Iterator:
        """The rows of a query as the cursor yields them (long lists: never all in memory).
        Other queries may run on the connection meanwhile (each has its own cursor)."""
        cursor = self.conn.execute(sql, params)
        try:
            yield from cursor
        finally:
            cursor.close()

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
            self._begin()
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

    def _begin(self) -> None:
        """BEGIN IMMEDIATE, trying again every POLL_S while another process writes. SQLite's own
        busy handler sleeps up to 100 ms between tries and would keep missing the short gaps a
        long import leaves between its chunks; polling gets in at the first one. After
        waits.BUSY_TIMEOUT_MS, a DatabaseError saying who is writing (when they said so)."""
        deadline = time.monotonic() + waits.BUSY_TIMEOUT_MS / 1000
        self.conn.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    self.conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if not _is_busy(exc):
                        raise
                    if time.monotonic() >= deadline:
                        raise DatabaseError(waits.locked_message(self.path, self._writer())) from None
                time.sleep(waits.POLL_S)
        finally:
            self.conn.execute(f"PRAGMA busy_timeout = {waits.BUSY_TIMEOUT_MS}")

    def _writer(self) -> str | None:
        """What the process holding the write lock said it is doing (store/activity.py), if it did."""
        from .activity import current

        try:
            return current(self)
        except sqlite3.Error:
            return None

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
        self._begin()
        self._depth = 1
        try:
            yield self
        finally:
            self._depth = 0
            self.conn.execute("ROLLBACK")

    @contextmanager
    def snapshot(self) -> Iterator["Database"]:
        """A read transaction: everything read inside sees one moment of the ledger."""
        self.conn.execute("BEGIN")
        try:
            self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot starts here
            yield self
        finally:
            self.conn.execute("ROLLBACK")

    def batches(self, sql: str, size: int) -> Iterator[list]:
        """The rows of a query in lists of at most `size` (bounded memory for any table)."""
        cur = self.conn.execute(sql)
        while rows := cur.fetchmany(size):
            yield rows

    def load(self, table: str, columns: list[str], batches) -> int:
        """Insert batches of rows (tuples in `columns` order) into `table`; returns how many."""
        sql = insert_sql(table, columns)
        count = 0
        for rows in batches:
            self.conn.executemany(sql, rows)
            count += len(rows)
        return count

    def lock_all(self) -> None:
        """(PostgreSQL: hold off every other writer; SQLite's write transaction already does.)"""

    def large_cache(self, mib: int = 64) -> None:
        """A bigger page cache for this connection (batch imports, big catch-up jobs)."""
        self.conn.execute(f"PRAGMA cache_size = -{int(mib) * 1024}")

    def close(self) -> None:
        self.conn.close()


def _connect(path: str, *, readonly: bool = False) -> sqlite3.Connection:
    if readonly:
        conn = peek(path)
    else:
        conn = sqlite3.connect(path, isolation_level=None, timeout=waits.BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA busy_timeout = {waits.BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _uri(path: str) -> str:
    from urllib.parse import quote

    return "file:" + quote(os.path.abspath(path))


def create_private(path: str) -> None:
    """Create the file readable and writable by its owner only (0600)."""
    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise DatabaseError(f"cannot create database {path}: directory {parent} does not exist")
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except OSError as exc:
        raise DatabaseError(f"cannot create database {path}: {exc.strerror}") from None
    os.close(fd)


@dataclass(frozen=True)
class Found:
    """What a file holds, read without changing a byte of it (see `identify`)."""

    kind: str  # "missing", "empty" (no schema yet) or "ledger"
    version: int = 0


def identify(path: str) -> Found:
    """Is `path` a loyaltyctl ledger? A ledger carries APPLICATION_ID and the loyaltyctl_meta
    table; one from before they existed is known by its schema (and gets them on migration).
    Anything else (another program's SQLite file, a non-SQLite file) is a DatabaseError.
    Read-only, without changing a byte or leaving a file behind (see `peek`)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return Found("missing")
    except OSError as exc:
        raise DatabaseError(f"cannot read database {path}: {exc.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise DatabaseError(f"{path} is {kind}, not a loyaltyctl ledger")
    size, wal = st.st_size, _size(path + "-wal")
    if size == 0 and not wal:
        return Found("empty")
    if size and not _in_use(path) and not _has_magic(path):
        raise DatabaseError(f"{path} is not a loyaltyctl ledger (not an SQLite database)")
    app_id, version, tables = _header(path)
    if app_id == APPLICATION_ID and META_TABLE in tables or app_id == 0 and version and LEGACY_TABLES <= tables:
        return Found("ledger", version)
    if app_id == 0 and version == 0 and not tables:
        return Found("empty")
    raise DatabaseError(f"{path} is not a loyaltyctl ledger (another program's SQLite database)")


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _has_magic(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError as exc:
        raise DatabaseError(f"cannot read database {path}: {exc.strerror}") from None


def _in_use(path: str) -> bool:
    """Journal files beside it: a connection has it open (maybe in this process), or had.

    Then only SQLite may open the file: closing any other descriptor of it would drop this
    process's locks on it (POSIX locks are per process)."""
    return any(os.path.exists(path + suffix) for suffix in ("-wal", "-shm", "-journal"))


def peek(path: str) -> sqlite3.Connection:
    """A read-only connection that leaves no trace. A WAL-mode file nobody has open (no journal
    files beside it) is read alone with immutable=1: nothing is created beside it, which also
    works in a read-only directory. Otherwise a plain read-only connection, with SQLite's locks
    (a file in use may be written meanwhile; a rollback-mode file creates nothing anyway)."""
    alone = not _in_use(path) and _wal_mode(path)
    conn = sqlite3.connect(f"{_uri(path)}?{'immutable=1' if alone else 'mode=ro'}", uri=True,
                           timeout=waits.BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    return conn


def _wal_mode(path: str) -> bool:
    """The header's file format version bytes (18 and 19) are 2 in WAL mode."""
    try:
        with open(path, "rb") as f:
            return f.read(20)[18:20] == b"\x02\x02"
    except OSError:
        return False


def _header(path: str) -> tuple[int, int, set[str]]:
    try:
        conn = peek(path)
        try:
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        if "file is not a database" in str(exc):
            raise DatabaseError(f"{path} is not a loyaltyctl ledger (not an SQLite database)") from None
        raise DatabaseError(storage_message(exc, path) or f"cannot open database {path}: {exc}") from None
    return app_id, version, tables


def open_db(path: str, *, create: bool = False, write: bool = True) -> Database:
    """Open a ledger (migrating it if older), or create one with create=True (`init`, `demo`).
    A postgresql:// URL opens a PostgreSQL ledger (store/postgres.py); anything else is a file.

    A file that is not a ledger is refused untouched: it is identified before anything is
    written or its journal mode changed. write=False opens read-only (commands that only
    read), unless the ledger needs migrating first."""
    if is_url(path):
        from .postgres import open_pg

        return open_pg(path, create=create)
    found = identify(path)
    if found.kind == "missing" and not create:
        raise DatabaseError(f"database {path} does not exist; create it with `loyaltyctl init`")
    if found.kind == "empty" and not create:
        raise DatabaseError(f"{path} is empty, not a loyaltyctl ledger; create a ledger with `loyaltyctl init`")
    if found.version > SCHEMA_VERSION:
        raise DatabaseError(
            f"{path} has schema version {found.version}, newer than this loyaltyctl supports "
            f"({SCHEMA_VERSION}); upgrade loyaltyctl"
        )
    if found.kind == "missing":
        create_private(path)
    readonly = not write and found.kind == "ledger" and found.version == SCHEMA_VERSION
    if not readonly:
        check_writable(path, why="this command writes to the ledger" if write or create else
                       f"it must first be upgraded to this loyaltyctl's schema (version {found.version} to "
                       f"{SCHEMA_VERSION}), which writes to it")
    try:
        conn = _connect(path, readonly=readonly)
        if not readonly and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
        db = Database(conn, path)
        if found.version < SCHEMA_VERSION:
            migrate(db, found.version)
        return db
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(storage_message(exc, path) or f"cannot open database {path}: {exc}") from None


def peek_ledger(path: str):
    """The ledger at `path` opened for reading only, as it is (never created, migrated or
    written: `db copy`'s source and target before it decides); None for a missing or empty
    file. Another program's file is a DatabaseError, as in `identify`."""
    if is_url(path):
        from .postgres import peek_pg

        return peek_pg(path)
    if identify(path).kind != "ledger":
        return None
    return Database(peek(path), path)


def schema_version(db) -> int | None:
    """The schema version of an open database; None when it holds no ledger."""
    if db.dialect.name == "sqlite":
        return db.scalar("PRAGMA user_version") or None
    from .postgres import ledger_version

    return ledger_version(db)


def check_writable(path: str, *, why: str = "this command writes to the ledger") -> None:
    """Name what keeps a ledger read-only, before SQLite says only "attempt to write a readonly database"."""
    cause = _readonly_cause(path)
    if cause:
        raise DatabaseError(f"{path} is read-only and {why}: {cause}")


def _readonly_cause(path: str) -> str | None:
    for name in (path, path + "-wal", path + "-shm"):
        if os.path.exists(name) and not os.access(name, os.W_OK):
            st = os.stat(name)
            what = f"{name} is not writable by you (mode {st.st_mode & 0o777:04o}, owner {_owner(st.st_uid)})"
            if name == path:
                return what
            return f"{what}; give it the ledger's owner and mode (it is part of the ledger: do not delete it)"
    parent = os.path.dirname(os.path.abspath(path))
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"its directory {parent} is not writable, and SQLite keeps the ledger's -wal and -shm files there"
    return None


def _owner(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def storage_message(exc: Exception, path: str) -> str | None:
    """A plain message for what SQLite words misleadingly: a lock is another writer at work, and
    "attempt to write a readonly database" is a permission to fix, not damage. None otherwise."""
    text = str(exc)
    if "database is locked" in text or "database is busy" in text:
        return waits.locked_message(path)
    if "readonly database" in text:
        return f"{path} is read-only: {_readonly_cause(path) or text}"
    return None


def _is_busy(exc: Exception) -> bool:
    text = str(exc)
    return "database is locked" in text or "database is busy" in text


def migrate(db: Database, current: int) -> None:
    """Apply the missing migrations in one transaction."""
    with db.write():
        version = db.scalar("PRAGMA user_version")  # re-read under the lock
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            for statement in statements:
                db.execute(statement)
            db.execute(f"PRAGMA user_version = {number}")
