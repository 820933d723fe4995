"""PostgreSQL backups: `backup` and `restore` wrap pg_dump and pg_restore (custom format, the
ledger's schema only) when they are on PATH; otherwise the command to run is the message."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from urllib.parse import urlsplit, urlunsplit

from ..errors import DatabaseError

# pg_restore --list: "263; 1259 185016 TABLE s1 anonymous_sales postgres"
_TOC_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE (\S+) (\S+) \S+$")  # not TABLE DATA
_TOC_SCHEMA = re.compile(r"^\d+; \d+ \d+ (SCHEMA|COMMENT - SCHEMA) ")


def without_password(url: str) -> str:
    """The URL to show in a command to run: no password (libpq reads ~/.pgpass or PGPASSWORD)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", "@")))


def dump_command(schema: str, dest: str, url: str, snapshot: str | None = None, tool: str = "pg_dump") -> list[str]:
    command = [tool, "--format=custom", f"--schema={schema}", "-f", dest]
    return command + ([f"--snapshot={snapshot}"] if snapshot else []) + [url]


def restore_command(src: str, url: str, clean: bool, listing: str | None = None, tool: str = "pg_restore") -> list[str]:
    command = [tool, "--single-transaction", "--no-owner", "--no-privileges", "--exit-on-error"]
    command += ["--clean", "--if-exists"] if clean else []
    return command + ([f"--use-list={listing}"] if listing else []) + [f"--dbname={url}", src]


def shell(command: list[str]) -> str:
    """A command as one would type it (the URL without its password)."""
    return " ".join(shlex.quote(without_password(a) if "://" in a else a) for a in command)


def tool(name: str, by_hand: str) -> str:
    """The program's path on PATH, or a DatabaseError giving the command to run by hand."""
    found = shutil.which(name)
    if found is None:
        raise DatabaseError(f"{name} is not on PATH (install the PostgreSQL client tools); run: {by_hand}")
    return found


def export_snapshot(db) -> str:
    """The current transaction's snapshot, for pg_dump --snapshot (inside db.snapshot())."""
    return db.scalar("SELECT pg_export_snapshot()")


def dump(schema: str, dest: str, url: str, snapshot: str) -> None:
    """pg_dump the schema as it stood at `snapshot` (the one verified) into a new 0600 file."""
    pg_dump = tool("pg_dump", f"(umask 077 && {shell(dump_command(schema, dest, url))})")
    old = os.umask(0o077)
    try:
        _run(dump_command(schema, dest, url, snapshot, pg_dump), f"backup to {dest}")
    except BaseException:
        if os.path.isfile(dest):
            os.remove(dest)
        raise
    finally:
        os.umask(old)
    os.chmod(dest, 0o600)


def archive_schema(src: str, pg_restore: str) -> tuple[str, list[str]]:
    """The one schema a loyaltyctl backup holds, and its table of contents without the
    schema's own entries (the target schema exists already)."""
    listing = _run([pg_restore, "--list", src], f"reading {src}").splitlines()
    found = [m.groups() for line in listing if (m := _TOC_TABLE.match(line))]
    schemas = {schema for schema, _ in found}
    if len(schemas) != 1 or "loyaltyctl_meta" not in {table for _, table in found}:
        raise DatabaseError(f"{src} is not a loyaltyctl backup (a pg_dump of one ledger's schema)")
    return schemas.pop(), [line for line in listing if not _TOC_SCHEMA.match(line)]


def restore(src: str, url: str, clean: bool, listing_path: str, pg_restore: str) -> None:
    _run(restore_command(src, url, clean, listing_path, pg_restore), f"restore from {src}")


def _run(command: list[str], what: str) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise DatabaseError(f"{what}: cannot run {command[0]}: {exc.strerror}") from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        detail = lines[0] if lines else f"exit status {done.returncode}"
        raise DatabaseError(f"{what} failed: {detail}")
    return done.stdout
