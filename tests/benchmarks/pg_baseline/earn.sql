-- One `earn` (a purchase) as plain SQL, the ceiling loyaltyctl's library path is measured
-- against (issue 16): lock the member's enrollment, write the entry and its lot, update the
-- enrollment's totals. The purchase_gap trigger of schema.sql fires on the entry, as it does
-- on SQLite. Variables: :members (set by run.sh with -D).
\set mid random(1, :members)
\set amount random(100, 9999)
BEGIN;
SELECT id AS eid, points_total, uncovered, tier, tags, joined_at FROM enrollments
 WHERE member_id = 'M' || lpad(CAST(:mid AS text), 7, '0') AND program_code = 'coffee' FOR UPDATE \gset
INSERT INTO entries (txn_id, enrollment_id, kind, rule_kind, rule_index, program_version_id, points, uncovered,
                     amount_e4, rate, tier, multiplier, effective_at, recorded_at)
VALUES (CAST(gen_random_uuid() AS text), :eid, 'earn', 'spend', 0, 1, :amount / 100, 0, :amount * 100, '1', 'Bronze', '1',
        stamp_now(), stamp_now())
RETURNING id AS entry_id, effective_at \gset
INSERT INTO lots (enrollment_id, entry_id, points, earned_at, expires_at, remaining)
VALUES (:eid, :entry_id, :amount / 100, :effective_at, '2099-01-01T00:00:00Z', :amount / 100);
UPDATE enrollments SET points_total = points_total + :amount / 100, uncovered = uncovered + 0 WHERE id = :eid;
END;
