"""Finding what a command is about: a program's current version, a member's enrollment.
Kept apart from app/ledger so that read commands (`member show`, `history`) do not import
the posting engine."""

from __future__ import annotations

from ..core.program import Program
from ..core.records import Enrollment
from ..errors import InputError, NotFound
from ..store import members as member_store
from ..store import programs as program_store
from ..store.connection import Database


def program(db: Database, code: str) -> Program:
    """The current version of a program."""
    return program_store.require_program(db, code)


def resolve(db: Database, member_id: str, code: str | None) -> tuple[Enrollment, Program]:
    """The member's enrollment in the named program, or in their only program."""
    if code:
        p = program(db, code)
        enr = member_store.enrollment(db, member_id, code)
        if enr is None:
            if member_store.member(db, member_id) is None:
                raise NotFound(f"unknown member {member_id!r}")
            raise NotFound(f"member {member_id!r} is not enrolled in program {code!r}")
        return enr, p
    mine = member_store.enrollments_of(db, member_id)
    if not mine:
        raise NotFound(f"unknown member {member_id!r}")
    if len(mine) > 1:
        codes = ", ".join(e.program for e in mine)
        raise InputError(f"member {member_id!r} is in several programs ({codes}); choose one with --program")
    return mine[0], program(db, mine[0].program)
