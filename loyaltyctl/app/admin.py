"""Admin use cases: verify the ledger, back up and restore, erase a member's personal data."""

from __future__ import annotations

import json
import os
import sqlite3

from ..core.values import now_ts
from ..errors import Conflict, DatabaseError, InputError, NotFound
from ..store import members as member_store
from ..store import verify as checks
from ..store.connection import SCHEMA_VERSION, Database, open_db

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
    """A consistent copy (VACUUM INTO) taken while others may keep writing, then verified."""
    if os.path.exists(dest):
        if not force:
            raise Conflict(f"{dest} already exists; pass --force to overwrite it")
        os.remove(dest)
    parent = os.path.dirname(os.path.abspath(dest))
    if not os.path.isdir(parent):
        raise InputError(f"{dest}: directory {parent} does not exist")
    old = os.umask(0o077)  # the copy is created readable by its owner only
    try:
        db.execute("VACUUM INTO ?", (dest,))
    except sqlite3.DatabaseError as exc:
        _remove(dest)
        raise DatabaseError(f"backup to {dest} failed: {exc}") from None
    finally:
        os.umask(old)
    copy = open_db(dest)
    try:
        result = verify(copy)
    finally:
        copy.close()
    if not result["ok"]:
        _remove(dest)  # never leave an unverified file that looks like a backup
        raise DatabaseError(f"backup {dest} failed verification: {result['violations'][0]['check']}: "
                            f"{result['violations'][0]['detail']}")
    return {"backup": dest, "verified": True, "entries": result["entries"], "members": result["members"]}


def _remove(path: str) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)


def restore(src: str, dest: str, *, force: bool = False) -> dict:
    """Replace the database at `dest` with a verified copy of `src`."""
    if not os.path.exists(src):
        raise NotFound(f"{src}: no such file")
    if os.path.exists(dest) and not force:
        raise Conflict(f"{dest} exists; restoring would overwrite it: pass --force")
    try:
        source = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
        version = source.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"{src} is not a database: {exc}") from None
    if version == 0 or version > SCHEMA_VERSION:
        source.close()
        raise DatabaseError(f"{src} is not a loyaltyctl database this version can restore (schema {version})")
    if not os.path.exists(dest):
        fd = os.open(dest, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        os.close(fd)
    target = sqlite3.connect(dest, timeout=30)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()
    restored = open_db(dest)
    try:
        result = verify(restored)
    finally:
        restored.close()
    if not result["ok"]:
        raise DatabaseError(f"restored {dest} fails verification: {result['violations'][0]['detail']}")
    return {"restored": dest, "from": src, "entries": result["entries"], "members": result["members"]}


def erase_member(db: Database, member_id: str) -> dict:
    """Remove a member's personal data (name, email, free-text comments); the ledger stays exact."""
    with db.write():
        member = member_store.member(db, member_id)
        if member is None:
            raise NotFound(f"unknown member {member_id!r}")
        if member.erased_at:
            return {"member_id": member_id, "erased_at": member.erased_at, "status": "already erased"}
        at = now_ts()
        checks.secure_delete(db)
        comments = member_store.erase(db, member_id, ERASED, at)
    busy = not checks.scrub_log(db)
    return {"member_id": member_id, "erased_at": at, "status": "erased", "comments": comments,
            "scrubbed": not busy}
