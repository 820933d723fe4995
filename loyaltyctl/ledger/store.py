"""Every SQL statement of the ledger. Functions take a Database and plain values.

Kept close to standard SQL (no UPSERT tricks, no JSON functions) so that another
backend can implement the same functions."""

from __future__ import annotations

import json
from typing import Iterable

from .db import Database

# --- programs ---------------------------------------------------------------


def program_row(db: Database, code: str):
    return db.one(
        """SELECT p.code, p.name, p.current_version, v.id AS version_id, v.definition, v.applied_at
           FROM programs p JOIN program_versions v
             ON v.program_code = p.code AND v.version = p.current_version
           WHERE p.code = ?""",
        (code,),
    )


def program_rows(db: Database) -> list:
    return db.all(
        """SELECT p.code, p.name, p.current_version, v.id AS version_id, v.definition, v.applied_at,
                  (SELECT count(*) FROM enrollments e WHERE e.program_code = p.code) AS members
           FROM programs p JOIN program_versions v
             ON v.program_code = p.code AND v.version = p.current_version
           ORDER BY p.code"""
    )


def program_version(db: Database, version_id: int):
    return db.one("SELECT * FROM program_versions WHERE id = ?", (version_id,))


def insert_program_version(db: Database, code: str, name: str, definition: str, source: str, at: str) -> int:
    current = db.scalar("SELECT current_version FROM programs WHERE code = ?", (code,))
    version = (current or 0) + 1
    if current is None:
        db.execute("INSERT INTO programs (code, name, current_version) VALUES (?, ?, ?)", (code, name, version))
    else:
        db.execute("UPDATE programs SET name = ?, current_version = ? WHERE code = ?", (name, version, code))
    db.execute(
        "INSERT INTO program_versions (program_code, version, definition, source, applied_at) VALUES (?, ?, ?, ?, ?)",
        (code, version, definition, source, at),
    )
    return version


# --- members and enrollments --------------------------------------------------


def member_row(db: Database, member_id: str):
    return db.one("SELECT * FROM members WHERE member_id = ?", (member_id,))


def insert_member(db: Database, member_id: str, name, email, account, at: str) -> None:
    db.execute(
        "INSERT INTO members (member_id, name, email, account, created_at) VALUES (?, ?, ?, ?, ?)",
        (member_id, name, email, account, at),
    )


def update_member_contact(db: Database, member_id: str, name, email, account) -> None:
    """Fill in contact fields given at a later enrollment (members, not the ledger)."""
    db.execute(
        """UPDATE members SET name = COALESCE(?, name), email = COALESCE(?, email),
                              account = COALESCE(?, account) WHERE member_id = ?""",
        (name, email, account, member_id),
    )


def enrollment(db: Database, member_id: str, program: str):
    return db.one(
        "SELECT * FROM enrollments WHERE member_id = ? AND program_code = ?", (member_id, program)
    )


def enrollment_by_id(db: Database, enrollment_id: int):
    return db.one("SELECT * FROM enrollments WHERE id = ?", (enrollment_id,))


def enrollments_of(db: Database, member_id: str) -> list:
    return db.all("SELECT * FROM enrollments WHERE member_id = ? ORDER BY program_code", (member_id,))


def insert_enrollment(db: Database, member_id, program, tags: str, referred_by, joined_at, at) -> int:
    cur = db.execute(
        """INSERT INTO enrollments (member_id, program_code, tags, referred_by, joined_at, recorded_at)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (member_id, program, tags, referred_by, joined_at, at),
    )
    return cur.lastrowid


def has_partner_rules(db: Database, program: str | None = None) -> bool:
    """Whether any version of the program (of any program) has a partner earn rule; if not,
    every purchase recorded under it is a spend purchase."""
    sql, params = "SELECT definition FROM program_versions", ()
    if program:
        sql, params = sql + " WHERE program_code = ?", (program,)
    return any(spec.get("rule") == "partner"
               for (definition,) in db.all(sql, params) for spec in json.loads(definition).get("earn") or [])


# --- entries, lots, moves -------------------------------------------------------

ENTRY_COLUMNS = (
    "txn_id", "enrollment_id", "kind", "rule_kind", "rule_index", "program_version_id", "points",
    "uncovered", "amount_e4", "rate", "tier", "multiplier", "partner", "event", "reward", "reason",
    "ref_entry_id", "content", "effective_at", "recorded_at",
)
_INSERT_ENTRY = (
    f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({', '.join('?' for _ in ENTRY_COLUMNS)})"
)


def insert_entry(db: Database, **fields) -> int:
    cur = db.execute(_INSERT_ENTRY, tuple(fields.get(c) if c != "uncovered" else fields.get(c, 0) for c in ENTRY_COLUMNS))
    db.execute(
        "UPDATE enrollments SET points_total = points_total + ?, uncovered = uncovered + ? WHERE id = ?",
        (fields["points"], fields.get("uncovered", 0), fields["enrollment_id"]),
    )
    return cur.lastrowid


def entry_by_txn(db: Database, txn_id: str):
    return db.one("SELECT * FROM entries WHERE txn_id = ?", (txn_id,))


def entry_by_id(db: Database, entry_id: int):
    return db.one("SELECT * FROM entries WHERE id = ?", (entry_id,))


def txn_exists(db: Database, txn_id: str) -> bool:
    return db.one("SELECT 1 FROM entries WHERE txn_id = ?", (txn_id,)) is not None


def refunds_of(db: Database, entry_id: int):
    """Totals of earlier refunds of a purchase (amount, points) or count for a redemption."""
    return db.one(
        """SELECT COALESCE(SUM(-amount_e4), 0) AS amount_e4, COALESCE(SUM(-points), 0) AS points,
                  count(*) AS n
           FROM entries WHERE ref_entry_id = ? AND kind = 'refund'""",
        (entry_id,),
    )


def insert_lot(db: Database, enrollment_id: int, entry_id: int, points: int, earned_at: str, expires_at,
               inactivity_days: int | None = None) -> int:
    cur = db.execute(
        """INSERT INTO lots (enrollment_id, entry_id, points, earned_at, expires_at, remaining, inactivity_days)
           VALUES (?, ?, ?, ?, ?, ?, ?)""",
        (enrollment_id, entry_id, points, earned_at, expires_at, points, inactivity_days),
    )
    return cur.lastrowid


def insert_moves(db: Database, entry_id: int, effective_at: str, moves: Iterable[tuple[int, int]]) -> None:
    """Record signed point movements on lots and keep the lots' cached remainder."""
    moves = list(moves)
    db.executemany(
        "INSERT INTO lot_moves (lot_id, entry_id, points, effective_at) VALUES (?, ?, ?, ?)",
        [(lot_id, entry_id, points, effective_at) for lot_id, points in moves],
    )
    db.executemany("UPDATE lots SET remaining = remaining + ? WHERE id = ?", [(p, lot_id) for lot_id, p in moves])


def live_lots(db: Database, enrollment_id: int, at: str, first_lot: int | None = None) -> list[tuple[int, int]]:
    """(lot_id, remaining) of lots usable at `at`, soonest expiry first (never-expiring last);
    `first_lot` is put ahead of the rest (a refund claws back from its own lot first)."""
    rows = db.all(
        f"""SELECT l.id, l.remaining FROM lots l
            WHERE l.enrollment_id = :e AND l.remaining > 0 AND l.earned_at <= :t AND {LOT_ALIVE}
            ORDER BY CASE WHEN l.id = :first THEN 0 ELSE 1 END, {LOT_EXPIRY} IS NULL, {LOT_EXPIRY}, l.id""",
        {"e": enrollment_id, "t": at, "first": first_lot if first_lot is not None else -1},
    )
    return [(r[0], r[1]) for r in rows]


def lot_of_entry(db: Database, entry_id: int):
    return db.one("SELECT * FROM lots WHERE entry_id = ?", (entry_id,))


def moves_of_entry(db: Database, entry_id: int) -> list:
    """The entry's lot moves; expires_at is the lot's effective expiry (inactivity included)."""
    return db.all(
        f"""SELECT m.lot_id, m.points, {LOT_EXPIRY} AS expires_at, l.remaining, l.earned_at
           FROM lot_moves m JOIN lots l ON l.id = m.lot_id WHERE m.entry_id = ? ORDER BY m.id""",
        (entry_id,),
    )


def event_count(db: Database, enrollment_id: int, event: str, start: str | None, end: str | None) -> int:
    sql = "SELECT count(*) FROM entries WHERE enrollment_id = ? AND kind = 'earn' AND event = ?"
    params: list = [enrollment_id, event]
    if start:
        sql += " AND effective_at >= ? AND effective_at < ?"
        params += [start, end]
    return db.scalar(sql, params)


# --- state as of a moment --------------------------------------------------------

# Inactivity expiry. A lot with inactivity_days D expires at the first moment x + D where x is
# the lot's earning time or a later activity (an earn or redeem entry of the enrollment) and
# no activity follows x before x + D. Computed from the ledger alone (a LEAD over the member's
# activity times), so a balance as of T never depends on whether the expire job ran; while the
# member stays active it is a projection (last activity + D). Lots without inactivity_days
# take the fast path: their expiry is just expires_at.
INACTIVITY_DEADLINE = """(SELECT MIN(s.xp) FROM (
        SELECT strftime('%Y-%m-%dT%H:%M:%SZ', a.x, '+' || l.inactivity_days || ' days') AS xp,
               LEAD(a.x) OVER (ORDER BY a.x) AS nx
        FROM (SELECT l.earned_at AS x
              UNION ALL
              SELECT ae.effective_at FROM entries ae
              WHERE ae.enrollment_id = l.enrollment_id AND ae.kind IN ('earn', 'redeem')
                AND ae.effective_at > l.earned_at) a) s
    WHERE s.nx IS NULL OR s.nx >= s.xp)"""
# Effective expiry of lot `l` (NULL: never): the sooner of expires_at and the inactivity deadline.
LOT_EXPIRY = (f"(CASE WHEN l.inactivity_days IS NULL THEN l.expires_at"
              f" ELSE min(COALESCE(l.expires_at, '9'), {INACTIVITY_DEADLINE}) END)")
# Lot `l` not expired at :t (earned_at <= :t is checked apart).
LOT_ALIVE = (f"(l.expires_at IS NULL OR l.expires_at > :t)"
             f" AND (l.inactivity_days IS NULL OR {INACTIVITY_DEADLINE} > :t)")
# Lot `l` expired at :t.
LOT_EXPIRED = f"(l.expires_at <= :t OR (l.inactivity_days IS NOT NULL AND {INACTIVITY_DEADLINE} <= :t))"

_LOT_AT = "(l.points + COALESCE((SELECT SUM(m.points) FROM lot_moves m WHERE m.lot_id = l.id AND m.effective_at <= :t), 0))"
_LOT_AT_EXPIRY = (
    "(l.points + COALESCE((SELECT SUM(m.points) FROM lot_moves m"
    f" WHERE m.lot_id = l.id AND m.effective_at < {LOT_EXPIRY}), 0))"
)


def balance_at(db: Database, enrollment_id: int, t: str) -> int:
    """Points of lots alive at t, as they stood at t, plus any uncovered claw-back (debt)."""
    return db.scalar(
        f"""SELECT COALESCE((SELECT SUM({_LOT_AT}) FROM lots l
                     WHERE l.enrollment_id = :e AND l.earned_at <= :t AND {LOT_ALIVE}), 0)
                 + COALESCE((SELECT SUM(uncovered) FROM entries
                     WHERE enrollment_id = :e AND effective_at <= :t), 0)""",
        {"e": enrollment_id, "t": t},
    )


def counters_at(db: Database, enrollment_id: int, t: str, soon: str):
    """Lifetime counters as of t; `soon` bounds the 'expiring soon' window."""
    return db.one(
        f"""SELECT
              COALESCE(SUM(CASE WHEN kind IN ('earn', 'opening') THEN points END), 0) AS earned,
              COALESCE(-SUM(CASE WHEN rule_kind = 'redeem' THEN points END), 0) AS redeemed,
              COALESCE(-SUM(CASE WHEN kind = 'refund' AND rule_kind <> 'redeem' THEN points END), 0)
                  AS clawed_back,
              COALESCE(SUM(CASE WHEN kind = 'adjust' THEN points END), 0) AS adjusted,
              (SELECT COALESCE(SUM({_LOT_AT_EXPIRY}), 0) FROM lots l
                 WHERE l.enrollment_id = :e AND {LOT_EXPIRED}) AS expired,
              (SELECT COALESCE(SUM({_LOT_AT}), 0) FROM lots l
                 WHERE l.enrollment_id = :e AND l.earned_at <= :t
                   AND {LOT_EXPIRY} > :t AND {LOT_EXPIRY} <= :soon) AS expiring_soon,
              (SELECT MIN({LOT_EXPIRY}) FROM lots l
                 WHERE l.enrollment_id = :e AND l.earned_at <= :t
                   AND {LOT_EXPIRY} > :t AND {_LOT_AT} > 0) AS next_expiry,
              MAX(CASE WHEN kind IN ('earn', 'redeem') THEN effective_at END) AS last_activity
            FROM entries WHERE enrollment_id = :e AND effective_at <= :t""",
        {"e": enrollment_id, "t": t, "soon": soon},
    )


def tier_at(db: Database, enrollment_id: int, t: str):
    return db.one(
        """SELECT * FROM tier_changes WHERE enrollment_id = ? AND effective_at <= ?
           ORDER BY effective_at DESC, id DESC LIMIT 1""",
        (enrollment_id, t),
    )


def qualifying_sql(basis: str, scope: str = "") -> str:
    """SELECT enrollment_id, total: spend (amount_e4) or points earned by entries in the
    window (:start, :t], each net of its refunds recorded up to :t. `scope` narrows
    the enrollments (an SQL condition on p)."""
    value, refund = ("amount_e4", "amount_e4") if basis == "spend" else ("points", "points")
    kinds = "p.rule_kind = 'spend'" if basis == "spend" else "p.rule_kind IN ('spend', 'partner', 'event', 'referral')"
    return f"""SELECT p.enrollment_id,
                      SUM(p.{value} + COALESCE((SELECT SUM(r.{refund}) FROM entries r
                                                WHERE r.ref_entry_id = p.id AND r.kind = 'refund'
                                                  AND r.effective_at <= :t), 0)) AS total
               FROM entries p
               WHERE p.kind = 'earn' AND {kinds} AND p.effective_at > :start AND p.effective_at <= :t
                 {('AND ' + scope) if scope else ''}
               GROUP BY p.enrollment_id"""


def qualifying_total(db: Database, enrollment_id: int, basis: str, start: str, t: str) -> int:
    """Spend (amount_e4) or points earned in the window (start, t], net of refunds."""
    row = db.one(qualifying_sql(basis, "p.enrollment_id = :e"), {"e": enrollment_id, "start": start, "t": t})
    return row["total"] if row else 0


def insert_tier_change(db: Database, enrollment_id, tier, previous, source, reason, version_id, effective_at, at, until=None):
    db.execute(
        """INSERT INTO tier_changes (enrollment_id, tier, previous, source, reason, program_version_id,
                                     until, effective_at, recorded_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        (enrollment_id, tier, previous, source, reason, version_id, until, effective_at, at),
    )
    latest = db.one(
        "SELECT tier FROM tier_changes WHERE enrollment_id = ? ORDER BY effective_at DESC, id DESC LIMIT 1",
        (enrollment_id,),
    )
    db.execute("UPDATE enrollments SET tier = ? WHERE id = ?", (latest[0], enrollment_id))


def pending_expiries(db: Database, enrollment_id: int, t: str) -> list:
    """Lots expired at t whose expiry the expire job has not recorded yet, with the points it will take."""
    return db.all(
        f"""SELECT l.id, {LOT_EXPIRY} AS expires_at, {_LOT_AT_EXPIRY} AS points,
                   CASE WHEN l.expires_at IS NOT NULL AND l.expires_at <= {LOT_EXPIRY} THEN 'expiry'
                        ELSE 'inactivity' END AS rule
            FROM lots l
            WHERE l.enrollment_id = :e AND {LOT_EXPIRED}
              AND NOT EXISTS (SELECT 1 FROM lot_moves m JOIN entries e ON e.id = m.entry_id
                              WHERE m.lot_id = l.id AND e.kind = 'expire')
              AND {_LOT_AT_EXPIRY} > 0
            ORDER BY 2, l.id""",
        {"e": enrollment_id, "t": t},
    )


def history(db: Database, enrollment_id: int, t: str | None) -> list:
    sql = """SELECT e.*, v.version AS program_version,
                    (SELECT l.id FROM lots l WHERE l.entry_id = e.id) AS lot_id,
                    (SELECT l.expires_at FROM lots l WHERE l.entry_id = e.id) AS lot_expires_at,
                    r.txn_id AS ref_txn_id
             FROM entries e JOIN program_versions v ON v.id = e.program_version_id
             LEFT JOIN entries r ON r.id = e.ref_entry_id
             WHERE e.enrollment_id = ?"""
    params: list = [enrollment_id]
    if t:
        sql += " AND e.effective_at <= ?"
        params.append(t)
    return db.all(sql + " ORDER BY e.effective_at, e.id", params)


def moves_by_entry(db: Database, enrollment_id: int) -> dict[int, list]:
    rows = db.all(
        """SELECT m.entry_id, m.lot_id, m.points FROM lot_moves m JOIN lots l ON l.id = m.lot_id
           WHERE l.enrollment_id = ? ORDER BY m.id""",
        (enrollment_id,),
    )
    out: dict[int, list] = {}
    for entry_id, lot_id, points in rows:
        out.setdefault(entry_id, []).append((lot_id, points))
    return out


def tier_changes_of(db: Database, enrollment_id: int, t: str | None) -> list:
    sql = "SELECT * FROM tier_changes WHERE enrollment_id = ?"
    params: list = [enrollment_id]
    if t:
        sql += " AND effective_at <= ?"
        params.append(t)
    return db.all(sql + " ORDER BY effective_at, id", params)


def last_inactivity_expiry(db: Database, enrollment_id: int) -> str | None:
    return db.scalar(
        "SELECT MAX(effective_at) FROM entries WHERE enrollment_id = ? AND kind = 'expire' AND rule_kind = 'inactivity'",
        (enrollment_id,),
    )


def lot_expiry_recorded(db: Database, lot_id: int) -> bool:
    return db.one(
        """SELECT 1 FROM lot_moves m JOIN entries e ON e.id = m.entry_id
           WHERE m.lot_id = ? AND e.kind = 'expire'""",
        (lot_id,),
    ) is not None


def balances_at(db: Database, t: str, program: str | None = None, tier: str | None = None) -> list:
    """Every enrollment with its balance and tier as they stood at t, in one query."""
    sql = f"""
        WITH lot_at AS (
            SELECT l.enrollment_id AS eid, l.points + COALESCE(SUM(m.points), 0) AS rem
            FROM lots l LEFT JOIN lot_moves m ON m.lot_id = l.id AND m.effective_at <= :t
            WHERE l.earned_at <= :t AND {LOT_ALIVE}
            GROUP BY l.id, l.enrollment_id, l.points
        ), lot_sum AS (
            SELECT eid, SUM(rem) AS points FROM lot_at GROUP BY eid
        ), debt AS (
            SELECT enrollment_id AS eid, SUM(uncovered) AS points FROM entries
            WHERE uncovered <> 0 AND effective_at <= :t GROUP BY enrollment_id
        ), tier_at AS (
            SELECT tc.enrollment_id AS eid, tc.tier FROM tier_changes tc
            WHERE tc.id = (SELECT t2.id FROM tier_changes t2
                           WHERE t2.enrollment_id = tc.enrollment_id AND t2.effective_at <= :t
                           ORDER BY t2.effective_at DESC, t2.id DESC LIMIT 1)
        )
        SELECT e.id, e.member_id, e.program_code, m.name, e.joined_at, ta.tier,
               COALESCE(ls.points, 0) + COALESCE(d.points, 0) AS balance
        FROM enrollments e
        JOIN members m ON m.member_id = e.member_id
        LEFT JOIN lot_sum ls ON ls.eid = e.id
        LEFT JOIN debt d ON d.eid = e.id
        LEFT JOIN tier_at ta ON ta.eid = e.id
        WHERE e.joined_at <= :t"""
    params: dict = {"t": t}
    if program:
        sql += " AND e.program_code = :program"
        params["program"] = program
    if tier:
        sql += " AND ta.tier = :tier"
        params["tier"] = tier
    return db.all(sql + " ORDER BY e.member_id, e.program_code", params)


def anonymous_sale(db: Database, txn_id: str):
    return db.one("SELECT * FROM anonymous_sales WHERE txn_id = ?", (txn_id,))


def insert_anonymous_sale(db: Database, txn_id, program, amount_e4, content, at, recorded) -> None:
    db.execute(
        """INSERT INTO anonymous_sales (txn_id, program_code, amount_e4, content, effective_at, recorded_at)
           VALUES (?, ?, ?, ?, ?, ?)""",
        (txn_id, program, amount_e4, content, at, recorded),
    )


def erase_member(db: Database, member_id: str, marker: str, at: str) -> int:
    """Replace personal data with a marker; returns how many NPS comments were erased."""
    db.execute(
        """UPDATE members SET name = CASE WHEN name IS NULL THEN NULL ELSE ? END,
                              email = CASE WHEN email IS NULL THEN NULL ELSE ? END, erased_at = ?
           WHERE member_id = ?""",
        (marker, marker, at, member_id),
    )
    cur = db.execute(
        "UPDATE nps_responses SET comment = ? WHERE member_id = ? AND comment IS NOT NULL AND comment <> ''",
        (marker, member_id),
    )
    return cur.rowcount
