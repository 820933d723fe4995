"""NPS surveys: record the answers to "How likely are you to recommend us (0-10)? Why?".
Reports on them are in reports/nps.py."""

from __future__ import annotations

import json
import os

from ..core.values import not_future, now_ts, optional_text, parse_key, ts_or_now
from ..errors import Conflict, InputError, NotFound
from ..store import members as member_store
from ..store import nps as sql
from ..store.connection import Database
from ..store.programs import require_program

def parse_score(value) -> int:
    text = str(value).strip()
    if not text.isdigit() or int(text) > 10:
        raise InputError(f"{str(value)[:40]!r} is not a whole number from 0 to 10", field="score")
    return int(text)


def record(db: Database, member_id: str | None = None, *, score, account: str | None = None,
           comment: str | None = None, at: str | None = None, program: str | None = None,
           response_id: str | None = None) -> dict:
    """One survey answer, from a member (their account by default) or from an account.
    Repeating it with the same --response-id and content records nothing new."""
    score = parse_score(score)
    member_id, account = optional_text(member_id, "member_id"), optional_text(account, "account")
    comment, program = optional_text(comment, "comment"), optional_text(program, "program")
    if member_id is None and account is None:
        raise InputError("give a MEMBER_ID or --account NAME")
    if response_id is not None:
        response_id = parse_key(response_id, "response_id")
    when = not_future(ts_or_now(at, "answered_at"), "answered_at")
    with db.write():
        if program:
            require_program(db, program)
        if member_id is not None:
            member = member_store.member(db, member_id)
            if member is None:
                raise NotFound(f"unknown member {member_id!r}")
            codes = [e.program for e in member_store.enrollments_of(db, member_id)]
            if program and program not in codes:
                raise NotFound(f"member {member_id!r} is not enrolled in program {program!r}")
            if not program and len(codes) == 1:
                program = codes[0]
            account = account or member.account
        content = json.dumps({k: v for k, v in {"member": member_id, "program": program, "account": account,
                                                 "score": score, "comment": comment}.items() if v is not None},
                             sort_keys=True)
        result = {"response_id": response_id, "member_id": member_id, "program": program, "account": account,
                  "score": score, "group": group_of(score), "comment": comment, "answered_at": when}
        if response_id is not None:
            existing = sql.nps_response(db, response_id)
            if existing is not None:
                erased = existing["content"] is None  # `member erase` took the copy to compare with
                moved = at is not None and existing["answered_at"] != when
                if not erased and (existing["content"] != content or moved):
                    raise Conflict(f"response {response_id!r} was already recorded with different content")
                return result | {"status": "duplicate", "answered_at": existing["answered_at"]}
        else:
            response_id = f"nps-{os.urandom(6).hex()}"
        sql.insert_nps(db, [(response_id, member_id, program, account, score, comment, content, when, now_ts())])
    return result | {"status": "recorded", "response_id": response_id}


def group_of(score: int) -> str:
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"
