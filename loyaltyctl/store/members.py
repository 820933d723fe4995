"""Members, enrollments and what `member show`, `member list` and `history` read:
balances, counters and tiers as they stood at a moment."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.records import Enrollment
from .connection import Database
from .fragments import fragments, tier_at as tier_at_sql

# --- members and enrollments --------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """A member row: who they are (name and email are gone once erased)."""

    member_id: str
    name: str | None
    email: str | None
    account: str | None
    created_at: str
    erased_at: str | None


def member(db: Database, member_id: str) -> Member | None:
    row = db.one("SELECT member_id, name, email, account, created_at, erased_at FROM members WHERE member_id = ?",
                 (member_id,))
    return Member(*row) if row else None


def members(db: Database, member_ids) -> dict[str, Member]:
    d = db.dialect
    rows = db.all(f"""SELECT member_id, name, email, account, created_at, erased_at FROM members
                      WHERE member_id IN {d.texts('ids')}""", {"ids": d.values(member_ids)})
    return {r[0]: Member(*r) for r in rows}


def contacts(db: Database) -> list[tuple[str, str | None, str | None]]:
    """member_id, name and email of every member not erased (what `member find` searches)."""
    return db.all("SELECT member_id, name, email FROM members WHERE erased_at IS NULL ORDER BY member_id")


def insert_member(db: Database, member_id: str, name, email, account, at: str) -> None:
    db.execute("INSERT INTO members (member_id, name, email, account, created_at) VALUES (?, ?, ?, ?, ?)",
               (member_id, name, email, account, at))


def update_contact(db: Database, member_id: str, name, email, account) -> None:
    """Fill in contact fields a member does not have yet (a later enrollment gives them)."""
    db.execute(
        """UPDATE members SET name = COALESCE(name, ?), email = COALESCE(email, ?),
                              account = COALESCE(account, ?) WHERE member_id = ?""",
        (name, email, account, member_id),
    )


def set_contact(db: Database, member_id: str, fields: dict[str, str | None]) -> None:
    """Replace contact fields (member update); personal data given again ends an erasure."""
    for column, value in fields.items():  # column names are the caller's, never user text
        db.execute(f"UPDATE members SET {column} = ?, erased_at = NULL WHERE member_id = ?", (value, member_id))


_ENROLLMENT = "SELECT id, member_id, program_code, tags, joined_at, referred_by, recorded_at FROM enrollments"


def _enrollment(row) -> Enrollment:
    return Enrollment(row[0], row[1], row[2], tuple(t for t in row[3].split(";") if t), row[4], row[5], row[6])


def enrollment(db: Database, member_id: str, program: str) -> Enrollment | None:
    row = db.one(_ENROLLMENT + " WHERE member_id = ? AND program_code = ?", (member_id, program))
    return _enrollment(row) if row else None


def enrollment_by_id(db: Database, enrollment_id: int) -> Enrollment | None:
    row = db.one(_ENROLLMENT + " WHERE id = ?", (enrollment_id,))
    return _enrollment(row) if row else None


def enrollments_of(db: Database, member_id: str) -> list[Enrollment]:
    return [_enrollment(r) for r in db.all(_ENROLLMENT + " WHERE member_id = ? ORDER BY program_code", (member_id,))]


def cached_totals(db: Database, enrollment_id: int) -> tuple[int, int]:
    """The enrollment's cached points total and debt (verify checks them against the entries)."""
    row = db.one("SELECT points_total, uncovered FROM enrollments WHERE id = ?", (enrollment_id,))
    return row[0], row[1]


def has_partner_rules(db: Database, program: str | None = None) -> bool:
    """Whether any version of the program (of any program) has a partner earn rule; if not,
    every purchase recorded under it is a spend purchase."""
    import json

    sql, params = "SELECT definition FROM program_versions", ()
    if program:
        sql, params = sql + " WHERE program_code = ?", (program,)
    return any(spec.get("rule") == "partner"
               for (definition,) in db.all(sql, params) for spec in json.loads(definition).get("earn") or [])


# --- state as of a moment ----------------------------------------------------------------------


def balance_at(db: Database, enrollment_id: int, t: str) -> int:
    """Points of lots alive at t, as they stood at t, plus any uncovered claw-back (debt)."""
    f = fragments(db.dialect)
    return db.scalar(
        f"""SELECT COALESCE((SELECT SUM({f.lot_at}) FROM lots l
                     WHERE l.enrollment_id = :e AND l.earned_at <= :t AND {f.lot_alive}), 0)
                 + COALESCE((SELECT SUM(uncovered) FROM entries
                     WHERE enrollment_id = :e AND effective_at <= :t), 0)""",
        {"e": enrollment_id, "t": t},
    )


@dataclass(frozen=True)
class Counters:
    """An enrollment's lifetime counters at a moment, and its next expiry."""

    earned: int
    opening: int
    redeemed: int
    clawed_back: int
    adjusted: int
    expired: int
    expiring_soon: int
    next_expiry: str | None
    last_activity: str | None


def counters_at(db: Database, enrollment_id: int, t: str, soon: str) -> Counters:
    """Lifetime counters as of t; `soon` bounds the 'expiring soon' window."""
    f = fragments(db.dialect)
    row = db.one(
        f"""SELECT
              COALESCE(SUM(CASE WHEN kind = 'earn' THEN points END), 0) AS earned,
              COALESCE(SUM(CASE WHEN kind = 'opening' THEN points END), 0) AS opening,
              COALESCE(-SUM(CASE WHEN rule_kind = 'redeem' THEN points END), 0) AS redeemed,
              COALESCE(-SUM(CASE WHEN kind = 'refund' AND rule_kind <> 'redeem' THEN points END), 0)
                  AS clawed_back,
              COALESCE(SUM(CASE WHEN kind = 'adjust' THEN points END), 0) AS adjusted,
              (SELECT COALESCE(SUM({f.lot_at_expiry}), 0) FROM lots l
                 WHERE l.enrollment_id = :e AND {f.lot_expired}) AS expired,
              (SELECT COALESCE(SUM({f.lot_at}), 0) FROM lots l
                 WHERE l.enrollment_id = :e AND l.earned_at <= :t
                   AND {f.lot_expiry} > :t AND {f.lot_expiry} <= :soon) AS expiring_soon,
              (SELECT MIN({f.lot_expiry}) FROM lots l
                 WHERE l.enrollment_id = :e AND l.earned_at <= :t
                   AND {f.lot_expiry} > :t AND {f.lot_at} > 0) AS next_expiry,
              MAX(CASE WHEN kind IN ('earn', 'redeem') THEN effective_at END) AS last_activity
            FROM entries WHERE enrollment_id = :e AND effective_at <= :t""",
        {"e": enrollment_id, "t": t, "soon": soon},
    )
    return Counters(*row)


def tier_at(db: Database, enrollment_id: int, t: str) -> str | None:
    """The enrollment's tier at t (its latest tier change by then)."""
    return db.scalar(f"SELECT {tier_at_sql(':e')}", {"e": enrollment_id, "t": t})


def qualifying_total(db: Database, enrollment_id: int, basis: str, start: str, t: str) -> int:
    """Spend (amount_e4) or points earned in the window (start, t], net of refunds."""
    f = fragments(db.dialect)
    total = db.scalar(f"SELECT q.total FROM ({f.qualifying_totals(basis, 'AND p.enrollment_id = :e')}) q",
                      {"e": enrollment_id, "start": start, "t": t})
    return total or 0


# --- history ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    """A lot expired whose expiry the expire job has not recorded yet: when, the points it
    will take, and by which rule (expiry or inactivity)."""

    lot_id: int
    expires_at: str
    points: int
    rule: str


def pending_expiries(db: Database, enrollment_id: int, t: str) -> list[Pending]:
    """Lots expired at t whose expiry the expire job has not recorded yet, with the points it will take."""
    f = fragments(db.dialect)
    rows = db.all(
        f"""SELECT l.id, {f.lot_expiry} AS expires_at, {f.lot_at_expiry} AS points,
                   CASE WHEN l.expires_at IS NOT NULL AND l.expires_at <= {f.lot_expiry} THEN 'expiry'
                        ELSE 'inactivity' END AS rule
            FROM lots l
            WHERE l.enrollment_id = :e AND {f.lot_expired}
              AND NOT EXISTS (SELECT 1 FROM lot_moves m JOIN entries e ON e.id = m.entry_id
                              WHERE m.lot_id = l.id AND e.kind = 'expire')
              AND {f.lot_at_expiry} > 0
            ORDER BY 2, l.id""",
        {"e": enrollment_id, "t": t},
    )
    return [Pending(*r) for r in rows]


def history(db: Database, enrollment_id: int, t: str | None) -> list[dict]:
    """Entries up to t with their program version, the lot each created and the txn each cites."""
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
    return [dict(r) for r in db.all(sql + " ORDER BY e.effective_at, e.id", params)]


def moves_by_entry(db: Database, enrollment_id: int) -> dict[int, list[tuple[int, int]]]:
    rows = db.all(
        """SELECT m.entry_id, m.lot_id, m.points FROM lot_moves m JOIN lots l ON l.id = m.lot_id
           WHERE l.enrollment_id = ? ORDER BY m.id""",
        (enrollment_id,),
    )
    out: dict[int, list] = {}
    for entry_id, lot_id, points in rows:
        out.setdefault(entry_id, []).append((lot_id, points))
    return out


def tier_changes_of(db: Database, enrollment_id: int, t: str | None) -> list[dict]:
    sql = "SELECT * FROM tier_changes WHERE enrollment_id = ?"
    params: list = [enrollment_id]
    if t:
        sql += " AND effective_at <= ?"
        params.append(t)
    return [dict(r) for r in db.all(sql + " ORDER BY effective_at, id", params)]


# --- all members at a moment ---------------------------------------------------------------------


def _balances_sql(db: Database, program: str | None, tier: str | None, scope: str = "") -> str:
    """Enrollments joined by t with their balance and tier at t. With `scope` (a condition on
    enrollments e), only those are computed, reading their lots by index: a page costs what its
    members hold. Without, one pass over every lot (the cheapest way to list everyone)."""
    f = fragments(db.dialect)
    where = "e.joined_at <= :t" + (" AND e.program_code = :program" if program else "") + scope
    lots, entries = ("lots l", "entries x") if not scope else \
        (f"page {f.d.cross_join()} lots l ON l.enrollment_id = page.id",
         f"page {f.d.cross_join()} entries x ON x.enrollment_id = page.id")
    sql = f"""
        WITH page AS (
            SELECT e.id FROM enrollments e WHERE {where}
        ), lot_at AS (
            SELECT l.enrollment_id AS eid, l.points + COALESCE(SUM(m.points), 0) AS rem
            FROM {lots} LEFT JOIN lot_moves m ON m.lot_id = l.id AND m.effective_at <= :t
            WHERE l.earned_at <= :t AND {f.lot_alive}
            GROUP BY l.id, l.enrollment_id, l.points
        ), lot_sum AS (
            SELECT eid, SUM(rem) AS points FROM lot_at GROUP BY eid
        ), debt AS (
            SELECT x.enrollment_id AS eid, SUM(x.uncovered) AS points FROM {entries}
            WHERE x.uncovered <> 0 AND x.effective_at <= :t GROUP BY x.enrollment_id
        ), listed AS (
            SELECT e.id, e.member_id, e.program_code, m.name, e.joined_at, {tier_at_sql('e.id')} AS tier,
                   COALESCE(ls.points, 0) + COALESCE(d.points, 0) AS balance
            FROM page JOIN enrollments e ON e.id = page.id
            JOIN members m ON m.member_id = e.member_id
            LEFT JOIN lot_sum ls ON ls.eid = e.id
            LEFT JOIN debt d ON d.eid = e.id
        )
        SELECT * FROM listed""" + (" WHERE tier = :tier" if tier else "")
    return sql


def _everyone_sql(db: Database, program: str | None, tier: str | None) -> str:
    """Every enrollment joined by t with its balance and tier at t, from the balance rows
    (fragments.balance_rows: lots with points left and later moves, not every lot)."""
    f = fragments(db.dialect)
    sql = f"""
        WITH balance AS (SELECT br.eid, SUM(br.points) AS points FROM ({f.balance_rows()}) br GROUP BY br.eid),
        listed AS (
            SELECT e.id, e.member_id, e.program_code, m.name, e.joined_at, {tier_at_sql('e.id')} AS tier,
                   COALESCE(bl.points, 0) AS balance
            FROM enrollments e JOIN members m ON m.member_id = e.member_id
            LEFT JOIN balance bl ON bl.eid = e.id
            WHERE e.joined_at <= :t""" + (" AND e.program_code = :program" if program else "") + """
        )
        SELECT * FROM listed""" + (" WHERE tier = :tier" if tier else "")
    return sql


def balances_at(db: Database, t: str, program: str | None = None, tier: str | None = None, *,
                page: int | None = None):
    """Every enrollment with its balance and tier as they stood at t, in member order, yielded
    as read. page=None: one query over the whole ledger (cheapest in all). page=N: N
    enrollments a query, so the first rows come at once whatever the ledger's size (for a
    first screen; the caller stops reading when it has enough)."""
    order = " ORDER BY member_id, program_code"
    if page is None:
        yield from (dict(r) for r in db.stream(_everyone_sql(db, program, tier) + order, _params(t, program, tier)))
        return
    after: tuple[str, str] | None = None
    while keys := _page_keys(db, t, program, after, page):
        page = min(page * 2, 5000)  # a filter by tier may keep few of a page: read more each time
        scope = " AND (e.member_id < :bm OR (e.member_id = :bm AND e.program_code <= :bp))"
        params = _params(t, program, tier) | {"bm": keys[-1][0], "bp": keys[-1][1]}
        if after:
            scope += " AND (e.member_id > :am OR (e.member_id = :am AND e.program_code > :ap))"
            params |= {"am": after[0], "ap": after[1]}
        yield from (dict(r) for r in db.all(_balances_sql(db, program, tier, scope) + order, params))
        after = keys[-1]


def _page_keys(db: Database, t: str, program: str | None, after: tuple[str, str] | None, n: int) -> list:
    sql = "SELECT e.member_id, e.program_code FROM enrollments e WHERE e.joined_at <= :t"
    params: dict = {"t": t, "n": n}
    if program:
        sql += " AND e.program_code = :program"
        params["program"] = program
    if after:
        sql += " AND (e.member_id > :am OR (e.member_id = :am AND e.program_code > :ap))"
        params |= {"am": after[0], "ap": after[1]}
    return [tuple(r) for r in db.all(sql + " ORDER BY e.member_id, e.program_code LIMIT :n", params)]


def balances_total(db: Database, t: str, program: str | None = None, tier: str | None = None) -> tuple[int, int]:
    """How many enrollments `balances_at` lists and the sum of their balances (one query)."""
    row = db.one(f"SELECT count(*), COALESCE(SUM(b.balance), 0) FROM ({_everyone_sql(db, program, tier)}) b",
                 _params(t, program, tier))
    return int(row[0]), int(row[1])


def _params(t: str, program: str | None, tier: str | None) -> dict:
    return {"t": t} | ({"program": program} if program else {}) | ({"tier": tier} if tier else {})


def erase(db: Database, member_id: str, marker: str, at: str) -> int:
    """Replace personal data with a marker; returns how many NPS comments were erased. A response's
    content (the JSON copy its --response-id is compared with) goes too: it quotes the comment."""
    db.execute(
        """UPDATE members SET name = CASE WHEN name IS NULL THEN NULL ELSE ? END,
                              email = CASE WHEN email IS NULL THEN NULL ELSE ? END, erased_at = ?
           WHERE member_id = ?""",
        (marker, marker, at, member_id),
    )
    comments = db.scalar("""SELECT count(*) FROM nps_responses
                            WHERE member_id = ? AND comment IS NOT NULL AND comment <> ''""", (member_id,))
    db.execute("""UPDATE nps_responses SET content = NULL,
                         comment = CASE WHEN comment IS NULL OR comment = '' THEN comment ELSE ? END
                  WHERE member_id = ?""", (marker, member_id))
    return comments


@dataclass(frozen=True)
class FreeText:
    """A free-text cell: a reason, a comment, or the JSON copy of a request (content)."""

    table: str
    column: str
    row_id: int
    text: str


# The columns where people's own words are kept (names below are ours, never user text).
FREE_TEXT = {"entries": ("reason", "content"), "tier_changes": ("reason",), "nps_responses": ("comment", "content")}


def free_texts_quoting(db: Database, needles: list[str]) -> list[FreeText]:
    """Free-text cells holding any of `needles`, compared in lower case (one scan per table)."""
    found = []
    patterns = ["%" + n.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                for n in needles]
    for table, columns in FREE_TEXT.items():
        tests = [f"LOWER({c}) LIKE ? ESCAPE '\\'" for c in columns for _ in patterns]
        params = [p for _ in columns for p in patterns]
        for row in db.all(f"SELECT id, {', '.join(columns)} FROM {table} WHERE {' OR '.join(tests)} ORDER BY id",
                          params):
            found += [FreeText(table, c, row[0], row[i + 1]) for i, c in enumerate(columns) if row[i + 1]]
    return found


def set_free_text(db: Database, cell: FreeText, text: str) -> None:
    db.execute(f"UPDATE {cell.table} SET {cell.column} = ? WHERE id = ?", (text, cell.row_id))
