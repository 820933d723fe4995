"""Domain queries named once: the SQL spelling of the rules core/rules.py states, for
queries that run them over a whole ledger (balances, reports, jobs, verify).

`fragments(dialect)` gives the texts for one dialect. Conventions: `l` is a lot row,
`p` a purchase or other entry row, `:t` the moment asked."""

from __future__ import annotations

from functools import lru_cache

from .dialect import Dialect

# A purchase: an earn entry with an amount (spend or partner).
PURCHASE = "kind = 'earn' AND amount_e4 IS NOT NULL"
# The operator's own sale (a partner's purchase is the partner's revenue).
OWN_SALE = "rule_kind = 'spend'"


def tier_at(enrollment: str, t: str = ":t") -> str:
    """The tier of an enrollment at a moment: its latest tier change up to then."""
    return f"""(SELECT tc.tier FROM tier_changes tc WHERE tc.enrollment_id = {enrollment} AND tc.effective_at <= {t}
               ORDER BY tc.effective_at DESC, tc.id DESC LIMIT 1)"""


def qualifying_kinds(basis: str, alias: str = "p") -> str:
    """The entries that count toward a tier window (core.rules.counts_for_tier)."""
    if basis == "spend":
        return f"{alias}.rule_kind = 'spend'"
    return f"{alias}.rule_kind IN ('spend', 'partner', 'event', 'referral')"


def qualifying_value(basis: str) -> str:
    return "amount_e4" if basis == "spend" else "points"


class Fragments:
    def __init__(self, d: Dialect):
        self.d = d
        plus = d.unary_plus()
        # Inactivity expiry (core.rules.inactivity_deadline): a lot with inactivity_days D expires
        # at the first moment x + D where x is its start (earning, or when the rule took effect)
        # or a later activity (an earn or redeem entry) and no activity follows x before x + D.
        start = "COALESCE(l.inactivity_from, l.earned_at)"
        self.inactivity_deadline = f"""(SELECT MIN(s.xp) FROM (
            SELECT {d.add_days("a.x", "l.inactivity_days")} AS xp, LEAD(a.x) OVER (ORDER BY a.x) AS nx
            FROM (SELECT {start} AS x
                  UNION ALL
                  SELECT ae.effective_at FROM entries ae
                  WHERE ae.enrollment_id = l.enrollment_id AND ae.kind IN ('earn', 'redeem')
                    AND ae.effective_at > {start}) a) s
            WHERE s.nx IS NULL OR s.nx >= s.xp)"""
        # Effective expiry of lot l (NULL: never; core.rules.lot_end).
        never = "COALESCE(l.expires_at, '9')"  # sorts after every timestamp
        self.lot_expiry = (f"(CASE WHEN l.inactivity_days IS NULL THEN l.expires_at"
                           f" ELSE {d.least(never, self.inactivity_deadline)} END)")
        # Lot l not expired at :t (earned_at <= :t is checked apart; core.rules.lot_alive).
        self.lot_alive = (f"(l.expires_at IS NULL OR l.expires_at > :t)"
                          f" AND (l.inactivity_days IS NULL OR {self.inactivity_deadline} > :t)")
        self.lot_expired = f"(l.expires_at <= :t OR (l.inactivity_days IS NOT NULL AND {self.inactivity_deadline} <= :t))"
        # Points of lot l as they stood at :t, and just before it expired.
        self.lot_at = ("(l.points + COALESCE((SELECT SUM(m.points) FROM lot_moves m"
                       " WHERE m.lot_id = l.id AND m.effective_at <= :t), 0))")
        self.lot_at_expiry = ("(l.points + COALESCE((SELECT SUM(m.points) FROM lot_moves m"
                              f" WHERE m.lot_id = l.id AND m.effective_at < {self.lot_expiry}), 0))")
        self.plus = plus

    def lot_points_at(self, condition: str, scope: str = "") -> str:
        """SELECT lot, eid, points: the points at :t of lots earned by :t that meet `condition`
        (a condition on lots l that implies they are alive at :t), one row per lot or move.

        A lot's points at :t are its cached remainder (points plus every move; `verify` checks
        it) less its moves after :t, so only lots with points left now, and the moves recorded
        after :t, are read. (SQLite's `+` keeps the planner on one pass over lots.)"""
        return f"""
            SELECT l.id AS lot, l.enrollment_id AS eid, l.remaining AS points FROM lots l
            WHERE {self.plus}l.remaining > 0 AND l.earned_at <= :t AND {condition} {scope}
            UNION ALL
            SELECT l.id, l.enrollment_id, -m.points FROM lot_moves m {self.d.cross_join()} lots l ON l.id = m.lot_id
            WHERE m.effective_at > :t AND l.earned_at <= :t AND {condition} {scope}"""

    def balance_rows(self, lot_scope: str = "", entry_scope: str = "") -> str:
        """SELECT eid, points: rows that sum to each enrollment's balance at :t: lots alive at :t
        as they stood then, plus claw-back debt."""
        return f"""
            SELECT b.eid, b.points FROM ({self.lot_points_at(self.lot_alive, lot_scope)}) b
            UNION ALL
            SELECT enrollment_id, uncovered FROM entries
            WHERE uncovered <> 0 AND effective_at <= :t {entry_scope}"""

    def qualifying_rows(self, basis: str, scope: str, spend_only: bool) -> str:
        """SELECT eid, v: rows that sum per enrollment to the tier window's total (spend e4 or
        points earned in (:start, :t], net of refunds recorded up to :t). `spend_only` (spend
        basis, and no partner rule in the program: every purchase is a spend purchase): the
        purchases are summed per enrollment from the purchases index, in its order."""
        value = qualifying_value(basis)
        window = (f"p.kind = 'earn' AND {qualifying_kinds(basis)} AND p.effective_at > :start"
                  f" AND p.effective_at <= :t {scope}")
        if spend_only:
            entries = f"""SELECT p.enrollment_id AS eid, SUM(p.amount_e4) AS v
                FROM entries p {self.d.indexed_by('entries_purchases')}
                WHERE p.kind = 'earn' AND p.amount_e4 IS NOT NULL
                  AND p.effective_at > :start AND p.effective_at <= :t {scope}
                GROUP BY p.enrollment_id"""
        else:
            entries = f"SELECT p.enrollment_id AS eid, p.{value} AS v FROM entries p WHERE {window}"
        return f"""{entries}
            UNION ALL
            SELECT p.enrollment_id, r.{value} FROM entries r {self.d.cross_join()} entries p ON p.id = r.ref_entry_id
            WHERE r.ref_entry_id IS NOT NULL AND r.kind = 'refund' AND r.effective_at <= :t
              AND p.{value} IS NOT NULL AND {window}"""

    def qualifying_totals(self, basis: str, scope: str = "") -> str:
        """SELECT enrollment_id, total: the tier window's total per enrollment."""
        return f"""SELECT q.eid AS enrollment_id, SUM(q.v) AS total
                   FROM ({self.qualifying_rows(basis, scope, False)}) q GROUP BY q.eid"""


@lru_cache(maxsize=None)
def fragments(d: Dialect) -> Fragments:
    return Fragments(d)
