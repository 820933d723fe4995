"""SQL of `loyaltyctl verify`: each check returns rows that violate an invariant."""

from __future__ import annotations

from .connection import Database
from .derived import gaps_sql
from .fragments import fragments


def checks(db: Database) -> dict[str, tuple[str, str]]:
    """Each ledger invariant: its description and the SQL of the rows that break it."""
    return _checks(fragments(db.dialect).lot_expiry, gaps_sql(db.dialect.epoch))


def _checks(LOT_EXPIRY: str, PURCHASE_GAPS: str) -> dict[str, tuple[str, str]]:  # noqa: N803 - fragments
    return {
        "enrollment_totals": (
            "cached points total or debt of an enrollment differs from its ledger entries",
            """SELECT n.member_id, n.program_code, n.points_total, n.uncovered,
                      COALESCE(SUM(e.points), 0) AS ledger_points, COALESCE(SUM(e.uncovered), 0) AS ledger_uncovered
               FROM enrollments n LEFT JOIN entries e ON e.enrollment_id = n.id
               GROUP BY n.id, n.member_id, n.program_code, n.points_total, n.uncovered
               HAVING n.points_total <> COALESCE(SUM(e.points), 0) OR n.uncovered <> COALESCE(SUM(e.uncovered), 0)""",
        ),
        "lot_remaining": (
            "a lot's cached remainder differs from original + its moves, or is negative or above the original",
            """SELECT l.id AS lot_id, l.points, l.remaining, l.points + COALESCE(SUM(m.points), 0) AS from_moves
               FROM lots l LEFT JOIN lot_moves m ON m.lot_id = l.id
               GROUP BY l.id, l.points, l.remaining
               HAVING l.remaining <> l.points + COALESCE(SUM(m.points), 0) OR l.remaining < 0 OR l.remaining > l.points""",
        ),
        "entry_balance": (
            "an entry's points differ from the lot it created + its lot moves + its uncovered part",
            """SELECT e.txn_id, e.points, COALESCE(c.created, 0) AS created, COALESCE(mv.moved, 0) AS moved, e.uncovered
               FROM entries e
               LEFT JOIN (SELECT entry_id, SUM(points) AS created FROM lots GROUP BY entry_id) c ON c.entry_id = e.id
               LEFT JOIN (SELECT entry_id, SUM(points) AS moved FROM lot_moves GROUP BY entry_id) mv ON mv.entry_id = e.id
               WHERE e.points <> COALESCE(c.created, 0) + COALESCE(mv.moved, 0) + e.uncovered""",
        ),
        "move_time": (
            "a lot move takes effect at another time than its entry, or before the lot was earned",
            """SELECT m.id AS move_id, m.lot_id, e.txn_id FROM lot_moves m
               JOIN entries e ON e.id = m.entry_id JOIN lots l ON l.id = m.lot_id
               WHERE m.effective_at <> e.effective_at OR m.effective_at < l.earned_at""",
        ),
        "expired_lot_remainder": (
            "a lot with a recorded expiry still has points, or expiry does not take its whole remainder",
            """SELECT l.id AS lot_id, l.remaining FROM lots l
               WHERE EXISTS (SELECT 1 FROM lot_moves m JOIN entries e ON e.id = m.entry_id
                             WHERE m.lot_id = l.id AND e.kind = 'expire')
                 AND l.remaining <> 0""",
        ),
        "move_after_expiry": (
            "a lot was used after it expired (by date or for inactivity)",
            f"""SELECT m.id AS move_id, m.lot_id, e.txn_id FROM lot_moves m
               JOIN entries e ON e.id = m.entry_id JOIN lots l ON l.id = m.lot_id
               WHERE e.kind <> 'expire' AND ((l.expires_at IS NOT NULL AND m.effective_at >= l.expires_at)
                     OR (l.inactivity_days IS NOT NULL AND m.effective_at >= {LOT_EXPIRY}))""",
        ),
        "expiry_time": (
            "a recorded expiry takes effect at another time than the lot's expiry",
            f"""SELECT e.txn_id, e.effective_at, {LOT_EXPIRY} AS lot_expiry FROM entries e
               JOIN lot_moves m ON m.entry_id = e.id JOIN lots l ON l.id = m.lot_id
               WHERE e.kind = 'expire' AND e.effective_at IS DISTINCT FROM {LOT_EXPIRY}""",
        ),
        "redemption_overdraw": (
            "a redemption took points the member did not have",
            "SELECT txn_id, points, uncovered FROM entries WHERE kind = 'redeem' AND (uncovered <> 0 OR points >= 0)",
        ),
        "debt_positive": (
            "repaid debt exceeds the debt owed",
            "SELECT member_id, program_code, uncovered FROM enrollments WHERE uncovered > 0",
        ),
        "tier_cache": (
            "an enrollment's cached tier is not its latest tier change",
            """SELECT n.member_id, n.program_code, n.tier FROM enrollments n
               WHERE COALESCE(n.tier, '') <> COALESCE((SELECT t.tier FROM tier_changes t WHERE t.enrollment_id = n.id
                                                       ORDER BY t.effective_at DESC, t.id DESC LIMIT 1), '')""",
        ),
        "purchase_gaps": (
            "a purchase's cached gap to the previous purchase (report at-risk) differs from the ledger",
            f"""WITH ledger AS ({PURCHASE_GAPS})
               SELECT 'ledger' AS side, a.* FROM (SELECT * FROM ledger EXCEPT SELECT * FROM purchase_gaps) a
               UNION ALL
               SELECT 'cache', b.* FROM (SELECT * FROM purchase_gaps EXCEPT SELECT * FROM ledger) b""",
        ),
        "purchase_lines": (
            "the lines of a purchase (or of a refund of lines) do not add up to its amount, or earned more than it",
            """SELECT e.txn_id, e.amount_e4, SUM(l.quantity * l.unit_price_e4 - l.discount_e4 - l.order_discount_e4)
                      AS lines_e4, e.points, SUM(l.points) AS line_points
               FROM entries e JOIN purchase_lines l ON l.entry_id = e.id
               GROUP BY e.id, e.txn_id, e.amount_e4, e.points, e.kind
               HAVING SUM(l.quantity * l.unit_price_e4 - l.discount_e4 - l.order_discount_e4)
                      <> e.amount_e4
                   OR (e.kind = 'earn' AND SUM(l.points) > e.points)""",
        ),
        "entry_member": (
            "an entry's program version belongs to another program than its member's enrollment",
            """SELECT e.txn_id FROM entries e JOIN enrollments n ON n.id = e.enrollment_id
               JOIN program_versions v ON v.id = e.program_version_id WHERE v.program_code <> n.program_code""",
        ),
    }


def integrity(db: Database, limit: int = 20) -> list[str]:
    """SQLite's own structural check: [] when ok, else up to `limit` problem lines. (PostgreSQL
    checks its pages itself; `pg_amcheck` is the tool for more.)"""
    if db.dialect.name != "sqlite":
        return []
    rows = [r[0] for r in db.all(f"PRAGMA integrity_check({int(limit)})")]
    if rows == ["ok"]:
        return []
    lines = [line for row in rows for line in str(row).splitlines() if line.strip() and not line.startswith("***")]
    return lines[:limit]


def foreign_keys(db: Database) -> list:
    """References SQLite did not check (it lets a writer turn the check off; PostgreSQL never does)."""
    if db.dialect.name != "sqlite":
        return []
    return db.all("PRAGMA foreign_key_check")


def violations(db: Database, sql: str) -> list[dict]:
    return [dict(r) for r in db.all(sql)]


def entry_rules(db: Database) -> list:
    """Distinct (program version, rule index, rule kind) used by entries, to check against definitions."""
    return db.all(
        """SELECT DISTINCT v.id AS version_id, v.program_code, v.version, v.definition, e.rule_index, e.rule_kind
           FROM entries e JOIN program_versions v ON v.id = e.program_version_id
           WHERE e.rule_index IS NOT NULL"""
    )


def counts(db: Database) -> dict[str, int]:
    return {t: db.scalar(f"SELECT count(*) FROM {t}") for t in ("members", "enrollments", "entries", "lots")}


def secure_delete(db: Database) -> None:
    """Zero erased text in its page, not just unlink it (SQLite)."""
    if db.dialect.name == "sqlite":
        db.execute("PRAGMA secure_delete = ON")


def scrub_log(db: Database) -> bool:
    """(SQLite) Checkpoint and truncate the write-ahead log, where old page images of erased
    data stay; False when another connection kept it from finishing."""
    return not db.one("PRAGMA wal_checkpoint(TRUNCATE)")[0]


def vacuum(db, tables: list[str]) -> None:
    """(PostgreSQL, outside a transaction) A plain VACUUM of the tables an erase updated: the
    old row versions are removed from them, without locking out other writers. It does not
    rewrite the files (VACUUM FULL does, under an exclusive lock), nor reach the WAL or backups."""
    db.execute(f"VACUUM {', '.join(tables)}")
