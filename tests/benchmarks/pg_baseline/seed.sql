-- The ledger the baseline writes to: one program, :members members each enrolled once.
INSERT INTO programs VALUES ('coffee', 'Coffee', 1);
INSERT INTO program_versions (id, program_code, version, definition, applied_at)
    OVERRIDING SYSTEM VALUE VALUES (1, 'coffee', 1, '{}', '2024-12-01T00:00:00Z');
INSERT INTO members (member_id, name, created_at)
    SELECT 'M' || lpad(CAST(i AS text), 7, '0'), 'Member ' || i, '2024-12-01T00:00:00Z' FROM generate_series(1, :members) i;
INSERT INTO enrollments (member_id, program_code, joined_at, recorded_at, tier)
    SELECT member_id, 'coffee', created_at, created_at, 'Bronze' FROM members;
-- The stored timestamp form for "now" (pgbench would read the colons of a to_char pattern in
-- earn.sql as its own :variables).
CREATE FUNCTION stamp_now() RETURNS text LANGUAGE sql VOLATILE AS
    $$ SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') $$;
