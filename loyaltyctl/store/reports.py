"""SQL of the program reports. Every figure is aggregated here, in SQL (window functions
and GROUP BY), so a report never loads the ledger into Python.

Purchases are `earn` entries with an amount (rule_kind spend or partner); their
refunds are `refund` entries with a negative amount citing them (ref_entry_id).
Periods are half-open: since <= effective_at < until (timestamps compare as text)."""

from __future__ import annotations

from .connection import Database
from .fragments import OWN_SALE, PURCHASE, fragments, tier_at
from .members import has_partner_rules

# A purchase `p` net of its refunds recorded before :until: _NET over `p {_REFUNDS}`, with the
# CTE _REFUNDED. One pass over the refunds, not one lookup per purchase (ROI and ticket read
# every purchase of the period).
_REFUNDED = """refunded AS (
            SELECT r.ref_entry_id AS id, SUM(r.amount_e4) AS amount FROM entries r
            WHERE r.ref_entry_id IS NOT NULL AND r.kind = 'refund' AND r.effective_at < :until
            GROUP BY r.ref_entry_id
        )"""
_REFUNDS = "LEFT JOIN refunded rf ON rf.id = p.id"
_NET = "(p.amount_e4 + COALESCE(rf.amount, 0))"


def _program(sql: str, params: dict, program: str | None, column: str) -> str:
    if program:
        params["program"] = program
        return sql + f" AND {column} = :program"
    return sql


def _program_scope(params: dict, program: str | None, condition: str) -> str:
    """The SQL condition limiting a query to one program (bound as :program), or nothing."""
    if not program:
        return ""
    params["program"] = program
    return condition


# --- balances at a moment ----------------------------------------------------------------

_IN_PROGRAM = "IN (SELECT id FROM enrollments WHERE program_code = :program)"


def _balance_rows(db: Database, program: str | None) -> str:
    """SELECT eid, points: the rows summing to each enrollment's balance at :t (of one program)."""
    f = fragments(db.dialect)
    if not program:
        return f.balance_rows()
    return f.balance_rows(f"AND {f.plus}l.enrollment_id {_IN_PROGRAM}", f"AND {f.plus}enrollment_id {_IN_PROGRAM}")


def _balances(db: Database, program: str | None) -> str:
    """The CTE balance(eid, points): each enrollment's balance at :t."""
    return f"balance AS (SELECT br.eid, SUM(br.points) AS points FROM ({_balance_rows(db, program)}) br GROUP BY br.eid)"


def top_balances(db: Database, t: str, program: str | None, top: int | None):
    """The `top` largest balances at :t (None: all; ties by member and program) of enrollments
    joined by :t, with the member's name and the tier at :t (members.balances_at's figures),
    yielded as read."""
    params: dict = {"t": t} | ({"top": top} if top is not None else {})
    scope = _program_scope(params, program, "AND e.program_code = :program")
    sql = f"""
        WITH {_balances(db, program)}
        SELECT b.id, b.member_id, b.program_code, m.name, b.joined_at, {tier_at("b.id")} AS tier, b.balance
        FROM (SELECT e.id, e.member_id, e.program_code, e.joined_at, COALESCE(bl.points, 0) AS balance
              FROM enrollments e LEFT JOIN balance bl ON bl.eid = e.id
              WHERE e.joined_at <= :t {scope}
              ORDER BY balance DESC, e.member_id, e.program_code {"LIMIT :top" if top is not None else ""}) b
        JOIN members m ON m.member_id = b.member_id
        ORDER BY b.balance DESC, b.member_id, b.program_code"""
    return (dict(r) for r in db.stream(sql, params))


def tier_stats(db: Database, program: str, t: str, start: str, basis: str, levels: list[tuple[str, int | None]]) -> list:
    """Per tier at :t of one program: members, summed balance and qualifying total (spend e4 or
    points in (start, t]), and members within 10% of the next threshold (`levels`: name and the
    next level's threshold in the same unit, None for the top)."""
    params: dict = {"t": t, "start": start, "program": program}
    values = []
    for i, (name, nxt) in enumerate(levels):
        values.append(f"(:n{i}, :x{i})")
        params[f"n{i}"], params[f"x{i}"] = name, nxt
    level_cte = f"levels(name, nxt) AS (VALUES {', '.join(values)})," if values else \
        "levels(name, nxt) AS (SELECT CAST(NULL AS TEXT), CAST(NULL AS BIGINT) WHERE 1 = 0),"
    # One stream of (enrollment, its tier at :t | a part of its balance | a part of its qualifying
    # total) grouped by enrollment: one sort, and no join between large intermediate results,
    # whose plan without ANALYZE statistics (loyaltyctl never gathers them) can be a nested scan.
    spend_only = basis == "spend" and not has_partner_rules(db, program)
    f = fragments(db.dialect)
    qualifying = f.qualifying_rows(basis, f"AND {f.plus}p.enrollment_id {_IN_PROGRAM}", spend_only)
    sql = f"""
        WITH {level_cte}
        member AS (
            SELECT u.eid, MAX(u.tier) AS tier, SUM(u.points) AS points, SUM(u.total) AS total FROM (
                SELECT e.id AS eid, 1 AS enrolled, {tier_at("e.id")} AS tier, CAST(NULL AS BIGINT) AS points,
                       CAST(NULL AS BIGINT) AS total
                FROM enrollments e WHERE e.program_code = :program AND e.joined_at <= :t
                UNION ALL
                SELECT br.eid, 0, NULL, br.points, NULL FROM ({_balance_rows(db, program)}) br
                UNION ALL
                SELECT q.eid, 0, NULL, NULL, q.v FROM ({qualifying}) q
            ) u GROUP BY u.eid HAVING MAX(u.enrolled) = 1
        )
        SELECT m.tier, count(*) AS members, COALESCE(SUM(m.points), 0) AS balance,
               COALESCE(SUM(m.total), 0) AS qualifying,
               COALESCE(SUM(CASE WHEN lv.nxt IS NOT NULL AND COALESCE(m.total, 0) * 10 >= lv.nxt * 9
                                 AND COALESCE(m.total, 0) < lv.nxt THEN 1 ELSE 0 END), 0) AS near_next
        FROM member m LEFT JOIN levels lv ON lv.name = m.tier
        GROUP BY m.tier"""
    return [dict(r) for r in db.all(sql, params)]


# --- liability -------------------------------------------------------------------------------


def liability(db: Database, t: str, soon: str, later: str, program: str | None) -> list:
    """Per program: unexpired points at :t in lots (as they stood at :t), members holding them,
    and the part of them expiring in (t, soon] and (t, later]."""
    params: dict = {"t": t, "soon": soon, "later": later}
    scope = _program_scope(params, program, "AND l.enrollment_id IN (SELECT id FROM enrollments WHERE program_code = :program)")
    f = fragments(db.dialect)
    sql = f"""
        WITH lot_at AS (
            SELECT l.enrollment_id AS eid, {f.lot_expiry} AS xp, l.points + COALESCE(SUM(m.points), 0) AS rem
            FROM lots l LEFT JOIN lot_moves m ON m.lot_id = l.id AND m.effective_at <= :t
            WHERE l.earned_at <= :t AND {f.lot_alive} {scope}
            GROUP BY l.id, l.enrollment_id, l.points, l.expires_at, l.inactivity_days, l.earned_at
        )
        SELECT e.program_code AS program, COALESCE(SUM(a.rem), 0) AS points,
               count(DISTINCT CASE WHEN a.rem > 0 THEN a.eid END) AS members,
               COALESCE(SUM(CASE WHEN a.xp <= :soon THEN a.rem END), 0) AS expiring_soon,
               COALESCE(SUM(CASE WHEN a.xp <= :later THEN a.rem END), 0) AS expiring_later
        FROM lot_at a JOIN enrollments e ON e.id = a.eid
        GROUP BY e.program_code"""
    return [dict(r) for r in db.all(sql, params)]


# --- revenue and ROI ---------------------------------------------------------------------------


def revenue(db: Database, since: str, until: str, program: str | None) -> list:
    """Per program over [since, until): purchasing members, purchases, revenue and repeat revenue
    (purchases after the member's first purchase ever) net of refunds made before `until`,
    and points redeemed net of cancelled redemptions."""
    params: dict = {"since": since, "until": until}
    scope = _program_scope(params, program, "AND p.enrollment_id IN (SELECT id FROM enrollments WHERE program_code = :program)")
    sql = f"""
        WITH {_REFUNDED}, firsts AS (
            SELECT enrollment_id AS eid, MIN(effective_at) AS t FROM entries p
            WHERE {PURCHASE} AND p.{OWN_SALE} {scope} GROUP BY enrollment_id
        ), first_ids AS MATERIALIZED (  -- once per enrollment, not once per purchase joined to it
            SELECT f.eid, (SELECT MIN(p.id) FROM entries p WHERE p.enrollment_id = f.eid AND p.effective_at = f.t
                           AND p.{PURCHASE} AND p.{OWN_SALE}) AS id
            FROM firsts f WHERE f.t < :until
        ), period AS (
            SELECT p.enrollment_id AS eid, p.id, {_NET} AS net FROM entries p {_REFUNDS}
            WHERE p.{PURCHASE} AND p.{OWN_SALE} AND p.effective_at >= :since AND p.effective_at < :until {scope}
        ), partner AS (
            SELECT e.program_code, count(*) AS purchases, SUM({_NET}) AS revenue
            FROM entries p JOIN enrollments e ON e.id = p.enrollment_id {_REFUNDS}
            WHERE p.{PURCHASE} AND p.rule_kind = 'partner' AND p.effective_at >= :since AND p.effective_at < :until
              {scope}
            GROUP BY e.program_code
        ), redeemed AS (
            SELECT e.program_code, -SUM(p.points) AS points FROM entries p JOIN enrollments e ON e.id = p.enrollment_id
            WHERE p.rule_kind = 'redeem' AND p.effective_at >= :since AND p.effective_at < :until {scope}
            GROUP BY e.program_code
        ), sums AS (
            SELECT e.program_code, count(DISTINCT pe.eid) AS members, count(*) AS purchases,
                   SUM(pe.net) AS revenue,
                   SUM(CASE WHEN pe.id <> fi.id THEN pe.net ELSE 0 END) AS repeat_revenue
            FROM period pe JOIN enrollments e ON e.id = pe.eid JOIN first_ids fi ON fi.eid = pe.eid
            GROUP BY e.program_code
        )
        SELECT pr.code AS program, COALESCE(s.members, 0) AS members, COALESCE(s.purchases, 0) AS purchases,
               COALESCE(s.revenue, 0) AS revenue, COALESCE(s.repeat_revenue, 0) AS repeat_revenue,
               COALESCE(rd.points, 0) AS redeemed, COALESCE(pa.purchases, 0) AS partner_purchases,
               COALESCE(pa.revenue, 0) AS partner_revenue
        FROM programs pr LEFT JOIN sums s ON s.program_code = pr.code
        LEFT JOIN redeemed rd ON rd.program_code = pr.code LEFT JOIN partner pa ON pa.program_code = pr.code
        {"WHERE pr.code = :program" if program else ""}
        ORDER BY pr.code"""
    return [dict(r) for r in db.all(sql, params)]


def first_activity(db: Database, program: str | None) -> str | None:
    sql = "SELECT MIN(joined_at) FROM enrollments WHERE 1 = 1"
    params: dict = {}
    return db.scalar(_program(sql, params, program, "program_code"), params)


# --- churn ------------------------------------------------------------------------------------

PERIOD_INDEX = {
    "month": "(CAST(substr(effective_at, 1, 4) AS INTEGER) * 12 + CAST(substr(effective_at, 6, 2) AS INTEGER) - 1)",
    "quarter": "(CAST(substr(effective_at, 1, 4) AS INTEGER) * 4 + (CAST(substr(effective_at, 6, 2) AS INTEGER) - 1) / 3)",
}


# Periods per churn query: one bit each in a 64-bit integer (kept below the sign bit).
MASK_PERIODS = 62


def _members_share(db: Database) -> bool:
    """Whether some member is enrolled in more than one program."""
    return db.one("SELECT 1 FROM enrollments GROUP BY member_id HAVING count(*) > 1 LIMIT 1") is not None


def churn(db: Database, period: str, lo: int, hi: int, program: str | None) -> list[dict]:
    """Per period index in [lo - 1, hi]: members with a purchase (active), and members active in
    the previous period with none in this one (lost; 0 for lo - 1). Ranges longer than
    MASK_PERIODS are read in chunks that overlap by one period."""
    active: dict[int, int] = {}
    kept: dict[int, int] = {}
    base = lo - 1
    while True:
        width = min(MASK_PERIODS, hi - base + 1)
        row = _churn_masks(db, period, base, width, program)
        for i in range(width):
            active[base + i] = row[f"a{i}"] or 0
            if i:
                kept[base + i] = row[f"k{i}"] or 0
        if base + width > hi:
            break
        base += width - 1
    return [{"pi": i, "active": active[i], "lost": active[i - 1] - kept[i] if i in kept else 0}
            for i in range(lo - 1, hi + 1)]


def _period_start(i: int, period: str) -> str:
    """'YYYY-MM' of the first month of period index i (a timestamp is in periods >= i iff it
    compares >= this prefix)."""
    months = i if period == "month" else 3 * i  # months since year 0
    return f"{months // 12:04d}-{months % 12 + 1:02d}"


def _churn_masks(db: Database, period: str, base: int, width: int, program: str | None):
    """For periods base .. base + width - 1: a{i}, members with a purchase in period base + i,
    and k{i}, members with one in both base + i - 1 and base + i.

    Each member's active periods are one integer (bit i: period base + i), built by a GROUP BY
    that reads the purchases index in its own order: no sort, no window over the purchases.
    The counts are then bit sums over one row per member."""
    params: dict = {"base": base, "since": _period_start(base, period), "until": _period_start(base + width, period)}
    scope = _program_scope(params, program, f"AND p.enrollment_id {_IN_PROGRAM}")
    if program or not _members_share(db):
        who, source = "p.enrollment_id", "entries p"  # one enrollment per member in scope
    else:
        who, source = "e.member_id", "entries p JOIN enrollments e ON e.id = p.enrollment_id"
    index = PERIOD_INDEX[period].replace("effective_at", "p.effective_at")
    counts = ", ".join([f"CAST(SUM((m >> {i}) & 1) AS BIGINT) AS a{i}" for i in range(width)]
                       + [f"CAST(SUM((k >> {i - 1}) & 1) AS BIGINT) AS k{i}" for i in range(1, width)])
    sql = f"""
        WITH masks AS (
            SELECT CAST(SUM(DISTINCT CAST(1 AS BIGINT) << CAST({index} - :base AS INTEGER)) AS BIGINT) AS m FROM {source}
            WHERE p.{PURCHASE} AND p.effective_at >= :since AND p.effective_at < :until {scope}
            GROUP BY {who}
        )
        SELECT {counts} FROM (SELECT m, m & (m >> 1) AS k FROM masks) mk"""
    return db.one(sql, params)


def purchase_span(db: Database, program: str | None) -> tuple[str | None, str | None]:
    sql = f"SELECT MIN(p.effective_at), MAX(p.effective_at) FROM entries p WHERE p.{PURCHASE}"
    params: dict = {}
    if program:
        sql += " AND p.enrollment_id IN (SELECT id FROM enrollments WHERE program_code = :program)"
        params["program"] = program
    row = db.one(sql, params)
    return row[0], row[1]


# --- at risk ----------------------------------------------------------------------------------


def _lot_points_expiring(db: Database, scope: str) -> str:
    """_lot_points_at for the lots whose effective expiry falls in (:t, :soon]: those with a date
    expiry only are found by their open-expiry index; those that can also lapse for inactivity
    have their deadline computed."""
    f = fragments(db.dialect)
    date_only = ("l.remaining > 0 AND l.expires_at > :t AND l.expires_at <= :soon AND l.inactivity_days IS NULL"
                 f" AND l.earned_at <= :t {scope}")
    in_window = f"{f.lot_expiry} > :t AND {f.lot_expiry} <= :soon"
    return f"""
        SELECT l.id AS lot, l.enrollment_id AS eid, l.remaining AS points FROM lots l WHERE {date_only}
        UNION ALL
        SELECT l.id, l.enrollment_id, l.remaining FROM lots l
        WHERE l.inactivity_days IS NOT NULL AND l.remaining > 0 AND l.earned_at <= :t AND {in_window} {scope}
        UNION ALL
        SELECT l.id, l.enrollment_id, -m.points FROM lot_moves m {db.dialect.cross_join()} lots l ON l.id = m.lot_id
        WHERE m.effective_at > :t AND l.earned_at <= :t AND {in_window} {scope}"""


def at_risk(db: Database, t: str, num: int, den: int, soon: str, quiet: str, program: str | None):
    """The rows of `_at_risk` (below), largest balance first, yielded as read."""
    sql, params = _at_risk(db, t, num, den, soon, quiet, program)
    return (dict(r) for r in db.stream(sql + " ORDER BY r.balance DESC, r.member_id, r.program", params))


def at_risk_total(db: Database, t: str, num: int, den: int, soon: str, quiet: str,
                  program: str | None) -> tuple[int, int]:
    """How many rows `at_risk` gives and the sum of their balances (the points at stake)."""
    sql, params = _at_risk(db, t, num, den, soon, quiet, program)
    row = db.one(f"SELECT count(*), COALESCE(SUM(r.balance), 0) FROM ({sql}) r", params)
    return int(row[0]), int(row[1])


def _at_risk(db: Database, t: str, num: int, den: int, soon: str, quiet: str, program: str | None):
    """Enrollments at :t whose time since their last purchase exceeds num/den times their median
    gap between purchases (at least 3 purchases), or with points expiring in (t, soon] and no
    earn or redeem activity in (quiet, t]; with their balance at :t and the seconds from their
    last purchase to :t."""
    # Gaps come from purchase_gaps (each purchase's gap to the one before, in seconds; at_s <= :ts
    # cuts the history at :t), keyed by (enrollment, gap): the gaps of each enrollment in order.
    # Lagging is decided from counts, without ranking anyone's gaps: with since_last = S and
    # c = the least integer gap with gap * num >= S * den (gaps below c are below S / factor),
    # and n gaps, the median is below S / factor iff more than half the gaps are below c
    # (n / 2 + 1 of them), or, n even and exactly n / 2 below, iff the largest gap below c plus
    # the smallest other is under 2 S / factor. Only the lagging enrollments' gaps are ranked,
    # for the median shown. The balance at :t of each flagged enrollment: its lots' points at :t
    # (as in _lot_points_at) and its debt (the cached total less entries after :t); the moves
    # after :t are few (none at now), so they are read first (`later`), on either backend.
    d = db.dialect
    f = fragments(d)
    params: dict = {"t": t, "ts": db.scalar(f"SELECT {d.epoch(':t')}", {"t": t}), "num": num, "den": den,
                    "soon": soon, "quiet": quiet}
    scope = _program_scope(params, program, f"AND enrollment_id {_IN_PROGRAM}")
    lot_scope = scope.replace("enrollment_id", f"{f.plus}l.enrollment_id")
    gaps = "FROM purchase_gaps g WHERE g.enrollment_id = r.eid AND g.at_s <= :ts"
    sql = f"""
        WITH rhythm AS (
            SELECT r.*, (:ts - r.last_s) * :den AS d, ((:ts - r.last_s) * :den + :num - 1) / :num AS c
            FROM (SELECT enrollment_id AS eid, count(*) AS n, MAX(at_s) AS last_s FROM purchase_gaps
                  WHERE at_s <= :ts {scope} GROUP BY enrollment_id HAVING count(*) >= 2) r
        ), late AS MATERIALIZED (
            SELECT eid, n, last_s FROM (SELECT r.*, (SELECT count(*) {gaps} AND g.gap < r.c) AS below FROM rhythm r) rb
            WHERE rb.below >= rb.n / 2 + 1
               OR (rb.n % 2 = 0 AND rb.below = rb.n / 2
                   AND :num * ((SELECT MAX(g.gap) {gaps.replace("r.eid", "rb.eid")} AND g.gap < rb.c)
                               + (SELECT MIN(g.gap) {gaps.replace("r.eid", "rb.eid")} AND g.gap >= rb.c))
                       < 2 * rb.d)
        ), lagging AS (
            SELECT eid, n + 1 AS purchases, last_s, SUM(gap) * (3 - count(*)) AS median2  -- twice the median gap
            FROM (SELECT r.eid, r.n, r.last_s, g.gap, ROW_NUMBER() OVER (PARTITION BY r.eid ORDER BY g.gap) AS rn
                  FROM late r {d.cross_join()} purchase_gaps g ON g.enrollment_id = r.eid AND g.at_s <= :ts) ranked
            WHERE rn IN ((n + 1) / 2, (n + 2) / 2)
            GROUP BY eid, n, last_s
        ), expiring AS (
            SELECT x.eid, SUM(x.points) AS points FROM ({_lot_points_expiring(db, lot_scope)}) x
            GROUP BY x.eid HAVING SUM(x.points) > 0
        ), idle AS (
            SELECT x.eid, x.points FROM expiring x
            WHERE NOT EXISTS (SELECT 1 FROM entries a WHERE a.enrollment_id = x.eid AND a.kind IN ('earn', 'redeem')
                              AND a.effective_at > :quiet AND a.effective_at <= :t)
        ), flagged AS (
            SELECT eid FROM lagging UNION SELECT eid FROM idle
        ), later AS MATERIALIZED (
            SELECT l.enrollment_id AS eid, -m.points AS points FROM lot_moves m {d.cross_join()} lots l ON l.id = m.lot_id
            WHERE m.effective_at > :t AND l.earned_at <= :t AND {f.lot_alive}
        ), bal AS (
            SELECT eid, SUM(points) AS balance FROM (
                SELECT l.enrollment_id AS eid, l.remaining AS points FROM flagged f {d.cross_join()} lots l
                ON l.enrollment_id = f.eid WHERE {f.plus}l.remaining > 0 AND l.earned_at <= :t AND {f.lot_alive}
                UNION ALL
                SELECT eid, points FROM later WHERE eid IN (SELECT eid FROM flagged)
                UNION ALL
                SELECT n.id, n.uncovered - COALESCE((SELECT SUM(u.uncovered) FROM entries u
                                                     WHERE u.enrollment_id = n.id AND u.effective_at > :t), 0)
                FROM flagged f {d.cross_join()} enrollments n ON n.id = f.eid
            ) bp GROUP BY eid
        )
        SELECT r.*, :ts - {d.epoch("r.last_purchase")} AS since_s FROM (
        SELECT e.member_id, m.name, m.email, e.program_code AS program, b.balance,
               COALESCE(lg.purchases, (SELECT count(*) FROM entries p WHERE p.enrollment_id = e.id
                                       AND p.{PURCHASE} AND p.effective_at <= :t)) AS purchases,
               COALESCE({d.from_epoch("lg.last_s")},
                        (SELECT MAX(p.effective_at) FROM entries p WHERE p.enrollment_id = e.id
                         AND p.{PURCHASE} AND p.effective_at <= :t)) AS last_purchase,
               lg.median2, COALESCE(i.points, 0) AS expiring,
               CASE WHEN lg.eid IS NOT NULL THEN 1 ELSE 0 END AS lagging,
               CASE WHEN i.eid IS NOT NULL THEN 1 ELSE 0 END AS idle
        FROM bal b JOIN enrollments e ON e.id = b.eid JOIN members m ON m.member_id = e.member_id
        LEFT JOIN lagging lg ON lg.eid = b.eid LEFT JOIN idle i ON i.eid = b.eid
        ) r"""
    return sql, params


# --- average ticket -----------------------------------------------------------------------------


def ticket(db: Database, since: str, until: str, program: str | None, first_days: int) -> list:
    """Per program and segment: purchases (not wholly refunded) and their value net of refunds;
    segments: member purchases, anonymous sales, member purchases in the first `first_days`
    days after joining, and afterwards (the operator's own sales), and purchases at partners."""
    params: dict = {"since": since, "until": until}
    scope = _program_scope(params, program, "AND e.program_code = :program")
    partner = "CASE WHEN p.rule_kind = 'partner' THEN 1 ELSE 0 END"
    # One pass over the period's purchases, grouped by (partner, early); the segments are sums of
    # those groups. Each enrollment's end of its first days is computed once, not per purchase.
    sql = f"""
        WITH {_REFUNDED}, enrolled AS MATERIALIZED (
            SELECT e.id, e.program_code, {db.dialect.add_days("e.joined_at", str(int(first_days)))} AS early_until
            FROM enrollments e WHERE 1 = 1 {scope}
        )
        SELECT x.program, x.partner, x.early, count(*) AS purchases, SUM(x.net) AS amount
        FROM (SELECT e.program_code AS program, {partner} AS partner,
                     CASE WHEN p.effective_at < e.early_until THEN 1 ELSE 0 END AS early, {_NET} AS net
              FROM entries p JOIN enrolled e ON e.id = p.enrollment_id {_REFUNDS}
              WHERE p.{PURCHASE} AND p.effective_at >= :since AND p.effective_at < :until) x
        WHERE x.net > 0
        GROUP BY x.program, x.partner, x.early"""
    segments: dict[tuple[str, str], list[int]] = {}
    for r in db.all(sql, params):
        names = ("partners",) if r["partner"] else ("members", "members_first" if r["early"] else "members_after")
        for name in names:
            total = segments.setdefault((r["program"], name), [0, 0])
            total[0] += int(r["purchases"])
            total[1] += int(r["amount"])
    anonymous = f"""
        SELECT s.program_code AS program, count(*) AS purchases, SUM(s.amount_e4) AS amount FROM anonymous_sales s
        WHERE s.effective_at >= :since AND s.effective_at < :until {"AND s.program_code = :program" if program else ""}
        GROUP BY s.program_code"""
    for r in db.all(anonymous, params):
        segments[(r["program"], "anonymous")] = [int(r["purchases"]), int(r["amount"])]
    return [{"program": code, "segment": name, "purchases": n, "amount": amount}
            for (code, name), (n, amount) in segments.items()]


# --- milestones ------------------------------------------------------------------------------

# A member's contact for a mailing: an erased member has no e-mail address to write to.
_CONTACT = "m.name AS name, CASE WHEN m.erased_at IS NULL THEN m.email END AS email"


def earned_before(db: Database, code: str, since: str) -> dict[int, dict]:
    """Each enrollment of a program with its contact and the points it earned before `since`
    (member show's lifetime_earned: earn entries, before any claw-back)."""
    rows = db.all(
        f"""SELECT n.id AS eid, n.member_id, {_CONTACT},
                  COALESCE((SELECT SUM(e.points) FROM entries e WHERE e.enrollment_id = n.id AND e.kind = 'earn'
                            AND e.effective_at < :since), 0) AS earned
           FROM enrollments n JOIN members m ON m.member_id = n.member_id
           WHERE n.program_code = :program ORDER BY n.id""", {"program": code, "since": since})
    return {r["eid"]: dict(r) for r in rows}


def credits_between(db: Database, code: str, since: str, until: str) -> list[tuple[int, str, int]]:
    """(enrollment, effective_at, points) of the program's earn entries in [since, until), in time order."""
    return [tuple(r) for r in db.all(
        """SELECT e.enrollment_id, e.effective_at, e.points FROM entries e
           JOIN enrollments n ON n.id = e.enrollment_id
           WHERE n.program_code = :program AND e.kind = 'earn' AND e.points > 0
             AND e.effective_at >= :since AND e.effective_at < :until
           ORDER BY e.enrollment_id, e.effective_at, e.id""", {"program": code, "since": since, "until": until})]


def tier_moves_between(db: Database, code: str, since: str, until: str) -> list[dict]:
    """Tier changes (not the first tier on enrolling) in [since, until), with the member's contact."""
    return [dict(r) for r in db.all(
        f"""SELECT n.member_id, {_CONTACT}, t.tier, t.previous, t.effective_at
           FROM tier_changes t JOIN enrollments n ON n.id = t.enrollment_id
           JOIN members m ON m.member_id = n.member_id
           WHERE n.program_code = :program AND t.source <> 'enroll'
             AND t.effective_at >= :since AND t.effective_at < :until
           ORDER BY t.effective_at, n.member_id, t.id""", {"program": code, "since": since, "until": until})]
