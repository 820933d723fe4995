"""Program versions: every applied definition is kept; a program's current version is the latest."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.program import Program, unknown_program
from .connection import Database


@dataclass(frozen=True)
class Applied:
    """A program's current version as stored."""

    code: str
    name: str
    version: int
    version_id: int
    definition: str
    applied_at: str
    members: int


def current(db: Database, code: str | None = None) -> list[Applied]:
    """Current versions (of one program, or all by code), with their member counts."""
    sql = """SELECT p.code, p.name, p.current_version, v.id, v.definition, v.applied_at,
                    (SELECT count(*) FROM enrollments e WHERE e.program_code = p.code)
             FROM programs p JOIN program_versions v ON v.program_code = p.code AND v.version = p.current_version"""
    if code is not None:
        return [Applied(*r) for r in db.all(sql + " WHERE p.code = ?", (code,))]
    return [Applied(*r) for r in db.all(sql + " ORDER BY p.code")]


def codes(db: Database) -> list[str]:
    return [r[0] for r in db.all("SELECT code FROM programs ORDER BY code")]


_PROGRAMS = """SELECT p.code, p.current_version, v.id, v.definition FROM programs p
               JOIN program_versions v ON v.program_code = p.code AND v.version = p.current_version"""


def programs(db: Database) -> dict[str, Program]:
    """Every applied program's current version, by code."""
    rows = db.all(_PROGRAMS + " ORDER BY p.code")
    return {code: Program.from_json(definition, version, vid) for code, version, vid, definition in rows}


def program(db: Database, code: str) -> Program | None:
    row = db.one(_PROGRAMS + " WHERE p.code = ?", (code,))
    return None if row is None else Program.from_json(row[3], row[1], row[2])


def require_program(db: Database, code: str) -> Program:
    """The current version of a program; an unknown code is an error naming the known ones."""
    found = program(db, code)
    if found is None:
        raise unknown_program(code, [r[0] for r in db.all("SELECT code FROM programs")])
    return found


def definition_of_version(db: Database, version_id: int) -> tuple[int, str]:
    """(version number, canonical JSON) of a stored version."""
    row = db.one("SELECT version, definition FROM program_versions WHERE id = ?", (version_id,))
    return row[0], row[1]


def insert_version(db: Database, code: str, name: str, definition: str, source: str, at: str) -> int:
    current_version = db.scalar("SELECT current_version FROM programs WHERE code = ?", (code,))
    version = (current_version or 0) + 1
    if current_version is None:
        db.execute("INSERT INTO programs (code, name, current_version) VALUES (?, ?, ?)", (code, name, version))
    else:
        db.execute("UPDATE programs SET name = ?, current_version = ? WHERE code = ?", (name, version, code))
    db.execute(
        "INSERT INTO program_versions (program_code, version, definition, source, applied_at) VALUES (?, ?, ?, ?, ?)",
        (code, version, definition, source, at),
    )
    return version


def ever_defined(db: Database, code: str | None = None) -> list[str]:
    """Every definition any version of the program (of any program) had."""
    sql, params = "SELECT definition FROM program_versions", ()
    if code:
        sql, params = sql + " WHERE program_code = ?", (code,)
    return [r[0] for r in db.all(sql + " ORDER BY id", params)]


def retime_inactivity(db: Database, code: str, days: int | None, at: str) -> int:
    """A version changing the inactivity rule takes effect at `at`: the program's lots alive
    then take the new inactivity_days (None: no inactivity expiry) and count from `at`.
    Returns how many lots it touched."""
    from .fragments import fragments

    f = fragments(db.dialect)
    cur = db.execute(
        f"""UPDATE lots SET inactivity_days = :d, inactivity_from = CASE WHEN :d IS NULL THEN NULL ELSE :t END
            WHERE id IN (SELECT l.id FROM lots l JOIN enrollments e ON e.id = l.enrollment_id
                         WHERE e.program_code = :code AND l.remaining > 0 AND l.earned_at <= :t AND {f.lot_alive})""",
        {"d": days, "t": at, "code": code})
    return cur.rowcount


def inactive_holders(db: Database, code: str, since: str, at: str) -> tuple[int, int]:
    """Members of a program holding points alive at `at` with no earn or redemption since
    `since`, and those points."""
    from .fragments import fragments

    f = fragments(db.dialect)
    row = db.one(
        f"""SELECT count(DISTINCT l.enrollment_id), COALESCE(SUM(l.remaining), 0)
            FROM lots l JOIN enrollments e ON e.id = l.enrollment_id
            WHERE e.program_code = :code AND l.remaining > 0 AND l.earned_at <= :t AND {f.lot_alive}
              AND NOT EXISTS (SELECT 1 FROM entries a WHERE a.enrollment_id = l.enrollment_id
                              AND a.kind IN ('earn', 'redeem') AND a.effective_at > :since AND a.effective_at <= :t)""",
        {"code": code, "t": at, "since": since})
    return row[0], row[1]


def member_tags(db: Database, code: str, at: str) -> list[tuple[str, ...]]:
    """The tags of each member enrolled in a program by `at`."""
    rows = db.all("SELECT tags FROM enrollments WHERE program_code = ? AND joined_at <= ? ORDER BY id", (code, at))
    return [tuple(t for t in r[0].split(";") if t) for r in rows]
