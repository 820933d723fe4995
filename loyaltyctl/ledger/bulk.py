"""SQL of the batch fast path: load the state of a batch's members in a few set
queries, write a batch's entries, lots, moves and tier changes with executemany."""

from __future__ import annotations

from .db import Database


def _keys(db: Database, name: str, values) -> None:
    db.execute(f"DROP TABLE IF EXISTS temp.{name}")
    db.execute(f"CREATE TEMP TABLE {name} (k PRIMARY KEY)")
    db.executemany(f"INSERT OR IGNORE INTO temp.{name} (k) VALUES (?)", [(v,) for v in values])


def enrollments(db: Database, members) -> list:
    _keys(db, "_bulk_members", members)
    return db.all(
        """SELECT n.id, n.member_id, n.program_code, n.tags, n.joined_at, n.uncovered,
                  (SELECT MAX(e.effective_at) FROM entries e WHERE e.enrollment_id = n.id) AS last_entry,
                  (SELECT t.tier FROM tier_changes t WHERE t.enrollment_id = n.id
                   ORDER BY t.effective_at DESC, t.id DESC LIMIT 1) AS tier,
                  (SELECT MAX(t.effective_at) FROM tier_changes t WHERE t.enrollment_id = n.id) AS last_tier
           FROM enrollments n WHERE n.member_id IN (SELECT k FROM temp._bulk_members)"""
    )


def known_members(db: Database) -> set[str]:
    """Which of the batch's members exist at all (for 'unknown member' vs 'not enrolled')."""
    return {r[0] for r in db.all("SELECT member_id FROM members WHERE member_id IN (SELECT k FROM temp._bulk_members)")}


def existing_txns(db: Database, txns) -> tuple[dict, dict]:
    """Entries and anonymous sales already recorded under the batch's txn ids."""
    _keys(db, "_bulk_txns", txns)
    entries = {r[0]: (r[1], r[2]) for r in db.all(
        "SELECT txn_id, content, effective_at FROM entries WHERE txn_id IN (SELECT k FROM temp._bulk_txns)")}
    sales = {r[0]: (r[1], r[2]) for r in db.all(
        "SELECT txn_id, content, effective_at FROM anonymous_sales WHERE txn_id IN (SELECT k FROM temp._bulk_txns)")}
    return entries, sales


def open_lots(db: Database, enrollment_ids) -> list:
    _keys(db, "_bulk_enr", enrollment_ids)
    return db.all(
        """SELECT id, enrollment_id, remaining, earned_at, expires_at, inactivity_days FROM lots
           WHERE remaining > 0 AND enrollment_id IN (SELECT k FROM temp._bulk_enr)"""
    )


def window_items(db: Database, basis: str, start: str, settled: str, enrollment_ids, spend_only: bool) -> list:
    """Qualifying purchases (spend) or earns (points) after `start` of the enrollments, each
    net of its refunds, as (enrollment_id, effective_at, value) in time order; those after
    `settled` summed into one row per enrollment with effective_at NULL. `spend_only`: every
    purchase is a spend purchase, so spend is read from the purchases index alone."""
    _keys(db, "_bulk_enr", enrollment_ids)
    value = "amount_e4" if basis == "spend" else "points"
    if basis == "spend" and spend_only:
        kinds = "p.amount_e4 IS NOT NULL"  # the condition of the covering index entries_purchases
    elif basis == "spend":
        kinds = "p.rule_kind = 'spend'"
    else:
        kinds = "p.rule_kind IN ('spend', 'partner', 'event', 'referral')"
    return db.all(
        f"""SELECT p.enrollment_id, CASE WHEN p.effective_at <= :settled THEN p.effective_at END AS at,
                   SUM(p.{value} + COALESCE((SELECT SUM(r.{value}) FROM entries r
                                             WHERE r.ref_entry_id = p.id AND r.kind = 'refund'), 0)) AS value
            FROM entries p
            WHERE p.kind = 'earn' AND {kinds} AND p.effective_at > :start
              AND p.enrollment_id IN (SELECT k FROM temp._bulk_enr)
            GROUP BY p.enrollment_id, at ORDER BY p.enrollment_id, at""",
        {"start": start, "settled": settled},
    )


def next_ids(db: Database) -> tuple[int, int]:
    return (db.scalar("SELECT COALESCE(MAX(id), 0) FROM entries") + 1,
            db.scalar("SELECT COALESCE(MAX(id), 0) FROM lots") + 1)


ENTRY_COLUMNS = ("id", "txn_id", "enrollment_id", "kind", "rule_kind", "rule_index", "program_version_id", "points",
                 "uncovered", "amount_e4", "rate", "tier", "multiplier", "partner", "reward", "content",
                 "effective_at", "recorded_at")


def write(db: Database, entries: list[tuple], lots: list[tuple], moves: list[tuple], tiers: list[tuple],
          sales: list[tuple], lot_updates: list[tuple], totals: list[tuple], tier_cache: list[tuple]) -> None:
    db.executemany(
        f"INSERT INTO entries ({', '.join(ENTRY_COLUMNS)}) VALUES ({', '.join('?' for _ in ENTRY_COLUMNS)})", entries)
    db.executemany(
        """INSERT INTO lots (id, enrollment_id, entry_id, points, earned_at, expires_at, remaining)
           VALUES (?, ?, ?, ?, ?, ?, ?)""", lots)
    db.executemany("INSERT INTO lot_moves (lot_id, entry_id, points, effective_at) VALUES (?, ?, ?, ?)", moves)
    db.executemany(
        """INSERT INTO tier_changes (enrollment_id, tier, previous, source, reason, program_version_id, until,
                                     effective_at, recorded_at) VALUES (?, ?, ?, 'earn', ?, ?, NULL, ?, ?)""", tiers)
    db.executemany(
        """INSERT INTO anonymous_sales (txn_id, program_code, amount_e4, content, effective_at, recorded_at)
           VALUES (?, ?, ?, ?, ?, ?)""", sales)
    db.executemany("UPDATE lots SET remaining = ? WHERE id = ?", lot_updates)
    db.executemany("UPDATE enrollments SET points_total = points_total + ?, uncovered = uncovered + ? WHERE id = ?",
                   totals)
    db.executemany("UPDATE enrollments SET tier = ? WHERE id = ?", tier_cache)


def drop_temp(db: Database) -> None:
    for name in ("_bulk_members", "_bulk_txns", "_bulk_enr"):
        db.execute(f"DROP TABLE IF EXISTS temp.{name}")
