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

MIGRATIONS: list[list[str]] = [V1, V_INACTIVITY, V_MEMBER_DATA, V_ANALYTICS]
