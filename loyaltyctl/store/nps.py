"""SQL of NPS surveys: responses, counts per group, comments."""

from __future__ import annotations

from .connection import Database


def _program(sql: str, params: dict, program: str | None, column: str) -> str:
    if program:
        params["program"] = program
        return sql + f" AND {column} = :program"
    return sql


def nps_response(db: Database, response_id: str):
    return db.one("SELECT * FROM nps_responses WHERE response_id = ?", (response_id,))


def insert_nps(db: Database, rows: list[tuple]) -> None:
    """rows: (response_id, member_id, program_code, account, score, comment, content, answered_at, recorded_at)."""
    db.executemany(
        """INSERT INTO nps_responses (response_id, member_id, program_code, account, score, comment, content,
                                      answered_at, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        rows,
    )


# Tier of the response's member in the response's program when they answered.
_TIER_AT_ANSWER = """(SELECT tc.tier FROM tier_changes tc JOIN enrollments e ON e.id = tc.enrollment_id
                      WHERE e.member_id = r.member_id AND e.program_code = r.program_code
                        AND tc.effective_at <= r.answered_at
                      ORDER BY tc.effective_at DESC, tc.id DESC LIMIT 1)"""
NPS_KEYS = {
    None: [],
    "program": ["r.program_code"],
    "tier": ["r.program_code", _TIER_AT_ANSWER],
    "account": ["r.account"],
    "month": ["substr(r.answered_at, 1, 7)"],
}


def nps_counts(db: Database, by: str | None, since: str, until: str, program: str | None,
               account: str | None) -> list:
    """(k0[, k1], responses, promoters, passives, detractors) per group of `by`."""
    keys = NPS_KEYS[by]
    cols = "".join(f"{k} AS k{i}, " for i, k in enumerate(keys))
    sql = f"""SELECT {cols} count(*) AS responses,
                     COALESCE(SUM(CASE WHEN r.score >= 9 THEN 1 ELSE 0 END), 0) AS promoters,
                     COALESCE(SUM(CASE WHEN r.score BETWEEN 7 AND 8 THEN 1 ELSE 0 END), 0) AS passives,
                     COALESCE(SUM(CASE WHEN r.score <= 6 THEN 1 ELSE 0 END), 0) AS detractors
              FROM nps_responses r WHERE r.answered_at >= :since AND r.answered_at < :until"""
    params: dict = {"since": since, "until": until}
    sql = _program(sql, params, program, "r.program_code")
    if account:
        sql += " AND r.account = :account"
        params["account"] = account
    if keys:
        sql += " GROUP BY " + ", ".join(f"k{i}" for i in range(len(keys)))
    return [tuple(r) for r in db.all(sql, params)]


def accounts(db: Database) -> list[str]:
    """Accounts known from members or responses (groups that may have no answers)."""
    return [r[0] for r in db.all(
        """SELECT account FROM members WHERE account IS NOT NULL
           UNION SELECT account FROM nps_responses WHERE account IS NOT NULL ORDER BY 1""")]


def nps_comments(db: Database, low: int, high: int, since: str, until: str, program: str | None,
                 account: str | None) -> list:
    sql = """SELECT r.response_id, r.answered_at, r.member_id, m.name, r.program_code AS program, r.account,
                    r.score, r.comment
             FROM nps_responses r LEFT JOIN members m ON m.member_id = r.member_id
             WHERE r.comment IS NOT NULL AND r.comment <> '' AND r.score BETWEEN :low AND :high
               AND r.answered_at >= :since AND r.answered_at < :until"""
    params: dict = {"low": low, "high": high, "since": since, "until": until}
    sql = _program(sql, params, program, "r.program_code")
    if account:
        sql += " AND r.account = :account"
        params["account"] = account
    return db.all(sql + " ORDER BY r.answered_at DESC, r.id DESC", params)


