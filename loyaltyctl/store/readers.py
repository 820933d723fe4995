"""Readers: load what the engine needs to post a batch of commands (a Book), in a few
set queries whatever the batch size; one command is a batch of one."""

from __future__ import annotations

from ..core.records import (
    Book, Enrollment, Entry, Lot, MemberState, Payment, Prior, PurchaseLine, Qualifying, Ref, TierChange,
)
from ..core.commands import Adjust, Event, Join, Purchase, Redeem, Refund
from ..core.values import shift
from .connection import Database
from .fragments import qualifying_kinds, qualifying_value
from .programs import programs

ENTRY_FIELDS = ("id", "txn_id", "enrollment_id", "kind", "rule_kind", "program_version_id", "points", "effective_at",
                "recorded_at", "rule_index", "uncovered", "amount_e4", "rate", "tier", "multiplier", "partner", "event",
                "reward", "reason", "ref_entry_id", "content")
ENTRY_COLUMNS = ", ".join(f"e.{c}" for c in ENTRY_FIELDS)


def entry_of(row) -> Entry:
    return Entry(*row[:len(ENTRY_FIELDS)])


# --- a book for a batch of commands ---------------------------------------------------------


def _member_of(cmd) -> str | None:
    return getattr(cmd, "member", None) or None


def load_book(db: Database, commands: list, now: str) -> Book:
    """The ledger state the commands read: their members' enrollments and states, the
    transactions they name, and the purchases and redemptions their refunds cite."""
    book = Book(now=now, programs=programs(db))
    members = {m for cmd in commands if (m := _member_of(cmd))}
    members |= {cmd.referred_by for cmd in commands if isinstance(cmd, Join) and cmd.referred_by}
    _enrollments(db, book, members)
    refunds = [cmd.ref for cmd in commands if isinstance(cmd, Refund)]
    _lock(db, {eid for progs in book.enrolled.values() for eid in progs.values()} | _ref_owners(db, refunds))
    txns = [cmd.txn for cmd in commands if getattr(cmd, "txn", None)]
    _priors(db, book, txns)
    ref_enrollments = _refs(db, book, refunds)
    eids = {eid for progs in book.enrolled.values() for eid in progs.values()} | ref_enrollments
    fresh = [cmd for cmd in commands if getattr(cmd, "txn", None) not in book.priors]
    debits = _debiting(book, fresh)
    since = min((cmd.at for cmd in fresh if getattr(cmd, "at", None)), default=now)
    _states(db, book, eids, _posting_members(book, fresh), debits, since, any(isinstance(c, Event) for c in fresh))
    return book


def _posting_members(book: Book, fresh: list) -> set[str]:
    """Members a command may post for: the rest only repeat recorded transactions (or reuse
    their ids), which needs nothing of their state but the enrollment."""
    out = {m for cmd in fresh if (m := _member_of(cmd))}
    out |= {cmd.referred_by for cmd in fresh if isinstance(cmd, Join) and cmd.referred_by}
    out |= {ref.entry.enrollment_id for cmd in fresh if isinstance(cmd, Refund) and (ref := book.refs.get(cmd.ref))}
    return out


def _ref_owners(db: Database, txns: list[str]) -> set[int]:
    if not txns:
        return set()
    d = db.dialect
    return {r[0] for r in db.all(f"SELECT enrollment_id FROM entries WHERE txn_id IN {d.texts('ids')}",
                                 {"ids": d.values(set(txns))})}


def _lock(db: Database, eids: set[int]) -> None:
    """Lock the enrollments the batch may post for, in id order (no deadlock between batches),
    before reading anything else of them: what is read next cannot change until the batch is
    written. (SQLite's write transaction already holds the whole ledger.)"""
    lock = db.dialect.for_update()
    if lock and eids:
        d = db.dialect
        db.all(f"SELECT id FROM enrollments WHERE id IN {d.ids('ids')} ORDER BY id {lock}",
               {"ids": d.values(eids)})


def _enrollments(db: Database, book: Book, members: set[str]) -> None:
    if not members:
        return
    d = db.dialect
    ids = {"ids": d.values(members)}
    book.known_members |= {r[0] for r in db.all(f"SELECT member_id FROM members WHERE member_id IN {d.texts('ids')}", ids)}
    for eid, member, program in db.all(
            f"SELECT id, member_id, program_code FROM enrollments WHERE member_id IN {d.texts('ids')}", ids):
        book.enrolled.setdefault(member, {})[program] = eid


def _priors(db: Database, book: Book, txns: list[str]) -> None:
    if not txns:
        return
    d = db.dialect
    ids = {"ids": d.values(set(txns))}
    for row in db.all(f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.txn_id IN {d.texts('ids')}", ids):
        e = entry_of(row)
        book.priors[e.txn_id] = Prior(e.content, e.effective_at, e)
    for txn, content, at in db.all(
            f"SELECT txn_id, content, effective_at FROM anonymous_sales WHERE txn_id IN {d.texts('ids')}", ids):
        book.priors[txn] = Prior(content, at)


def _refs(db: Database, book: Book, txns: list[str]) -> set[int]:
    """The entries refunds cite, with their refunds so far and the lots they touched."""
    if not txns:
        return set()
    d = db.dialect
    ids = {"ids": d.values(set(txns))}
    entries = [entry_of(r) for r in db.all(f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.txn_id IN {d.texts('ids')}",
                                           ids)]
    if not entries:
        return set()
    by_id = {e.id: e for e in entries}
    keys = {"ids": d.values(by_id)}
    refunds = {r[0]: r[1:] for r in db.all(
        f"""SELECT ref_entry_id, COALESCE(SUM(-amount_e4), 0), COALESCE(SUM(-points), 0), count(*) FROM entries
            WHERE ref_entry_id IN {d.ids('ids')} AND kind = 'refund' GROUP BY ref_entry_id""", keys)}
    own = {lot.entry_id: lot for lot in _lots(db, f"l.entry_id IN {d.ids('ids')}", keys)}
    moves: dict[int, list] = {}
    for entry_id, lot_id, points in db.all(
            f"SELECT entry_id, lot_id, points FROM lot_moves WHERE entry_id IN {d.ids('ids')} ORDER BY id", keys):
        moves.setdefault(entry_id, []).append((lot_id, points))
    touched = {lot_id for ms in moves.values() for lot_id, _ in ms}
    lots = {lot.id: lot for lot in _lots(db, f"l.id IN {d.ids('lots')}", {"lots": d.values(touched)})} if touched else {}
    expired = _expired_from(db, [lot.id for lot in own.values()])
    lines, refunded = _purchase_lines(db, list(by_id))
    payments = _payments(db, list(by_id))
    for e in entries:
        amount, points, n = refunds.get(e.id, (0, 0, 0))
        lot = own.get(e.id)
        book.refs[e.txn_id] = Ref(e, refunded_e4=amount, clawed=points, refunds=n, lot=lot,
                                  expired_from_lot=expired.get(lot.id, 0) if lot else 0,
                                  moves=tuple(moves.get(e.id, ())),
                                  lots=tuple(lots[lot_id] for lot_id, _ in moves.get(e.id, ())),
                                  lines=lines.get(e.id, ()), refunded_lines=refunded.get(e.id, ()),
                                  payment=payments.get(e.id))
    return {e.enrollment_id for e in entries}


_LINE_COLUMNS = ("l.entry_id, l.line_no, l.sku, l.category, l.quantity, l.unit_price_e4, l.discount_e4, "
                 "l.order_discount_e4, l.points")


def _purchase_lines(db: Database, purchases: list[int]) -> tuple[dict, dict]:
    """Purchases' lines, and the lines their refunds took back, by purchase."""
    d = db.dialect
    keys = {"ids": d.values(purchases)}
    lines: dict[int, tuple] = {}
    for r in db.all(f"SELECT {_LINE_COLUMNS} FROM purchase_lines l WHERE l.entry_id IN {d.ids('ids')} "
                    "ORDER BY l.entry_id, l.line_no", keys):
        lines[r[0]] = lines.get(r[0], ()) + (PurchaseLine(*r),)
    refunded: dict[int, tuple] = {}
    for r in db.all(f"""SELECT e.ref_entry_id, {_LINE_COLUMNS} FROM purchase_lines l JOIN entries e ON e.id = l.entry_id
                        WHERE e.ref_entry_id IN {d.ids('ids')} AND e.kind = 'refund'
                        ORDER BY e.id, l.line_no""", keys):
        refunded[r[0]] = refunded.get(r[0], ()) + (PurchaseLine(*r[1:]),)
    return lines, refunded


def _payments(db: Database, purchases: list[int]) -> dict[int, Payment]:
    """The redemptions that paid part of these purchases with points, with the lots they took
    from and what refunds gave back, by purchase."""
    d = db.dialect
    pays = {e.ref_entry_id: e for e in map(entry_of, db.all(
        f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.ref_entry_id IN {d.ids('ids')} AND e.kind = 'redeem'",
        {"ids": d.values(purchases)}))}
    if not pays:
        return {}
    keys = {"ids": d.values(e.id for e in pays.values())}
    taken: dict[int, list] = {}
    for entry_id, lot_id, points in db.all(
            f"SELECT entry_id, lot_id, points FROM lot_moves WHERE entry_id IN {d.ids('ids')} ORDER BY id", keys):
        taken.setdefault(entry_id, []).append((lot_id, points))
    back: dict[int, list] = {}
    for pay_id, lot_id, points in db.all(
            f"""SELECT e.ref_entry_id, m.lot_id, m.points FROM lot_moves m JOIN entries e ON e.id = m.entry_id
                WHERE e.ref_entry_id IN {d.ids('ids')} AND e.kind = 'refund' ORDER BY m.id""", keys):
        back.setdefault(pay_id, []).append((lot_id, points))
    touched = {lot_id for ms in taken.values() for lot_id, _ in ms}
    lots = {lot.id: lot for lot in _lots(db, f"l.id IN {d.ids('lots')}", {"lots": d.values(touched)})}
    return {purchase: Payment(e, tuple(taken.get(e.id, ())), tuple(lots[i] for i, _ in taken.get(e.id, ())),
                              tuple(back.get(e.id, ())))
            for purchase, e in pays.items()}


def _expired_from(db: Database, lot_ids: list[int]) -> dict[int, int]:
    """Points of each lot the expire job recorded as expired."""
    if not lot_ids:
        return {}
    d = db.dialect
    return {r[0]: r[1] for r in db.all(
        f"""SELECT m.lot_id, -SUM(m.points) FROM lot_moves m JOIN entries e ON e.id = m.entry_id
            WHERE m.lot_id IN {d.ids('ids')} AND e.kind = 'expire' GROUP BY m.lot_id""",
        {"ids": d.values(lot_ids)})}


def _debiting(book: Book, commands: list) -> set[str]:
    """Members whose lots a command of the batch may take from (or give back to)."""
    out = set()
    for cmd in commands:
        if isinstance(cmd, (Redeem, Refund)) or (isinstance(cmd, Adjust) and cmd.points < 0) or \
                (isinstance(cmd, Purchase) and cmd.pay_points):
            out.add(getattr(cmd, "member", None) or "")
    return out


_LOT_COLUMNS = """l.id, l.enrollment_id, l.entry_id, l.points, l.remaining, l.earned_at, l.expires_at,
                  l.inactivity_days,
                  CASE WHEN EXISTS (SELECT 1 FROM lot_moves m JOIN entries x ON x.id = m.entry_id
                                    WHERE m.lot_id = l.id AND x.kind = 'expire') THEN 1 ELSE 0 END AS recorded,
                  l.inactivity_from"""


_OPEN_LOT_COLUMNS = """l.id, l.enrollment_id, l.entry_id, l.points, l.remaining, l.earned_at, l.expires_at,
                       l.inactivity_days, 0, l.inactivity_from"""


def _lots(db: Database, condition: str, params: dict, *, open_only: bool = False) -> list[Lot]:
    """Lots meeting a condition; open lots (points left) never have a recorded expiry, which
    takes the whole remainder, so that is not looked up for them."""
    columns = _OPEN_LOT_COLUMNS if open_only else _LOT_COLUMNS
    rows = db.all(f"SELECT {columns} FROM lots l WHERE {condition} ORDER BY l.id", params)
    return [Lot(*r[:8], expiry_recorded=bool(r[8]), inactivity_from=r[9]) for r in rows]


def _states(db: Database, book: Book, eids: set[int], posting: set, debits: set[str], since: str,
            events: bool) -> None:
    """Every enrollment's state; in full (lots, tiers, window, activity, events) only for
    those a command may post for (`posting`: member ids, or enrollment ids of refunds)."""
    if not eids:
        return
    d = db.dialect
    rows = db.all(f"""SELECT id, member_id, program_code, tags, joined_at, referred_by, recorded_at, uncovered
                      FROM enrollments WHERE id IN {d.ids('ids')}""", {"ids": d.values(eids)})
    enrollments = {r[0]: (Enrollment(r[0], r[1], r[2], tuple(t for t in r[3].split(";") if t), r[4], r[5], r[6]), r[7])
                   for r in rows}
    full = {eid: v for eid, v in enrollments.items() if eid in posting or v[0].member_id in posting}
    lots = _open_lots(db, book, full, debits)
    tiers = _tier_history(db, set(full))
    windows = _windows(db, book, full, since)
    activity = _activity(db, book, full, lots)
    evts = _events(db, set(full)) if events and full else {}
    for eid, (enr, debt) in enrollments.items():
        p = book.programs[enr.program]
        seen = activity.get(eid)
        book.members[eid] = MemberState(
            enr, p, debt=debt, lots={lot.id: lot for lot in lots.get(eid, ())}, tiers=tiers.get(eid, []),
            window=windows.get(eid, []), window_from=shift(since, -p.window_days) if p.tiered else None,
            activity=list(seen[0]) if seen else [], events=evts.get(eid, []),
            last_inactivity_expiry=seen[1] if seen else None)


def _open_lots(db: Database, book: Book, enrollments: dict, debits: set[str]) -> dict[int, list[Lot]]:
    """Lots with points left, of the enrollments a command may debit (a credit only adds a lot)."""
    wanted = [eid for eid, (enr, _) in enrollments.items() if enr.member_id in debits or "" in debits]
    out: dict[int, list[Lot]] = {}
    if wanted:
        d = db.dialect
        for lot in _lots(db, f"l.remaining > 0 AND l.enrollment_id IN {d.ids('ids')}", {"ids": d.values(wanted)},
                         open_only=True):
            out.setdefault(lot.enrollment_id, []).append(lot)
    return out


def _tier_history(db: Database, eids: set[int]) -> dict[int, list[TierChange]]:
    d = db.dialect
    out: dict[int, list[TierChange]] = {}
    if not eids:
        return out
    for r in db.all(f"""SELECT id, enrollment_id, tier, previous, source, reason, program_version_id, effective_at,
                               recorded_at, until FROM tier_changes WHERE enrollment_id IN {d.ids('ids')}
                        ORDER BY effective_at, id""", {"ids": d.values(eids)}):
        out.setdefault(r[1], []).append(TierChange(*r))
    return out


def _windows(db: Database, book: Book, enrollments: dict, since: str) -> dict[int, list[Qualifying]]:
    """The qualifying credits (and refunds of them) of tiered enrollments after the earliest
    window any command of the batch looks at."""
    out: dict[int, list[Qualifying]] = {}
    for basis in ("spend", "points"):
        group = {eid: book.programs[enr.program] for eid, (enr, _) in enrollments.items()
                 if book.programs[enr.program].tiered and book.programs[enr.program].basis == basis}
        if group:
            start = shift(since, -max(p.window_days for p in group.values()))
            for item in _window_items(db, basis, start, list(group)):
                out.setdefault(item[0], []).append(Qualifying(*item[1:]))
    for items in out.values():
        items.sort(key=lambda q: (q.at, q.entry_id))
    return out


def _window_items(db: Database, basis: str, start: str, eids: list[int]) -> list[tuple]:
    d = db.dialect
    value = qualifying_value(basis)
    kinds = qualifying_kinds(basis)
    return db.all(
        f"""SELECT p.enrollment_id, p.effective_at, p.effective_at, p.{value}, p.id FROM entries p
            WHERE p.enrollment_id IN {d.ids('ids')} AND p.kind = 'earn' AND {kinds} AND p.effective_at > :start
            UNION ALL
            SELECT p.enrollment_id, p.effective_at, r.effective_at, r.{value}, r.id
            FROM entries p JOIN entries r ON r.ref_entry_id = p.id AND r.kind = 'refund'
            WHERE p.enrollment_id IN {d.ids('ids')} AND p.kind = 'earn' AND {kinds} AND p.effective_at > :start""",
        {"ids": d.values(eids), "start": start})


def _activity(db: Database, book: Book, enrollments: dict, lots: dict) -> dict[int, tuple]:
    """For enrollments of programs that ever had inactivity expiry: (their activity times,
    their last recorded inactivity expiry)."""
    idle = _inactivity_programs(db)
    eids = [eid for eid, (enr, _) in enrollments.items() if enr.program in idle]
    if not eids:
        return {}
    d = db.dialect
    keys = {"ids": d.values(eids)}
    last = {r[0]: r[1] for r in db.all(
        f"""SELECT enrollment_id, MAX(effective_at) FROM entries WHERE enrollment_id IN {d.ids('ids')}
            AND kind = 'expire' AND rule_kind = 'inactivity' GROUP BY enrollment_id""", keys)}
    times: dict[int, list[str]] = {}
    for eid, at in db.all(f"""SELECT enrollment_id, effective_at FROM entries WHERE enrollment_id IN {d.ids('ids')}
                              AND kind IN ('earn', 'redeem') ORDER BY effective_at""", keys):
        times.setdefault(eid, []).append(at)
    return {eid: (times.get(eid, ()), last.get(eid)) for eid in eids}


def _inactivity_programs(db: Database) -> set[str]:
    import json

    return {code for code, definition in db.all("SELECT program_code, definition FROM program_versions")
            if ((json.loads(definition).get("expiry") or {}).get("inactivity_days"))}


def _events(db: Database, eids: set[int]) -> dict[int, list[tuple[str, str]]]:
    d = db.dialect
    out: dict[int, list] = {}
    for eid, event, at in db.all(f"""SELECT enrollment_id, event, effective_at FROM entries
                                     WHERE enrollment_id IN {d.ids('ids')} AND kind = 'earn' AND event IS NOT NULL""",
                                 {"ids": d.values(eids)}):
        out.setdefault(eid, []).append((event, at))
    return out


# --- single records --------------------------------------------------------------------------


def entry_by_txn(db: Database, txn: str) -> Entry | None:
    row = db.one(f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.txn_id = ?", (txn,))
    return entry_of(row) if row else None


def entry_by_id(db: Database, entry_id: int) -> Entry | None:
    row = db.one(f"SELECT {ENTRY_COLUMNS} FROM entries e WHERE e.id = ?", (entry_id,))
    return entry_of(row) if row else None
