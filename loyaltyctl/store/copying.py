"""SQL of `db copy`: a ledger's tables in foreign-key order, their columns, whether a ledger
holds data, and the ids a copied ledger hands out next. Both backends."""

from __future__ import annotations

import secrets

# Not copied: init writes the target's own loyaltyctl_meta (format, schema version), and
# SQLite's `sequences` is derived from the copied ids (advance_ids), as PostgreSQL's are.
NOT_COPIED = {"loyaltyctl_meta", "sequences"}
BATCH = 5000  # rows per fetchmany / executemany


def tables(db) -> list[str]:
    """The ledger's data tables, each after the tables it refers to (ties by name)."""
    refs = _references(db)
    order: list[str] = []
    while len(order) < len(refs):
        ready = sorted(t for t, parents in refs.items() if t not in order and parents <= set(order) | {t})
        if not ready:  # a cycle between tables: cannot happen in this schema
            raise AssertionError(f"foreign keys form a cycle among {sorted(set(refs) - set(order))}")
        order += ready
    return [t for t in order if t not in NOT_COPIED]


def _references(db) -> dict[str, set[str]]:
    if db.dialect.name == "sqlite":
        names = [r[0] for r in db.all("SELECT name FROM sqlite_master WHERE type = 'table' "
                                      "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: {r["table"] for r in db.all(f'PRAGMA foreign_key_list("{t}")')} for t in names}
    refs: dict[str, set[str]] = {r[0]: set() for r in db.all(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
        "AND table_type = 'BASE TABLE' ORDER BY table_name")}
    for child, parent in db.all(
            """SELECT c.relname, p.relname FROM pg_constraint k
               JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid
               WHERE k.contype = 'f' AND c.relnamespace = CAST(current_schema() AS regnamespace)
               ORDER BY c.relname, p.relname"""):
        refs.setdefault(child, set()).add(parent)
    return refs


def columns(db, table: str) -> list[str]:
    if db.dialect.name == "sqlite":
        return [r["name"] for r in db.all(f'PRAGMA table_info("{table}")')]
    return [r[0] for r in db.all("SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                 "current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))]


def rows(db, table: str, names: list[str]):
    """The table's rows in batches, in id order where it has one (entries refer to earlier entries)."""
    order = " ORDER BY id" if "id" in names else ""
    return db.batches(f'SELECT {", ".join(names)} FROM "{table}"{order}', BATCH)


def has_data(db) -> bool:
    """Does any of the ledger's tables (bar loyaltyctl_meta and sequences) hold a row?"""
    return any(db.scalar(f'SELECT EXISTS (SELECT 1 FROM "{t}")') for t in tables(db))


def advance_ids(db) -> None:
    """Set every id source past the copied ids, so the next row gets a fresh one: SQLite's
    `sequences` rows, PostgreSQL's sequences and identity columns (explicit ids never
    advance them)."""
    if db.dialect.name == "sqlite":
        for (name,) in db.all("SELECT name FROM sequences ORDER BY name"):
            db.execute(f'UPDATE sequences SET next_id = (SELECT COALESCE(MAX(id), 0) + 1 FROM "{name}") '
                       "WHERE name = ?", (name,))
        return
    for table in tables(db):
        sequence = db.scalar("SELECT COALESCE(pg_get_serial_sequence(?, 'id'), CAST(to_regclass(?) AS TEXT))",
                             (f'"{table}"', f"{table}_id_seq")) if "id" in columns(db, table) else None
        if sequence:
            db.execute(f'SELECT setval(CAST(? AS regclass), COALESCE(MAX(id), 0) + 1, false) FROM "{table}"',
                       (sequence,))


def gather_statistics(db) -> None:
    """PostgreSQL: ANALYZE the copied tables now rather than when autovacuum gets to them, so
    the first reports are planned with statistics (without them, `report at-risk` on 1M
    entries took 128 s instead of 8 s). SQLite: nothing; loyaltyctl never gathers them there."""
    if db.dialect.name == "postgresql":
        db.execute("ANALYZE")


def same_database(a, b) -> bool:
    """Are two PostgreSQL connections on the same server and database? An advisory lock one
    takes is visible to the other only then (advisory locks are per database)."""
    key = secrets.randbits(62)
    a.execute("SELECT pg_advisory_lock(?)", (key,))
    try:
        free = b.scalar("SELECT pg_try_advisory_lock(?)", (key,))
        if free:
            b.execute("SELECT pg_advisory_unlock(?)", (key,))
        return not free
    finally:
        a.execute("SELECT pg_advisory_unlock(?)", (key,))


def schema(db) -> str | None:
    return db.scalar("SELECT current_schema()") if db.dialect.name != "sqlite" else None
