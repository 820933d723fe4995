"""Writers: persist the engine's postings, one or a whole batch, with a few set-based writes
(executemany; COPY for a batch on PostgreSQL). Ids of new enrollments, entries and lots are
reserved from the database's sequences (never computed from what is stored) and replace the
provisional ones."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from ..core.commands import Posting
from ..core.records import provisional
from .connection import Database
from .derived import refresh_gaps

_ENTRY_COLUMNS = ("id", "txn_id", "enrollment_id", "kind", "rule_kind", "rule_index", "program_version_id", "points",
                  "uncovered", "amount_e4", "rate", "tier", "multiplier", "partner", "event", "reward", "reason",
                  "ref_entry_id", "content", "effective_at", "recorded_at")


def reserve(db: Database, sequence: str, n: int) -> list[int]:
    """n new ids of a table (entries, lots, enrollments), in increasing order."""
    if n <= 0:
        return []
    if db.dialect.name == "sqlite":
        first = db.scalar("UPDATE sequences SET next_id = next_id + ? WHERE name = ? RETURNING next_id - ?",
                          (n, sequence, n))
        return list(range(first, first + n))
    return [r[0] for r in db.all(f"SELECT nextval('{sequence}_id_seq') FROM generate_series(1, ?)", (n,))]


@dataclass
class _Ids:
    """Provisional ids and the real ones they become."""

    real: dict[int, int] = field(default_factory=dict)

    def take(self, provisional_ids: list[int], reserved: list[int]) -> None:
        self.real.update(zip(sorted(provisional_ids), reserved))

    def __call__(self, ident: int | None) -> int | None:
        if ident is None or not provisional(ident):
            return ident
        return self.real[ident]


def write(db: Database, postings: list[Posting]) -> _Ids:
    """Persist recorded postings (in order); returns the map of provisional to real ids."""
    done = [p for p in postings if p.status == "recorded"]
    ids = _Ids()
    enrollments = [p.enrollment for p in done if p.enrollment is not None]
    entries = [e for p in done for e in p.entries]
    lots = [lot for p in done for lot in p.lots]
    ids.take([e.id for e in enrollments], reserve(db, "enrollments", len(enrollments)))
    ids.take([e.id for e in entries], reserve(db, "entries", len(entries)))
    ids.take([lot.id for lot in lots], reserve(db, "lots", len(lots)))
    moves = [m for p in done for m in p.moves]
    _enrollments(db, enrollments, ids)
    _entries(db, entries, ids)
    _lots(db, lots, moves, ids)
    _moves(db, moves, ids)
    _tier_changes(db, [c for p in done for c in p.tier_changes], ids)
    _sales(db, [p.sale for p in done if p.sale is not None])
    _purchase_lines(db, [line for p in done for line in p.lines], ids)
    _totals(db, entries, ids)
    _gaps(db, entries, ids)
    return ids


def _enrollments(db: Database, enrollments, ids: _Ids) -> None:
    db.insert(
        "enrollments", ("id", "member_id", "program_code", "tags", "referred_by", "joined_at", "recorded_at"),
        [(ids(e.id), e.member_id, e.program, ";".join(e.tags), e.referred_by, e.joined_at, e.recorded_at)
         for e in enrollments])


def _entries(db: Database, entries, ids: _Ids) -> None:
    db.insert("entries", _ENTRY_COLUMNS, [
        (ids(e.id), e.txn_id, ids(e.enrollment_id), e.kind, e.rule_kind, e.rule_index, e.version_id, e.points,
         e.uncovered, e.amount_e4, e.rate, e.tier, e.multiplier, e.partner, e.event, e.reward, e.reason,
         ids(e.ref_entry_id), e.content, e.effective_at, e.recorded_at) for e in entries])


def _lots(db: Database, lots, moves, ids: _Ids) -> None:
    """New lots with their remainder after the batch; stored lots the batch moved, updated."""
    moved: dict[int, int] = defaultdict(int)
    for m in moves:
        moved[m.lot_id] += m.points
    db.insert(
        "lots", ("id", "enrollment_id", "entry_id", "points", "earned_at", "expires_at", "remaining", "inactivity_days"),
        [(ids(lot.id), ids(lot.enrollment_id), ids(lot.entry_id), lot.points, lot.earned_at, lot.expires_at,
          lot.points + moved.get(lot.id, 0), lot.inactivity_days) for lot in lots])
    db.executemany("UPDATE lots SET remaining = remaining + ? WHERE id = ?",
                   [(points, lot_id) for lot_id, points in moved.items() if points and not provisional(lot_id)])


def _moves(db: Database, moves, ids: _Ids) -> None:
    db.insert("lot_moves", ("lot_id", "entry_id", "points", "effective_at"),
              [(ids(m.lot_id), ids(m.entry_id), m.points, m.effective_at) for m in moves])


def _tier_changes(db: Database, changes, ids: _Ids) -> None:
    """Tier changes in the order they were made (their ids order changes at one moment), and
    each enrollment's cached tier: its latest change."""
    if not changes:
        return
    changes = sorted(changes, key=lambda c: c.id)
    db.insert(
        "tier_changes", ("enrollment_id", "tier", "previous", "source", "reason", "program_version_id", "until",
                         "effective_at", "recorded_at", "entry_id"),
        [(ids(c.enrollment_id), c.tier, c.previous, c.source, c.reason, c.version_id, c.until, c.effective_at,
          c.recorded_at, ids(c.entry_id)) for c in changes])
    refresh_tier_cache(db, {ids(c.enrollment_id) for c in changes})


def refresh_tier_cache(db: Database, enrollment_ids) -> None:
    d = db.dialect
    db.execute(
        f"""UPDATE enrollments SET tier = (
               SELECT t.tier FROM tier_changes t WHERE t.enrollment_id = enrollments.id
               ORDER BY t.effective_at DESC, t.id DESC LIMIT 1)
           WHERE id IN {d.ids('ids')}""", {"ids": d.values(enrollment_ids)})


def _sales(db: Database, sales) -> None:
    db.insert(
        "anonymous_sales", ("txn_id", "program_code", "amount_e4", "content", "effective_at", "recorded_at"),
        [(s.txn_id, s.program, s.amount_e4, s.content, s.effective_at, s.recorded_at) for s in sales])


_LINE_COLUMNS = ("entry_id", "line_no", "sku", "category", "quantity", "unit_price_e4", "discount_e4",
                 "order_discount_e4", "points")


def _purchase_lines(db: Database, lines, ids: _Ids) -> None:
    if lines:
        db.insert("purchase_lines", _LINE_COLUMNS,
                  [(ids(x.entry_id), x.line_no, x.sku, x.category, x.quantity, x.unit_price_e4, x.discount_e4,
                         x.order_discount_e4, x.points) for x in lines])


def _gaps(db: Database, entries, ids: _Ids) -> None:
    purchases = [e for e in entries if e.is_purchase]
    if purchases:
        refresh_gaps(db, {ids(e.enrollment_id) for e in purchases}, min(e.effective_at for e in purchases))


def _totals(db: Database, entries, ids: _Ids) -> None:
    """Each enrollment's cached points total and debt."""
    totals: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for e in entries:
        t = totals[ids(e.enrollment_id)]
        t[0] += e.points
        t[1] += e.uncovered
    db.executemany("UPDATE enrollments SET points_total = points_total + ?, uncovered = uncovered + ? WHERE id = ?",
                   [(p, u, eid) for eid, (p, u) in totals.items() if p or u])
