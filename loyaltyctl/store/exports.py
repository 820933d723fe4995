"""SQL of the exports: streamed cursors, never whole tables in memory."""

from __future__ import annotations

from typing import Iterator

from .connection import Database
from .fragments import tier_at
from .members import balances_at

LEDGER_COLUMNS = ["txn_id", "member_id", "program", "kind", "rule", "points", "amount", "partner", "event",
                  "reward", "reason", "ref_txn_id", "program_version", "effective_at", "recorded_at"]
MEMBER_COLUMNS = ["member_id", "program", "name", "email", "account", "tags", "referred_by", "joined_at", "tier"]


def ledger_rows(db: Database, program: str | None, as_of: str | None) -> Iterator:
    sql = """SELECT e.txn_id, n.member_id, n.program_code AS program, e.kind, e.rule_kind AS rule, e.points,
                    e.amount_e4, e.partner, e.event, e.reward, e.reason, r.txn_id AS ref_txn_id,
                    v.version AS program_version, e.effective_at, e.recorded_at
             FROM entries e
             JOIN enrollments n ON n.id = e.enrollment_id
             JOIN program_versions v ON v.id = e.program_version_id
             LEFT JOIN entries r ON r.id = e.ref_entry_id
             WHERE 1 = 1"""
    params: list = []
    if program:
        sql += " AND n.program_code = ?"
        params.append(program)
    if as_of:
        sql += " AND e.effective_at <= ?"
        params.append(as_of)
    return db.execute(sql + " ORDER BY e.id", params)


def member_rows(db: Database, program: str | None, as_of: str | None) -> Iterator:
    sql = f"""SELECT n.member_id, n.program_code AS program, m.name, m.email, m.account, n.tags, n.referred_by,
                    n.joined_at,
                    {tier_at("n.id")} AS tier
             FROM enrollments n JOIN members m ON m.member_id = n.member_id
             WHERE n.joined_at <= :t"""
    params: dict = {"t": as_of}
    if program:
        sql += " AND n.program_code = :program"
        params["program"] = program
    return db.execute(sql + " ORDER BY n.member_id, n.program_code", params)


def balance_rows(db: Database, program: str | None, as_of: str):
    return balances_at(db, as_of, program)
