"""Derived tables the writers keep in step with the ledger, set-based per batch: each
purchase's gap to the member's previous one (purchase_gaps, read by `report at-risk`).
`verify` recomputes them from the entries (store/verify.py)."""

from __future__ import annotations

from .connection import Database
from .fragments import PURCHASE


def gaps_sql(epoch, scope: str = "") -> str:
    """SELECT enrollment_id, gap, entry_id, at_s: every purchase's gap in seconds to the
    enrollment's previous purchase in (effective_at, id) order (the first has none)."""
    return f"""
        SELECT x.enrollment_id, x.s - x.prev AS gap, x.id AS entry_id, x.s AS at_s FROM (
            SELECT p.enrollment_id, p.id, {epoch("p.effective_at")} AS s,
                   LAG({epoch("p.effective_at")}) OVER (PARTITION BY p.enrollment_id ORDER BY p.effective_at, p.id) AS prev
            FROM entries p WHERE p.{PURCHASE} {scope}) x
        WHERE x.prev IS NOT NULL"""


def refresh_gaps(db: Database, enrollment_ids, since: str) -> None:
    """Recompute the gaps of the enrollments' purchases made at or after `since` (new ones, and
    those a back-dated purchase now precedes), from the purchase before `since` on."""
    d = db.dialect
    params = {"ids": d.values(enrollment_ids), "since": since}
    db.execute(f"""DELETE FROM purchase_gaps WHERE enrollment_id IN {d.ids('ids')}
                   AND at_s >= {d.epoch(':since')}""", params)
    before = f"""(SELECT q.id FROM entries q WHERE q.enrollment_id = p.enrollment_id AND q.{PURCHASE}
                   AND q.effective_at < :since ORDER BY q.effective_at DESC, q.id DESC LIMIT 1)"""
    scope = f"AND p.enrollment_id IN {d.ids('ids')} AND (p.effective_at >= :since OR p.id = {before})"
    db.execute(f"""INSERT INTO purchase_gaps (enrollment_id, gap, entry_id, at_s)
                   SELECT g.enrollment_id, g.gap, g.entry_id, g.at_s FROM ({gaps_sql(d.epoch, scope)}) g
                   WHERE g.at_s >= {d.epoch(':since')}""", params)
