"""SQL of the scheduled jobs: set-based expiry and tier review, and the expiring-points report."""

from __future__ import annotations

from .connection import Database
from .fragments import fragments, qualifying_kinds, qualifying_value
from .writers import reserve


def _scope(program: str | None) -> tuple[str, dict]:
    if program:
        return " AND l.enrollment_id IN (SELECT id FROM enrollments WHERE program_code = :program)", {"program": program}
    return "", {}


def due_lots(db: Database, as_of: str, program: str | None) -> None:
    """Collect the lots due to expire at `as_of` into the temp table _due, each with the
    moment it expired (expires_at, or the inactivity deadline when sooner) and why, and
    their totals per enrollment into _due_sum."""
    scope, params = _scope(program)
    f = fragments(db.dialect)
    drop_due(db)
    # seq numbers the due lots; their expiry entries get ids base + seq (see record_due).
    db.execute(
        f"""CREATE TEMP TABLE _due (seq {db.dialect.serial_key()}, lot_id BIGINT UNIQUE, enrollment_id BIGINT,
                                    points BIGINT, expires_at TEXT, rule TEXT)"""
    )
    # Fast path: lots without inactivity expiry. The partial index on open lots' expiry counts
    # them; a nightly run with few due lots reads them by it, a catch-up with many by a table
    # scan (reading half a table through an index is ten times slower).
    many = db.scalar("SELECT count(*) FROM (SELECT 1 FROM lots WHERE remaining > 0 AND expires_at <= ? "
                     "LIMIT 20000) due", (as_of,)) >= 20000
    if many:  # a big catch-up rewrites index pages all over: give this connection a larger page cache
        db.large_cache(128)
    db.execute(
        f"""INSERT INTO _due (lot_id, enrollment_id, points, expires_at, rule)
            SELECT l.id, l.enrollment_id, l.remaining, l.expires_at, 'expiry'
            FROM lots l {db.dialect.not_indexed() if many else ''}
            WHERE l.remaining > 0 AND l.expires_at IS NOT NULL AND l.expires_at <= :as_of
              AND l.inactivity_days IS NULL{scope}
            ORDER BY l.id""",
        {"as_of": as_of, **params},
    )
    # Lots of programs with inactivity_days: their effective expiry, computed as the balance queries do.
    db.execute(
        f"""INSERT INTO _due (lot_id, enrollment_id, points, expires_at, rule)
            SELECT id, enrollment_id, remaining, eff,
                   CASE WHEN expires_at IS NOT NULL AND expires_at <= eff THEN 'expiry' ELSE 'inactivity' END
            FROM (SELECT l.id, l.enrollment_id, l.remaining, l.expires_at, {f.lot_expiry} AS eff
                  FROM lots l WHERE l.inactivity_days IS NOT NULL AND l.remaining > 0{scope}) x
            WHERE eff <= :as_of ORDER BY id""",
        {"as_of": as_of, **params},
    )
    # One row per enrollment: the summary, the points_total decrement, and the program version
    # the expiry entries record (looked up once per enrollment rather than once per lot).
    db.execute(
        """CREATE TEMP TABLE _due_sum (enrollment_id BIGINT PRIMARY KEY, member_id TEXT, program_code TEXT,
                                       version_id BIGINT, lots BIGINT, points BIGINT,
                                       first_expiry TEXT, last_expiry TEXT)"""
    )
    db.execute(
        """INSERT INTO _due_sum
           SELECT d.enrollment_id, e.member_id, e.program_code,
                  (SELECT v.id FROM programs p JOIN program_versions v
                          ON v.program_code = p.code AND v.version = p.current_version
                   WHERE p.code = e.program_code),
                  d.lots, d.points, d.first_expiry, d.last_expiry
           FROM (SELECT enrollment_id, count(*) AS lots, SUM(points) AS points,
                        MIN(expires_at) AS first_expiry, MAX(expires_at) AS last_expiry
                 FROM _due GROUP BY enrollment_id) d
           JOIN enrollments e ON e.id = d.enrollment_id"""
    )


def due_summary(db: Database) -> list:
    return db.all(
        """SELECT member_id, program_code, lots, points, first_expiry, last_expiry
           FROM _due_sum ORDER BY program_code, member_id"""
    )


def record_due(db: Database, recorded_at: str) -> None:
    """One expiry entry per due lot, effective at the lot's expiry time, with its lot move.

    OR FAIL (SQLite): a failing statement fails the whole transaction anyway (the caller rolls
    back), so SQLite need not keep a statement journal (a copy of every page a statement touches)."""
    fail = db.dialect.or_fail()
    if db.dialect.name == "sqlite":  # ids reserved in one block under the write lock: base + seq
        n = db.scalar("SELECT count(*) FROM _due")
        ident, move_entry, join = ":base + d.seq", ":base + d.seq", ""
        base = reserve(db, "entries", n)[0] - 1 if n else 0
    else:  # from the sequence, found again by the entry's txn id
        ident, move_entry, base = "nextval('entries_id_seq')", "e.id", 0
        join = "JOIN entries e ON e.txn_id = 'expire-' || CAST(d.lot_id AS TEXT)"
    # LEFT JOIN: a due lot without its _due_sum row gets no version and fails NOT NULL, so every
    # lot move below has its entry.
    db.execute(
        f"""INSERT {fail} INTO entries (id, txn_id, enrollment_id, kind, rule_kind, program_version_id, points,
                                        uncovered, effective_at, recorded_at)
           SELECT {ident}, 'expire-' || CAST(d.lot_id AS TEXT), d.enrollment_id, 'expire', d.rule, s.version_id,
                  -d.points, 0, d.expires_at, :at
           FROM _due d LEFT JOIN _due_sum s ON s.enrollment_id = d.enrollment_id
           ORDER BY d.seq""",
        {"at": recorded_at, "base": base},
    )
    db.execute(
        f"INSERT {fail} INTO lot_moves (lot_id, entry_id, points, effective_at) "
        f"SELECT d.lot_id, {move_entry}, -d.points, d.expires_at FROM _due d {join} ORDER BY d.seq",
        {"base": base},
    )
    db.execute(
        f"""UPDATE {fail} enrollments SET points_total = points_total -
               (SELECT s.points FROM _due_sum s WHERE s.enrollment_id = enrollments.id)
           WHERE id IN (SELECT enrollment_id FROM _due_sum)"""
    )
    db.execute(f"UPDATE {fail} lots SET remaining = 0 WHERE id IN (SELECT lot_id FROM _due)")


def drop_due(db: Database) -> None:
    db.execute("DROP TABLE IF EXISTS _due")
    db.execute("DROP TABLE IF EXISTS _due_sum")


def review_rows(db: Database, program: str, start: str, as_of: str, basis: str) -> list[dict]:
    """Per enrollment of a program: qualifying total in (start, as_of], tier at as_of,
    the manual floor in force, and when the tier was last set."""
    f = fragments(db.dialect)
    q = f.qualifying_totals(basis, "AND p.enrollment_id IN (SELECT id FROM enrollments WHERE program_code = :program)")
    return [dict(r) for r in db.all(
        f"""WITH q AS ({q}), cur AS (
                SELECT tc.enrollment_id AS eid, tc.tier, tc.effective_at FROM tier_changes tc
                WHERE tc.id = (SELECT t2.id FROM tier_changes t2
                               WHERE t2.enrollment_id = tc.enrollment_id AND t2.effective_at <= :t
                               ORDER BY t2.effective_at DESC, t2.id DESC LIMIT 1)
            ), floor AS (
                SELECT tc.enrollment_id AS eid, tc.tier, tc.until FROM tier_changes tc
                WHERE tc.id = (SELECT t2.id FROM tier_changes t2
                               WHERE t2.enrollment_id = tc.enrollment_id AND t2.source = 'manual'
                                 AND t2.effective_at <= :t
                               ORDER BY t2.effective_at DESC, t2.id DESC LIMIT 1)
                  AND (tc.until IS NULL OR tc.until > :t)
            )
            SELECT e.id, e.member_id, COALESCE(q.total, 0) AS total, cur.tier, cur.effective_at AS tier_since,
                   floor.tier AS floor_tier
            FROM enrollments e
            LEFT JOIN q ON q.enrollment_id = e.id
            LEFT JOIN cur ON cur.eid = e.id
            LEFT JOIN floor ON floor.eid = e.id
            WHERE e.program_code = :program AND e.joined_at <= :t
            ORDER BY e.member_id""",
        {"program": program, "start": start, "t": as_of},
    )]


def best_totals(db: Database, then: str, as_of: str, window_days: int, basis: str, ids: list[int]) -> dict[int, int]:
    """Per enrollment, the highest qualifying total at any moment in [then, as_of]. The total
    (window of window_days, net of refunds so far) only rises when a qualifying entry enters
    the window, so its maximum is reached at `then` or at one of those entries."""
    if not ids:
        return {}
    d = db.dialect
    value = qualifying_value(basis)
    kinds = qualifying_kinds(basis)
    rows = db.all(
        f"""WITH cand(eid, c) AS (
                SELECT i.value, CAST(:then AS TEXT) FROM {d.ids('ids')} AS i
                UNION
                SELECT p.enrollment_id, p.effective_at FROM entries p
                WHERE p.enrollment_id IN {d.ids('ids')} AND p.kind = 'earn' AND {kinds}
                  AND p.effective_at > :then AND p.effective_at <= :t
            )
            SELECT cand.eid, MAX(COALESCE((
                SELECT SUM(p.{value} + COALESCE((SELECT SUM(r.{value}) FROM entries r
                                                WHERE r.ref_entry_id = p.id AND r.kind = 'refund'
                                                  AND r.effective_at <= cand.c), 0))
                FROM entries p
                WHERE p.enrollment_id = cand.eid AND p.kind = 'earn' AND {kinds}
                  AND p.effective_at > {d.add_days("cand.c", str(-int(window_days)))}
                  AND p.effective_at <= cand.c), 0)) AS best
            FROM cand GROUP BY cand.eid""",
        {"then": then, "t": as_of, "ids": d.values(ids)},
    )
    return {r[0]: r[1] for r in rows}


def insert_tier_changes(db: Database, rows: list[tuple]) -> None:
    """rows: (enrollment_id, tier, previous, source, reason, version_id, until, effective_at, recorded_at)."""
    from .writers import refresh_tier_cache

    db.executemany(
        """INSERT INTO tier_changes (enrollment_id, tier, previous, source, reason, program_version_id,
                                     until, effective_at, recorded_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
        rows,
    )
    refresh_tier_cache(db, {r[0] for r in rows})


def latest_review(db: Database, program: str) -> str | None:
    """The moment of the latest tier change a review recorded in a program."""
    return db.scalar(
        """SELECT MAX(t.effective_at) FROM tier_changes t JOIN enrollments e ON e.id = t.enrollment_id
           WHERE t.source = 'review' AND e.program_code = ?""", (program,))


def record_job(db: Database, job: str, program: str | None, as_of: str, summary: str, at: str) -> None:
    db.execute(
        "INSERT INTO job_runs (job, program_code, as_of, summary, recorded_at) VALUES (?, ?, ?, ?, ?)",
        (job, program, as_of, summary, at),
    )


def _expiring_sql(db: Database, program: str | None) -> str:
    """Members with points in lots expiring in (t, until], as they stand at t. Lots with a
    fixed expiry are a range of the open-lots expiry index; only lots with inactivity expiry
    need their deadline computed."""
    f = fragments(db.dialect)
    sql = f"""SELECT e.member_id, m.name, CASE WHEN m.erased_at IS NULL THEN m.email END AS email, e.program_code,
                    SUM(x.remaining) AS points, MIN(x.expiry) AS first_expiry, count(*) AS lots
             FROM (SELECT l.enrollment_id, l.remaining, l.expires_at AS expiry FROM lots l
                   WHERE l.remaining > 0 AND l.inactivity_days IS NULL AND l.expires_at > :t AND l.expires_at <= :until
                     AND l.earned_at <= :t
                   UNION ALL
                   SELECT y.enrollment_id, y.remaining, y.expiry
                   FROM (SELECT l.enrollment_id, l.remaining, {f.lot_expiry} AS expiry FROM lots l
                         WHERE l.remaining > 0 AND l.inactivity_days IS NOT NULL AND l.earned_at <= :t) y
                   WHERE y.expiry > :t AND y.expiry <= :until) x
             JOIN enrollments e ON e.id = x.enrollment_id JOIN members m ON m.member_id = e.member_id"""
    if program:
        sql += " WHERE e.program_code = :program"
    return sql + " GROUP BY e.member_id, m.name, m.email, m.erased_at, e.program_code HAVING SUM(x.remaining) >= :min"


def expiring(db: Database, t: str, until: str, program: str | None, min_points: int):
    """Members with points in lots expiring in (t, until], as they stand at t, soonest first
    (yielded as read)."""
    params = {"t": t, "until": until, "min": min_points} | ({"program": program} if program else {})
    sql = _expiring_sql(db, program) + " ORDER BY first_expiry, points DESC, e.member_id, e.program_code"
    return (dict(r) for r in db.stream(sql, params))


def expiring_total(db: Database, t: str, until: str, program: str | None, min_points: int) -> tuple[int, int]:
    """How many rows `expiring` gives and the points they have expiring."""
    params = {"t": t, "until": until, "min": min_points} | ({"program": program} if program else {})
    row = db.one(f"SELECT count(*), COALESCE(SUM(x.points), 0) FROM ({_expiring_sql(db, program)}) x", params)
    return int(row[0]), int(row[1])
