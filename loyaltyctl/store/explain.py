"""SQL behind `explain`: an entry, its lot, its moves, what later touched it."""

from __future__ import annotations

from .connection import Database


def entry(db: Database, txn_id: str) -> dict | None:
    row = db.one("SELECT * FROM entries WHERE txn_id = ?", (txn_id,))
    return dict(row) if row else None


def entry_by_id(db: Database, entry_id: int) -> dict | None:
    row = db.one("SELECT * FROM entries WHERE id = ?", (entry_id,))
    return dict(row) if row else None


def anonymous_sale(db: Database, txn_id: str) -> dict | None:
    row = db.one("SELECT * FROM anonymous_sales WHERE txn_id = ?", (txn_id,))
    return dict(row) if row else None


def lot_of_entry(db: Database, entry_id: int) -> dict | None:
    row = db.one("SELECT * FROM lots WHERE entry_id = ?", (entry_id,))
    return dict(row) if row else None


def lot(db: Database, lot_id: int) -> dict | None:
    """A lot with the txn id of the entry that created it."""
    row = db.one("""SELECT l.*, src.txn_id AS txn_id FROM lots l JOIN entries src ON src.id = l.entry_id
                    WHERE l.id = ?""", (lot_id,))
    return dict(row) if row else None


def moves_of_entry(db: Database, entry_id: int) -> list:
    return db.all(
        """SELECT m.lot_id AS lot, m.points, l.expires_at, src.txn_id AS lot_txn_id
           FROM lot_moves m JOIN lots l ON l.id = m.lot_id JOIN entries src ON src.id = l.entry_id
           WHERE m.entry_id = ? ORDER BY m.id""",
        (entry_id,),
    )


def later_effects(db: Database, entry_id: int, lot_id: int | None) -> list:
    """Entries after this one that refer to it or moved points of the lot it created."""
    return db.all(
        """SELECT e.txn_id, e.kind, e.effective_at, SUM(COALESCE(m.points, e.points)) AS points
           FROM entries e LEFT JOIN lot_moves m ON m.entry_id = e.id AND m.lot_id = :lot
           WHERE e.id <> :e AND (e.ref_entry_id = :e OR m.id IS NOT NULL)
           GROUP BY e.id, e.txn_id, e.kind, e.effective_at
           ORDER BY e.effective_at, e.id""",
        {"e": entry_id, "lot": lot_id if lot_id is not None else -1},
    )


def refunds_before(db: Database, ref_id: int, entry_id: int):
    return db.one(
        """SELECT COALESCE(SUM(-amount_e4), 0) AS amount_e4, COALESCE(SUM(-points), 0) AS points
           FROM entries WHERE ref_entry_id = ? AND kind = 'refund' AND id < ?""",
        (ref_id, entry_id),
    )


def tier_changes_made_by(db: Database, enrollment_id: int, entry_id: int, at: str) -> list[dict]:
    """Tier changes a credit's posting made; for ledgers from before they were linked, the
    upgrade on earning at the credit's own moment."""
    rows = db.all(
        """SELECT * FROM tier_changes WHERE entry_id = :e
           UNION
           SELECT * FROM tier_changes WHERE entry_id IS NULL AND enrollment_id = :n AND effective_at = :t
             AND source = 'earn'
           ORDER BY effective_at, id""",
        {"e": entry_id, "n": enrollment_id, "t": at},
    )
    return [dict(r) for r in rows]


def purchase_lines(db: Database, entry_id: int) -> list:
    """An entry's purchase lines (a purchase's, or what a refund took back), in line order."""
    from ..core.records import PurchaseLine

    return [PurchaseLine(*r) for r in db.all(
        """SELECT entry_id, line_no, sku, category, quantity, unit_price_e4, discount_e4, order_discount_e4, points
           FROM purchase_lines WHERE entry_id = ? ORDER BY line_no""", (entry_id,))]


def payment_of(db: Database, entry_id: int) -> dict | None:
    """The redemption that paid part of a purchase with points."""
    row = db.one("SELECT * FROM entries WHERE ref_entry_id = ? AND kind = 'redeem'", (entry_id,))
    return dict(row) if row else None
