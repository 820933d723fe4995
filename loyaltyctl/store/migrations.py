"""Schema migrations: one list of statements per version, applied in order.

Never edit a released migration; append a new one. Amounts are stored as integers
in units of 1/10,000 of the currency (`*_e4`) so SQL sums stay exact."""

V1 = [
    """CREATE TABLE programs (
        code TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        current_version INTEGER NOT NULL
    )""",
    """CREATE TABLE program_versions (
        id INTEGER PRIMARY KEY,
        program_code TEXT NOT NULL REFERENCES programs(code),
        version INTEGER NOT NULL,
        definition TEXT NOT NULL,
        source TEXT,
        applied_at TEXT NOT NULL,
        UNIQUE (program_code, version)
    )""",
    """CREATE TABLE members (
        member_id TEXT PRIMARY KEY,
        name TEXT,
        email TEXT,
        account TEXT,
        created_at TEXT NOT NULL,
        erased_at TEXT
    )""",
    """CREATE TABLE enrollments (
        id INTEGER PRIMARY KEY,
        member_id TEXT NOT NULL REFERENCES members(member_id),
        program_code TEXT NOT NULL REFERENCES programs(code),
        tags TEXT NOT NULL DEFAULT '',
        referred_by TEXT,
        joined_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL,
        points_total INTEGER NOT NULL DEFAULT 0,
        uncovered INTEGER NOT NULL DEFAULT 0,
        tier TEXT,
        UNIQUE (member_id, program_code)
    )""",
    "CREATE INDEX enrollments_program ON enrollments(program_code, tier)",
    """CREATE TABLE entries (
        id INTEGER PRIMARY KEY,
        txn_id TEXT NOT NULL UNIQUE,
        enrollment_id INTEGER NOT NULL REFERENCES enrollments(id),
        kind TEXT NOT NULL CHECK (kind IN ('earn', 'redeem', 'refund', 'adjust', 'expire', 'opening')),
        rule_kind TEXT NOT NULL,
        rule_index INTEGER,
        program_version_id INTEGER NOT NULL REFERENCES program_versions(id),
        points INTEGER NOT NULL,
        uncovered INTEGER NOT NULL DEFAULT 0,
        amount_e4 INTEGER,
        rate TEXT,
        tier TEXT,
        multiplier TEXT,
        partner TEXT,
        event TEXT,
        reward TEXT,
        reason TEXT,
        ref_entry_id INTEGER REFERENCES entries(id),
        content TEXT,
        effective_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
    "CREATE INDEX entries_enrollment ON entries(enrollment_id, effective_at)",
    "CREATE INDEX entries_ref ON entries(ref_entry_id) WHERE ref_entry_id IS NOT NULL",
    """CREATE TABLE lots (
        id INTEGER PRIMARY KEY,
        enrollment_id INTEGER NOT NULL REFERENCES enrollments(id),
        entry_id INTEGER NOT NULL REFERENCES entries(id),
        points INTEGER NOT NULL CHECK (points > 0),
        earned_at TEXT NOT NULL,
        expires_at TEXT,
        remaining INTEGER NOT NULL CHECK (remaining >= 0)
    )""",
    "CREATE INDEX lots_enrollment ON lots(enrollment_id, expires_at)",
    "CREATE INDEX lots_entry ON lots(entry_id)",
    "CREATE INDEX lots_open_expiry ON lots(expires_at) WHERE remaining > 0",
    """CREATE TABLE lot_moves (
        id INTEGER PRIMARY KEY,
        lot_id INTEGER NOT NULL REFERENCES lots(id),
        entry_id INTEGER NOT NULL REFERENCES entries(id),
        points INTEGER NOT NULL,
        effective_at TEXT NOT NULL
    )""",
    "CREATE INDEX lot_moves_lot ON lot_moves(lot_id, effective_at)",
    "CREATE INDEX lot_moves_entry ON lot_moves(entry_id)",
    """CREATE TABLE tier_changes (
        id INTEGER PRIMARY KEY,
        enrollment_id INTEGER NOT NULL REFERENCES enrollments(id),
        tier TEXT NOT NULL,
        previous TEXT,
        source TEXT NOT NULL,
        reason TEXT NOT NULL,
        program_version_id INTEGER NOT NULL REFERENCES program_versions(id),
        until TEXT,
        effective_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
    "CREATE INDEX tier_changes_enrollment ON tier_changes(enrollment_id, effective_at)",
    """CREATE TABLE anonymous_sales (
        id INTEGER PRIMARY KEY,
        txn_id TEXT NOT NULL UNIQUE,
        program_code TEXT NOT NULL REFERENCES programs(code),
        amount_e4 INTEGER NOT NULL,
        content TEXT,
        effective_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
    """CREATE TABLE nps_responses (
        id INTEGER PRIMARY KEY,
        response_id TEXT NOT NULL UNIQUE,
        member_id TEXT REFERENCES members(member_id),
        program_code TEXT REFERENCES programs(code),
        account TEXT,
        score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 10),
        comment TEXT,
        content TEXT,
        answered_at TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
    "CREATE INDEX nps_answered ON nps_responses(answered_at)",
    """CREATE TABLE job_runs (
        id INTEGER PRIMARY KEY,
        job TEXT NOT NULL,
        program_code TEXT,
        as_of TEXT NOT NULL,
        summary TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
]

# Inactivity expiry: each lot keeps the program's inactivity_days in force when it was
# earned (NULL = none), like expires_at, so later program versions never rewrite history.
V_INACTIVITY = [
    "ALTER TABLE lots ADD COLUMN inactivity_days INTEGER",
    "CREATE INDEX lots_inactive_open ON lots(enrollment_id) WHERE inactivity_days IS NOT NULL AND remaining > 0",
]

# Member data: `member erase` and per-member NPS reads find a member's responses by
# index instead of scanning every response.
V_MEMBER_DATA = [
    "CREATE INDEX nps_member ON nps_responses(member_id) WHERE member_id IS NOT NULL",
]

# Reports: purchases (earn entries with an amount) per member in time order, covering the
# amount, so churn, ROI, at-risk and ticket read an index instead of the whole ledger.
V_ANALYTICS = [
    """CREATE INDEX entries_purchases ON entries(enrollment_id, effective_at, amount_e4)
       WHERE kind = 'earn' AND amount_e4 IS NOT NULL""",
]

# Purchase rhythm (report at-risk): each purchase's gap in seconds to the enrollment's previous
# purchase, in (effective_at, id) order; the first purchase has none. A derived cache like
# lots.remaining, kept by triggers on every purchase written (so both import paths and the
# service keep it alike) and checked by `verify` against the ledger (PURCHASE_GAPS). A back-dated
# purchase also shortens the gap of the purchase after it, so it cannot be a column of entries.
# Keyed by gap, each enrollment's gaps are in order: medians and counts below a threshold are
# index reads. at_s is the purchase's effective_at in seconds since 1970, for "as of" cuts.
SECONDS = "CAST(strftime('%s', {}) AS INTEGER)"  # a stored timestamp, in seconds since 1970
_IS_PURCHASE = "{0}.kind = 'earn' AND {0}.amount_e4 IS NOT NULL"
PURCHASE_GAPS = f"""
    SELECT enrollment_id, s - prev AS gap, id AS entry_id, s AS at_s FROM (
        SELECT enrollment_id, id, s, LAG(s) OVER (PARTITION BY enrollment_id ORDER BY effective_at, id) AS prev
        FROM (SELECT p.enrollment_id, p.id, p.effective_at, {SECONDS.format("p.effective_at")} AS s
              FROM entries p WHERE {_IS_PURCHASE.format("p")}))
    WHERE prev IS NOT NULL"""
# The purchases of NEW's enrollment just before and just after NEW in (effective_at, id) order.
_NEIGHBOUR = ("SELECT {agg}(n.effective_at) FROM entries n WHERE n.enrollment_id = NEW.enrollment_id AND "
              + _IS_PURCHASE.format("n") + " AND n.effective_at {cmp}= NEW.effective_at"
              " AND (n.effective_at {cmp} NEW.effective_at OR n.id {cmp} NEW.id)")
_BEFORE = "(" + _NEIGHBOUR.format(agg="MAX", cmp="<") + ")"
_AFTER = "(" + _NEIGHBOUR.format(agg="MIN", cmp=">") + ")"
_AFTER_ID = f"""(SELECT MIN(n.id) FROM entries n WHERE n.enrollment_id = NEW.enrollment_id AND {_IS_PURCHASE.format("n")}
                 AND n.effective_at = {_AFTER} AND (n.effective_at > NEW.effective_at OR n.id > NEW.id))"""
V_PURCHASE_GAPS = [
    """CREATE TABLE purchase_gaps (
        enrollment_id INTEGER NOT NULL REFERENCES enrollments(id),
        gap INTEGER NOT NULL,
        entry_id INTEGER NOT NULL REFERENCES entries(id),
        at_s INTEGER NOT NULL,
        PRIMARY KEY (enrollment_id, gap, entry_id)
    ) WITHOUT ROWID""",
    f"INSERT INTO purchase_gaps (enrollment_id, gap, entry_id, at_s) {PURCHASE_GAPS}",
    f"""CREATE TRIGGER purchase_gap AFTER INSERT ON entries WHEN {_IS_PURCHASE.format("NEW")}
    BEGIN
        INSERT INTO purchase_gaps (enrollment_id, gap, entry_id, at_s)
            SELECT NEW.enrollment_id, {SECONDS.format("NEW.effective_at")} - {SECONDS.format("b.at")}, NEW.id,
                   {SECONDS.format("NEW.effective_at")}
            FROM (SELECT {_BEFORE} AS at) b WHERE b.at IS NOT NULL;
    END""",
    # A back-dated purchase: the next one now follows it, so its gap shrinks (or it gets one,
    # NEW being the first).
    f"""CREATE TRIGGER purchase_gap_next AFTER INSERT ON entries
        WHEN {_IS_PURCHASE.format("NEW")} AND {_AFTER} IS NOT NULL
    BEGIN
        DELETE FROM purchase_gaps WHERE enrollment_id = NEW.enrollment_id AND entry_id = {_AFTER_ID}
            AND gap = {SECONDS.format(_AFTER)} - {SECONDS.format(_BEFORE)};
        INSERT INTO purchase_gaps (enrollment_id, gap, entry_id, at_s)
            VALUES (NEW.enrollment_id, {SECONDS.format(_AFTER)} - {SECONDS.format("NEW.effective_at")}, {_AFTER_ID},
                    {SECONDS.format(_AFTER)});
    END""",
]

# Ids come from the database: a sequence per table whose rows the engine creates, so a batch
# can reserve the ids of its rows before writing them (PostgreSQL has real sequences).
V_SEQUENCES = [
    "CREATE TABLE sequences (name TEXT PRIMARY KEY, next_id INTEGER NOT NULL)",
    """INSERT INTO sequences (name, next_id)
       SELECT 'entries', COALESCE(MAX(id), 0) + 1 FROM entries
       UNION ALL SELECT 'lots', COALESCE(MAX(id), 0) + 1 FROM lots
       UNION ALL SELECT 'enrollments', COALESCE(MAX(id), 0) + 1 FROM enrollments""",
]

# Which credit's posting made a tier change (an upgrade on earning, perhaps at a later moment
# than the credit when it was back-dated), so `explain` can say what a purchase lifted.
V_TIER_CAUSE = [
    "ALTER TABLE tier_changes ADD COLUMN entry_id INTEGER REFERENCES entries(id)",
    "CREATE INDEX tier_changes_entry ON tier_changes(entry_id) WHERE entry_id IS NOT NULL",
]

# Inactivity is a member-level rule of the program version in force: when a version adds or
# changes it at moment P, the lots then alive take the new inactivity_days and count their
# inactivity from P (inactivity_from), so no deadline before P moves and history stays put.
V_INACTIVITY_FROM = [
    "ALTER TABLE lots ADD COLUMN inactivity_from TEXT",
]

# purchase_gaps is kept by the store's writers, set-based per batch (store/derived.py), one
# implementation for both backends (PostgreSQL's row triggers would see a multi-row insert at
# once), instead of by triggers.
V_GAPS_BY_WRITERS = [
    "DROP TRIGGER purchase_gap",
    "DROP TRIGGER purchase_gap_next",
]

# Identity: only `init` and `demo` make a ledger, and every other command refuses any other file.
# SQLite's header field for this (PRAGMA application_id; "LYLT") plus a table of our own mark a
# ledger; ledgers made before this migration are known by LEGACY_TABLES and get both here.
APPLICATION_ID = 0x4C594C54
META_TABLE = "loyaltyctl_meta"
LEGACY_TABLES = {"programs", "program_versions", "members", "enrollments", "entries", "lots", "lot_moves",
                 "tier_changes", "anonymous_sales", "nps_responses", "job_runs"}
V_IDENTITY = [
    f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    f"INSERT OR IGNORE INTO {META_TABLE} (key, value) VALUES ('format', 'loyaltyctl ledger')",
    f"PRAGMA application_id = {APPLICATION_ID}",
]

# Baskets: a purchase's lines (line_no from 1, in the order given), with the points each earned;
# a refund of lines adds rows under the refund's entry with the purchase's line_no and negative
# quantity, discounts and points. Money in 1/10,000 of the currency.
V_PURCHASE_LINES = [
    """CREATE TABLE IF NOT EXISTS purchase_lines (
        entry_id BIGINT NOT NULL REFERENCES entries(id),
        line_no INTEGER NOT NULL,
        sku TEXT NOT NULL,
        category TEXT,
        quantity INTEGER NOT NULL,
        unit_price_e4 BIGINT NOT NULL,
        discount_e4 BIGINT NOT NULL,
        order_discount_e4 BIGINT NOT NULL,
        points BIGINT NOT NULL,
        PRIMARY KEY (entry_id, line_no)
    )""",
]

# Reports that count only the operator's own sales (ROI, ticket) filter purchases by rule_kind
# (partner purchases are the partners' revenue): the purchases index carries it, so they still
# read the index alone.
V_PURCHASES_BY_RULE = [
    "DROP INDEX entries_purchases",
    """CREATE INDEX entries_purchases ON entries(enrollment_id, effective_at, amount_e4, rule_kind)
       WHERE kind = 'earn' AND amount_e4 IS NOT NULL""",
]

MIGRATIONS: list[list[str]] = [V1, V_INACTIVITY, V_MEMBER_DATA, V_ANALYTICS, V_PURCHASE_GAPS, V_SEQUENCES,
                               V_TIER_CAUSE, V_INACTIVITY_FROM, V_GAPS_BY_WRITERS, V_IDENTITY, V_PURCHASE_LINES,
                               V_PURCHASES_BY_RULE]
SCHEMA_VERSION = len(MIGRATIONS)
