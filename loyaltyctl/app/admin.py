"""Admin use cases: verify the ledger, back up and restore, erase a member's personal data."""

from __future__ import annotations

import json
import os
import re
import sqlite3

from ..core.values import now_ts
from ..errors import Conflict, DatabaseError, InputError, NotFound
from ..paths import guard, same_file
from ..store import copying, pgdump
from ..store import members as member_store
from ..store import verify as checks
from ..store.connection import (SCHEMA_VERSION, Database, create_private, identify, is_url, open_db, peek,
                                peek_ledger, schema_version, storage_message)

ERASED = "[erased]"


def verify(db: Database) -> dict:
    """Check every invariant; returns {"ok": bool, "violations": [...]}.

    A file SQLite itself finds damaged is reported as integrity_check violations
    only: the ledger checks cannot be trusted (or even run) on it."""
    found: list[dict] = []
    counts: dict = {}
    try:
        for problem in checks.integrity(db):
            found.append({"check": "integrity_check", "detail": problem})
        if not found:
            _ledger_checks(db, found)
            counts = checks.counts(db)
    except sqlite3.DatabaseError as exc:
        found.append({"check": "integrity_check", "detail": f"cannot read the database: {exc}"})
    if found and not counts:
        counts = dict.fromkeys(("members", "enrollments", "entries", "lots"))
    return {"ok": not found, "violations": found, "path": db.path} | counts


def _ledger_checks(db: Database, found: list[dict]) -> None:
    for r in checks.foreign_keys(db):
        found.append({"check": "foreign_key_check", "detail": f"{r[0]} row {r[1]} -> {r[2]}"})
    for name, (description, sql) in checks.checks(db).items():
        for r in checks.violations(db, sql):
            found.append({"check": name, "detail": f"{description}: " + ", ".join(f"{k}={v}" for k, v in r.items())})
    for r in checks.entry_rules(db):
        earn = json.loads(r["definition"]).get("earn") or []
        index = r["rule_index"]
        if index >= len(earn) or earn[index]["rule"] != r["rule_kind"]:
            found.append({"check": "entry_rule", "detail": f"entries cite earn[{index}] {r['rule_kind']} which "
                                                           f"{r['program_code']} v{r['version']} does not have"})


def backup(db: Database, dest: str, *, force: bool = False) -> dict:
    """A consistent copy (VACUUM INTO) taken while others may keep writing, then verified.

    The copy is one self-contained file (rollback journal, not WAL), read back for
    verification without a trace, so it can be restored from a read-only place.
    PostgreSQL: pg_dump of the ledger's schema (see _pg_backup)."""
    guard(dest, option="backup", ledger=db.path if db.dialect.name == "sqlite" else None)
    _check_output(dest, force)
    if db.dialect.name != "sqlite":
        return _pg_backup(db, dest)
    if os.path.exists(dest):
        _remove(dest)
    old = os.umask(0o077)  # the copy is created readable by its owner only
    try:
        db.execute("VACUUM INTO ?", (dest,))
    except sqlite3.DatabaseError as exc:
        _remove(dest)
        raise DatabaseError(f"backup to {dest} failed: {exc}") from None
    finally:
        os.umask(old)
    result = _verified_copy(dest)
    if not result["ok"]:
        _remove(dest)  # never leave an unverified file that looks like a backup
        raise DatabaseError(_failed_verification(dest, result))
    return {"backup": dest, "verified": True, "entries": result["entries"], "members": result["members"]}


def _check_output(dest: str, force: bool) -> None:
    if os.path.exists(dest) and not os.path.isfile(dest):
        raise InputError(f"backup {dest}: not a regular file")  # never remove a device or a directory
    if os.path.exists(dest) and not force:
        raise Conflict(f"{dest} already exists; pass --force to overwrite it")
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise InputError(f"{dest}: directory {parent} does not exist")


def _failed_verification(dest: str, result: dict) -> str:
    first = result["violations"][0]
    return f"backup {dest} failed verification: {first['check']}: {first['detail']}"


def _pg_backup(db, dest: str) -> dict:
    """pg_dump of the ledger's schema, taken in the very snapshot `verify` checked (exported to
    pg_dump), into a 0600 file; refused with the command to run when pg_dump is not on PATH."""
    schema = copying.schema(db)
    pgdump.tool("pg_dump", f"(umask 077 && {pgdump.shell(pgdump.dump_command(schema, dest, db.url))})")
    with db.snapshot():
        snapshot = pgdump.export_snapshot(db)
        result = verify(db)
        if not result["ok"]:
            raise DatabaseError(_failed_verification(dest, result))
        if os.path.exists(dest):
            _remove(dest)
        pgdump.dump(schema, dest, db.url, snapshot)
    return {"backup": dest, "verified": True, "entries": result["entries"], "members": result["members"]}


def _verified_copy(path: str) -> dict:
    """verify() on a copy, read-only and leaving no -wal/-shm beside it."""
    copy = Database(peek(path), path)
    try:
        return verify(copy)
    finally:
        copy.close()


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def restore(src: str, dest: str, *, force: bool = False) -> dict:
    """Replace the database at `dest` with a verified copy of `src` (read without leaving a trace)."""
    if not os.path.exists(src):
        raise NotFound(f"{src}: no such file")
    if is_url(dest):
        return _pg_restore(src, dest, force)
    guard(dest, option="restore", inputs=[src])
    if os.path.exists(dest) and not force:
        raise Conflict(f"{dest} exists; restoring would overwrite it: pass --force")
    identify(dest)  # replaces a ledger (or an empty file), never another program's file
    found = identify(src)
    if found.kind != "ledger" or found.version > SCHEMA_VERSION:
        raise DatabaseError(f"{src} is not a loyaltyctl database this version can restore (schema {found.version})")
    if not os.path.exists(dest):
        create_private(dest)
    source = peek(src)
    try:
        target = sqlite3.connect(dest, timeout=30)
        try:
            source.backup(target)
        finally:
            target.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(storage_message(exc, dest) or f"restore into {dest} failed: {exc}") from None
    finally:
        source.close()
    return _verified_restore(src, dest)


def _verified_restore(src: str, dest: str) -> dict:
    restored = open_db(dest)
    try:
        result = verify(restored)
    finally:
        restored.close()
    if not result["ok"]:
        raise DatabaseError(f"restored {restored.path} fails verification: {result['violations'][0]['detail']}")
    return {"restored": restored.path, "from": src, "entries": result["entries"], "members": result["members"]}


def _pg_restore(src: str, url: str, force: bool) -> dict:
    """pg_restore a `backup` archive into the URL's schema, in one transaction: an empty schema,
    or (--force) one holding a ledger, whose tables the archive's replace. Then verify."""
    schema, occupied = _restore_target(url, force)
    by_hand = pgdump.shell(pgdump.restore_command(src, url, occupied)) + f" && loyaltyctl --db {pgdump.shell([url])} verify"
    pg_restore = pgdump.tool("pg_restore", by_hand)
    archived, listing = pgdump.archive_schema(src, pg_restore)
    if archived != schema:
        raise DatabaseError(f"{src} holds the ledger of schema {archived!r} and pg_restore puts it back there, but "
                            f"the target's schema is {schema!r}: use a URL whose search_path is {archived} "
                            f"(?options=-csearch_path%3D{archived})")
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".list") as toc:
        toc.write("\n".join(listing) + "\n")
        toc.flush()
        pgdump.restore(src, url, occupied, toc.name, pg_restore)
    return _verified_restore(src, url)


def _restore_target(url: str, force: bool) -> tuple[str, bool]:
    """The target's schema, and whether it holds a ledger (to replace: only with --force)."""
    target = peek_ledger(url)
    try:
        schema = copying.schema(target)
        if schema is None:
            raise DatabaseError(f"{target.path}: its search_path names no schema that exists; create the schema first")
        ledger = schema_version(target) is not None
        if not ledger and copying.tables(target):
            raise DatabaseError(f"{target.path}: its schema {schema!r} holds other tables and no loyaltyctl ledger; "
                                "restore into an empty schema or database")
        if ledger and not force:
            raise Conflict(f"{target.path} holds a ledger; restoring would overwrite it: pass --force")
        return schema, ledger
    finally:
        target.close()


def erase_member(db: Database, member_id: str) -> dict:
    """Remove a member's personal data: name, email, NPS comments (and their JSON copies), and
    the name or email wherever free text quotes them (reasons, comments, request copies);
    then scrub the old text from the file and its WAL (SQLite), or VACUUM the tables changed
    (PostgreSQL: what VACUUM cannot reach is documented in `member erase --help`).
    The ledger's figures stay exact."""
    with db.write():
        member = member_store.member(db, member_id)
        if member is None:
            raise NotFound(f"unknown member {member_id!r}")
        if member.erased_at:
            return {"member_id": member_id, "erased_at": member.erased_at, "status": "already erased"}
        at = now_ts()
        checks.secure_delete(db)
        comments = member_store.erase(db, member_id, ERASED, at)
        quotes, tables = _scrub_quotes(db, [v for v in (member.name, member.email)
                                             if v and len(v.strip()) >= MIN_QUOTED])
    result = {"member_id": member_id, "erased_at": at, "status": "erased", "comments": comments, "quotes": quotes}
    if db.dialect.name == "sqlite":
        return result | {"scrubbed": checks.scrub_log(db)}
    vacuumed = sorted({"members", "nps_responses"} | tables)
    checks.vacuum(db, vacuumed)
    return result | {"scrubbed": False, "vacuumed": vacuumed}


MIN_QUOTED = 3  # shorter names are not looked for in other text: they would match ordinary words


def _scrub_quotes(db: Database, values: list[str]) -> tuple[int, set[str]]:
    """Replace the erased values where free text quotes them (as whole words, in any case);
    returns how many cells changed, and in which tables."""
    if not values:
        return 0, set()
    words = re.compile("|".join(rf"(?<!\w){re.escape(v.strip())}(?!\w)" for v in values), re.IGNORECASE)
    needles = {v.strip() for v in values} | {json.dumps(v.strip())[1:-1] for v in values}  # JSON escapes non-ASCII
    changed, tables = 0, set()
    for cell in member_store.free_texts_quoting(db, sorted(needles)):
        text = _redacted(cell, words)
        if text != cell.text:
            member_store.set_free_text(db, cell, text)
            changed += 1
            tables.add(cell.table)
    return changed, tables


def _redacted(cell, words: "re.Pattern") -> str:
    if cell.column != "content":
        return words.sub(ERASED, cell.text)
    fields = json.loads(cell.text)  # a request's JSON copy: its strings, re-written as it was written
    return json.dumps({k: words.sub(ERASED, v) if isinstance(v, str) else v for k, v in fields.items()},
                      sort_keys=True)


def copy_ledger(source: str, target: str) -> dict:
    """Copy the whole ledger at `source` into `target` (a file or a PostgreSQL URL, either
    way), which must hold no data: same ids, every table in foreign-key order, in one
    transaction on the target, verified before it commits. The source is only read, in one
    snapshot, so others may keep writing to it meanwhile."""
    if not is_url(source) and not is_url(target) and same_file(source, target):
        raise InputError(f"SOURCE and TARGET are the same ledger ({target}); copy to another file or URL")
    src = peek_ledger(source)
    if src is None:
        raise NotFound(f"{source} is not a loyaltyctl ledger (it does not exist or is empty)")
    try:
        _copyable(src, source)
        _check_target(src, target)
        return _copy_into(src, target)
    finally:
        src.close()


def _copyable(src, source: str) -> None:
    version = schema_version(src)
    if version is None:
        raise DatabaseError(f"{src.path} has no loyaltyctl ledger")
    if version > SCHEMA_VERSION:
        raise DatabaseError(f"{src.path} has schema version {version}, newer than this loyaltyctl supports "
                            f"({SCHEMA_VERSION}); copy it with a loyaltyctl as new as the ledger")
    if version < SCHEMA_VERSION:
        raise DatabaseError(f"{src.path} has schema version {version}, older than this loyaltyctl's "
                            f"({SCHEMA_VERSION}), and db copy never writes to its source: upgrade it first "
                            f"with `loyaltyctl --db {src.path} verify`")


def _check_target(src, target: str) -> None:
    """Refuse, before anything is written, a target that is the source or holds data."""
    dst = peek_ledger(target)
    if dst is None:
        return
    try:
        if (src.dialect.name == dst.dialect.name == "postgresql" and copying.same_database(src, dst)
                and copying.schema(src) == copying.schema(dst)):
            raise InputError(f"SOURCE and TARGET are the same ledger ({dst.path}); copy to another schema or database")
        if schema_version(dst) is not None and copying.has_data(dst):
            raise Conflict(f"{dst.path} already holds a ledger with data; db copy only fills an empty one "
                           "(a new file, an empty schema, or a ledger just made by init)")
    finally:
        dst.close()


def _copy_into(src, target: str) -> dict:
    created = not is_url(target) and not os.path.exists(target)
    try:
        dst = open_db(target, create=True)
    except BaseException:
        if created:
            _remove(target)
        raise
    try:
        with src.snapshot(), dst.write(foreign_keys=False):  # verify() checks every reference before commit
            dst.lock_all()
            if copying.has_data(dst):  # filled meanwhile
                raise Conflict(f"{dst.path} already holds a ledger with data; db copy only fills an empty one")
            copied = _copy_tables(src, dst)
            copying.advance_ids(dst)
            result = verify(dst)
            if not result["ok"]:
                first = result["violations"][0]
                raise DatabaseError(f"the copy fails verification ({first['check']}: {first['detail']}); nothing "
                                    f"was written to {dst.path}: check the source with `loyaltyctl verify`")
    except BaseException:
        dst.close()
        if created:
            _remove(target)
        raise
    try:
        copying.gather_statistics(dst)
    finally:
        dst.close()
    return {"source": src.path, "target": dst.path, "rows": copied, "verified": True} | {
        k: result[k] for k in ("entries", "members", "lots")}


def _copy_tables(src, dst) -> int:
    have = set(copying.tables(src))
    copied = 0
    for table in copying.tables(dst):
        names = copying.columns(dst, table)
        if table not in have or set(names) - set(copying.columns(src, table)):
            raise DatabaseError(f"{src.path} lacks {table} as this loyaltyctl has it; cannot copy")
        copied += dst.load(table, names, copying.rows(src, table, names))
    return copied
