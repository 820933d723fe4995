"""The PostgreSQL backend: the same Database interface over psycopg 3, the schema at this
version, and its migrations. psycopg is imported only here, and only when a PostgreSQL URL
is opened, so SQLite commands start as fast as ever.

Transactions are READ COMMITTED; what a write depends on is locked: the enrollments a
batch of commands posts for (SELECT ... FOR UPDATE, in id order, see store/readers.py),
and the whole enrollments table for jobs and program changes. Ids come from sequences."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from decimal import Decimal
from typing import Iterator
from urllib.parse import urlsplit, urlunsplit

from ..errors import DatabaseError, Retry
from . import waits
from .dialect import POSTGRES, insert_sql, to_pyformat

# SCHEMA below is the ledger at this version; later versions run SQLite's own migrations,
# written in the SQL both backends share (see pg_migration).
BASE_VERSION = 10
MIGRATION_LOCK = 0x4C594C54  # pg_advisory_xact_lock key: two operators migrating wait for each other
_TEXT_KEY = 'TEXT COLLATE "C"'  # text sorted by bytes, as SQLite sorts it


def shown(url: str) -> str:
    """The URL for messages, without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class Row(tuple):
    """A result row read by position or by column name, like sqlite3.Row."""

    __slots__ = ()
    names: dict[str, int] = {}

    def __getitem__(self, key):
        if isinstance(key, str):
            return tuple.__getitem__(self, self.names[key])
        return tuple.__getitem__(self, key)

    def keys(self):
        return list(self.names)


def _row_factory(cursor):
    description = cursor.description or ()
    cls = type("Row", (Row,), {"__slots__": (), "names": {c.name: i for i, c in enumerate(description)}})
    return lambda values: cls(values)


def _numeric_loader():
    """SUM() of bigint is numeric in PostgreSQL: whole numbers come back as int, as from SQLite."""
    from psycopg.adapt import Loader

    class IntegralNumeric(Loader):
        def load(self, data):
            text = bytes(data).decode()
            if text.lstrip("-").isdigit():
                return int(text)
            return Decimal(text)
    return IntegralNumeric


# Fewer rows than this go in with one INSERT each (pipelined); COPY's set-up costs more.
COPY_FROM = 32
_STREAMS = itertools.count(1)


class PgDatabase:
    """A psycopg connection in autocommit mode; writes go through `write()` (one transaction)."""

    def __init__(self, conn, url: str):
        self.conn = conn
        self.path = shown(url)
        self.url = url
        self.dialect = POSTGRES
        self._depth = 0

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def execute(self, sql: str, params=()):
        return _errors(self, lambda: self.conn.execute(to_pyformat(sql), params or None))

    def executemany(self, sql: str, rows):
        rows = list(rows)
        if not rows:
            return None
        def run():
            cur = self.conn.cursor()
            cur.executemany(to_pyformat(sql), rows)
            return cur
        return _errors(self, run)

    def insert(self, table: str, columns: tuple[str, ...], rows) -> None:
        """Append rows to a table: COPY for a batch (an import's chunk), INSERT for a few."""
        rows = list(rows)
        if len(rows) < COPY_FROM:
            self.executemany(insert_sql(table, columns), rows)
            return
        _errors(self, lambda: self._copy(table, columns, [rows]))

    def one(self, sql: str, params=()):
        return self.execute(sql, params).fetchone()

    def scalar(self, sql: str, params=()):
        row = self.one(sql, params)
        return None if row is None else row[0]

    def all(self, sql: str, params=()) -> list:
        return self.execute(sql, params).fetchall()

    def stream(self, sql: str, params=(), size: int = 2000) -> Iterator:
        """The rows of a query through a server-side cursor, `size` at a time (long lists:
        never all in memory). WITH HOLD, as the connection is in autocommit mode; other
        queries may run on the connection between fetches."""
        cursor = self.conn.cursor(name=f"loyaltyctl_stream_{next(_STREAMS)}", withhold=True)
        try:
            _errors(self, lambda: cursor.execute(to_pyformat(sql), params or None))
            while rows := cursor.fetchmany(size):
                yield from rows
        finally:
            cursor.close()

    @contextmanager
    def write(self, *, foreign_keys: bool = True) -> Iterator["PgDatabase"]:
        """One transaction; nested calls join the outer one. (foreign_keys: SQLite only.)"""
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self.execute("BEGIN")
        self._depth = 1
        try:
            yield self
        except BaseException:
            self._rollback()
            raise
        else:
            self.execute("COMMIT")
        finally:
            self._depth = 0

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except Exception:  # pragma: no cover - the connection is gone; nothing to undo
            pass

    @contextmanager
    def savepoint(self) -> Iterator["PgDatabase"]:
        self.execute("SAVEPOINT row")
        try:
            yield self
        except BaseException:
            self.execute("ROLLBACK TO SAVEPOINT row")
            self.execute("RELEASE SAVEPOINT row")
            raise
        else:
            self.execute("RELEASE SAVEPOINT row")

    @contextmanager
    def rollback_only(self) -> Iterator["PgDatabase"]:
        self.execute("BEGIN")
        self._depth = 1
        try:
            yield self
        finally:
            self._depth = 0
            self._rollback()

    @contextmanager
    def snapshot(self) -> Iterator["PgDatabase"]:
        """A read-only REPEATABLE READ transaction: everything read inside sees one moment."""
        self.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            yield self
        finally:
            self._rollback()

    def batches(self, sql: str, size: int) -> Iterator[list]:
        """The rows of a query in lists of at most `size`, through a server-side cursor (inside
        snapshot() or write()), so memory stays bounded for any table."""
        cur = self.conn.cursor(name="loyaltyctl_stream")
        try:
            _errors(self, lambda: cur.execute(to_pyformat(sql)))
            while rows := _errors(self, lambda: cur.fetchmany(size)):
                yield rows
        finally:
            cur.close()

    def load(self, table: str, columns: list[str], batches) -> int:
        """COPY batches of rows (tuples in `columns` order) into `table`; returns how many.
        One COPY statement: foreign keys are checked at its end, so rows referring to rows
        later in the same table (entries.ref_entry_id) load in any order."""
        import psycopg

        try:
            return self._copy(table, columns, batches)
        except psycopg.Error as exc:
            raise DatabaseError(f"copying {table} into {self.path}: {' '.join(str(exc).split())}") from None

    def _copy(self, table: str, columns, batches) -> int:
        """One COPY ... FROM STDIN of every row of `batches`; returns how many."""
        count = 0
        with self.conn.cursor() as cur:
            with cur.copy(f'COPY "{table}" ({", ".join(columns)}) FROM STDIN') as copy:
                for rows in batches:
                    for row in rows:
                        copy.write_row(row)
                    count += len(rows)
        return count

    def lock_all(self) -> None:
        """Jobs and program changes touch many members: they wait for, and hold off, every writer."""
        self.execute("LOCK TABLE enrollments IN EXCLUSIVE MODE")

    def large_cache(self, mib: int = 64) -> None:
        """(SQLite only: PostgreSQL's buffers are the server's.)"""

    def close(self) -> None:
        self.conn.close()


def _errors(db: PgDatabase, run):
    import psycopg
    from psycopg import errors

    try:
        return run()
    except (errors.SerializationFailure, errors.DeadlockDetected, errors.UniqueViolation) as exc:
        raise Retry(str(exc)) from exc
    except errors.LockNotAvailable:  # lock_timeout (BUSY_TIMEOUT_MS) ran out
        raise DatabaseError(waits.locked_message(db.path)) from None
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"PostgreSQL at {db.path}: {' '.join(str(exc).split())}") from None


def open_pg(url: str, *, create: bool = False) -> PgDatabase:
    """Connect to a PostgreSQL ledger (migrating it if older), or create its tables (`init`)."""
    db = _connect(url)
    try:
        _prepare(db, create)
    except BaseException:
        db.close()
        raise
    return db


def peek_pg(url: str) -> PgDatabase:
    """Connect without creating or migrating anything; every transaction read-only."""
    db = _connect(url)
    db.conn.execute("SET default_transaction_read_only = on")
    return db


def ledger_version(db: PgDatabase) -> int | None:
    """The schema version of the ledger in the connection's schema; None if there is none."""
    if db.scalar("SELECT to_regclass(quote_ident(current_schema()) || '.loyaltyctl_meta')") is None:
        return None
    return int(db.scalar("SELECT value FROM loyaltyctl_meta WHERE key = 'schema_version'"))


def _connect(url: str) -> PgDatabase:
    try:
        import psycopg
    except ImportError:
        raise DatabaseError("a PostgreSQL URL needs psycopg: pip install 'loyaltyctl[postgres]'") from None
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10, row_factory=_row_factory)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot connect to PostgreSQL at {shown(url)}: {' '.join(str(exc).split())}") from None
    conn.adapters.register_loader("numeric", _numeric_loader())
    # Every Python int goes over as bigint, as SQLite's integers are 64-bit: psycopg's default
    # picks the smallest type, so `:threshold * 9` would overflow in int4.
    from psycopg.types.numeric import Int8Dumper

    conn.adapters.register_dumper(int, Int8Dumper)
    # The same wait as SQLite's busy timeout, read when connecting (tests lower it).
    conn.execute(f"SET lock_timeout = '{int(waits.BUSY_TIMEOUT_MS)}ms'")
    # No JIT: the reports' plans cost enough to trigger it, and compiling them took longer than
    # running them (at-risk on 1M entries: 4.4 s of JIT in 8.1 s; bench_reports.py --pg).
    conn.execute("SET jit = off")
    return PgDatabase(conn, url)


def _prepare(db: PgDatabase, create: bool) -> None:
    from .migrations import SCHEMA_VERSION

    with db.write():
        db.execute("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))
        version = _version(db)
        if version is None:
            if not create:
                raise DatabaseError(f"{db.path} has no loyaltyctl ledger; create one with `loyaltyctl init`")
            _create(db)
            version = BASE_VERSION
        if version > SCHEMA_VERSION:
            raise DatabaseError(f"{db.path} has schema version {version}, newer than this loyaltyctl supports "
                                f"({SCHEMA_VERSION}); upgrade loyaltyctl")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in pg_migration(number):
                db.execute(statement)
            db.execute("UPDATE loyaltyctl_meta SET value = ? WHERE key = 'schema_version'", (str(number),))


def _version(db: PgDatabase) -> int | None:
    """The ledger's schema version; None for a schema without one. A schema holding tables of
    another program is not a ledger: refused, untouched."""
    tables = {r[0] for r in db.all("SELECT table_name FROM information_schema.tables "
                                   "WHERE table_schema = current_schema()")}
    if "loyaltyctl_meta" in tables:
        return int(db.scalar("SELECT value FROM loyaltyctl_meta WHERE key = 'schema_version'"))
    if tables:
        raise DatabaseError(f"{db.path}: its schema {db.scalar('SELECT current_schema()')!r} holds other tables "
                            "and no loyaltyctl ledger; use an empty database or schema")
    return None


def pg_migration(number: int) -> list[str]:
    """The statements that bring a PostgreSQL ledger to schema version `number`."""
    from .migrations import MIGRATIONS

    return MIGRATIONS[number - 1]  # versions after BASE_VERSION are written in the shared SQL


def _create(db: PgDatabase) -> None:
    for statement in SCHEMA:
        db.execute(statement)
    db.execute("INSERT INTO loyaltyctl_meta (key, value) VALUES ('format', 'loyaltyctl ledger'), "
               "('schema_version', ?)", (str(BASE_VERSION),))


# The ledger's tables as SQLite migrations 1-10 (BASE_VERSION) leave them. Integers are 64-bit, as SQLite's;
# text keys sort by bytes; rows the engine creates take ids reserved from their sequences
# (store/writers.py), the others from an identity column.
_ID = "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
SCHEMA = [
    f"CREATE TABLE loyaltyctl_meta (key {_TEXT_KEY} PRIMARY KEY, value TEXT NOT NULL)",
    f"""CREATE TABLE programs (code {_TEXT_KEY} PRIMARY KEY, name TEXT NOT NULL, current_version BIGINT NOT NULL)""",
    f"""CREATE TABLE program_versions (
        id {_ID}, program_code {_TEXT_KEY} NOT NULL REFERENCES programs(code), version BIGINT NOT NULL,
        definition TEXT NOT NULL, source TEXT, applied_at TEXT NOT NULL, UNIQUE (program_code, version))""",
    f"""CREATE TABLE members (
        member_id {_TEXT_KEY} PRIMARY KEY, name TEXT, email TEXT, account {_TEXT_KEY}, created_at TEXT NOT NULL,
        erased_at TEXT)""",
    "CREATE SEQUENCE enrollments_id_seq",
    f"""CREATE TABLE enrollments (
        id BIGINT PRIMARY KEY DEFAULT nextval('enrollments_id_seq'),
        member_id {_TEXT_KEY} NOT NULL REFERENCES members(member_id),
        program_code {_TEXT_KEY} NOT NULL REFERENCES programs(code), tags TEXT NOT NULL DEFAULT '',
        referred_by TEXT, joined_at TEXT NOT NULL, recorded_at TEXT NOT NULL,
        points_total BIGINT NOT NULL DEFAULT 0, uncovered BIGINT NOT NULL DEFAULT 0, tier {_TEXT_KEY},
        UNIQUE (member_id, program_code))""",
    "CREATE INDEX enrollments_program ON enrollments(program_code, tier)",
    "CREATE SEQUENCE entries_id_seq",
    f"""CREATE TABLE entries (
        id BIGINT PRIMARY KEY DEFAULT nextval('entries_id_seq'), txn_id {_TEXT_KEY} NOT NULL UNIQUE,
        enrollment_id BIGINT NOT NULL REFERENCES enrollments(id),
        kind TEXT NOT NULL CHECK (kind IN ('earn', 'redeem', 'refund', 'adjust', 'expire', 'opening')),
        rule_kind TEXT NOT NULL, rule_index BIGINT, program_version_id BIGINT NOT NULL REFERENCES program_versions(id),
        points BIGINT NOT NULL, uncovered BIGINT NOT NULL DEFAULT 0, amount_e4 BIGINT, rate TEXT,
        tier {_TEXT_KEY}, multiplier TEXT, partner TEXT, event TEXT, reward TEXT, reason TEXT,
        ref_entry_id BIGINT REFERENCES entries(id), content TEXT,
        effective_at {_TEXT_KEY} NOT NULL, recorded_at TEXT NOT NULL)""",
    "CREATE INDEX entries_enrollment ON entries(enrollment_id, effective_at)",
    "CREATE INDEX entries_ref ON entries(ref_entry_id) WHERE ref_entry_id IS NOT NULL",
    """CREATE INDEX entries_purchases ON entries(enrollment_id, effective_at, amount_e4)
       WHERE kind = 'earn' AND amount_e4 IS NOT NULL""",
    "CREATE SEQUENCE lots_id_seq",
    f"""CREATE TABLE lots (
        id BIGINT PRIMARY KEY DEFAULT nextval('lots_id_seq'), enrollment_id BIGINT NOT NULL REFERENCES enrollments(id),
        entry_id BIGINT NOT NULL REFERENCES entries(id), points BIGINT NOT NULL CHECK (points > 0),
        earned_at {_TEXT_KEY} NOT NULL, expires_at {_TEXT_KEY}, remaining BIGINT NOT NULL CHECK (remaining >= 0),
        inactivity_days BIGINT, inactivity_from TEXT)""",
    "CREATE INDEX lots_enrollment ON lots(enrollment_id, expires_at)",
    "CREATE INDEX lots_entry ON lots(entry_id)",
    "CREATE INDEX lots_open_expiry ON lots(expires_at) WHERE remaining > 0",
    "CREATE INDEX lots_inactive_open ON lots(enrollment_id) WHERE inactivity_days IS NOT NULL AND remaining > 0",
    f"""CREATE TABLE lot_moves (
        id {_ID}, lot_id BIGINT NOT NULL REFERENCES lots(id), entry_id BIGINT NOT NULL REFERENCES entries(id),
        points BIGINT NOT NULL, effective_at {_TEXT_KEY} NOT NULL)""",
    "CREATE INDEX lot_moves_lot ON lot_moves(lot_id, effective_at)",
    "CREATE INDEX lot_moves_entry ON lot_moves(entry_id)",
    f"""CREATE TABLE tier_changes (
        id {_ID}, enrollment_id BIGINT NOT NULL REFERENCES enrollments(id), tier {_TEXT_KEY} NOT NULL,
        previous TEXT, source TEXT NOT NULL, reason TEXT NOT NULL,
        program_version_id BIGINT NOT NULL REFERENCES program_versions(id), until TEXT,
        effective_at {_TEXT_KEY} NOT NULL, recorded_at TEXT NOT NULL, entry_id BIGINT REFERENCES entries(id))""",
    "CREATE INDEX tier_changes_enrollment ON tier_changes(enrollment_id, effective_at)",
    "CREATE INDEX tier_changes_entry ON tier_changes(entry_id) WHERE entry_id IS NOT NULL",
    f"""CREATE TABLE anonymous_sales (
        id {_ID}, txn_id {_TEXT_KEY} NOT NULL UNIQUE, program_code {_TEXT_KEY} NOT NULL REFERENCES programs(code),
        amount_e4 BIGINT NOT NULL, content TEXT, effective_at {_TEXT_KEY} NOT NULL, recorded_at TEXT NOT NULL)""",
    f"""CREATE TABLE nps_responses (
        id {_ID}, response_id {_TEXT_KEY} NOT NULL UNIQUE, member_id {_TEXT_KEY} REFERENCES members(member_id),
        program_code {_TEXT_KEY} REFERENCES programs(code), account {_TEXT_KEY},
        score BIGINT NOT NULL CHECK (score BETWEEN 0 AND 10), comment TEXT, content TEXT,
        answered_at {_TEXT_KEY} NOT NULL, recorded_at TEXT NOT NULL)""",
    "CREATE INDEX nps_answered ON nps_responses(answered_at)",
    "CREATE INDEX nps_member ON nps_responses(member_id) WHERE member_id IS NOT NULL",
    f"""CREATE TABLE job_runs (
        id {_ID}, job TEXT NOT NULL, program_code TEXT, as_of TEXT NOT NULL, summary TEXT NOT NULL,
        recorded_at TEXT NOT NULL)""",
    """CREATE TABLE purchase_gaps (
        enrollment_id BIGINT NOT NULL REFERENCES enrollments(id), gap BIGINT NOT NULL,
        entry_id BIGINT NOT NULL REFERENCES entries(id), at_s BIGINT NOT NULL,
        PRIMARY KEY (enrollment_id, gap, entry_id))""",
]
