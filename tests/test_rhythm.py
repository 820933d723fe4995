"""purchase_gaps, the purchase rhythm `report at-risk` reads: each purchase's gap to the
member's previous purchase, kept by triggers whatever order purchases arrive in (back-dated,
several in the same second, from the CLI or an import) and checked by `verify`."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import datetime, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PROGRAMS
from loyaltyctl import imports, maintenance, service
from loyaltyctl.ledger.db import SCHEMA_VERSION, open_db

MEMBERS = ["M0", "M1", "M2"]
# few distinct moments, so that purchases often share a second or arrive before earlier ones
MOMENTS = [f"2026-01-{day:02d}T{hour:02d}:00:00Z" for day in (2, 3, 5, 9) for hour in (0, 7)]
purchase = st.tuples(st.sampled_from(MEMBERS), st.sampled_from(MOMENTS))


def _secs(at: str) -> int:
    return int(datetime.strptime(at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(by_command=st.lists(purchase, max_size=12), by_import=st.lists(purchase, max_size=12))
def test_gaps_follow_purchases_in_any_order(tmp_path_factory, by_command, by_import):
    path = tmp_path_factory.mktemp("rhythm") / "ledger.db"
    db = open_db(str(path), create=True)
    try:
        service.apply_programs(db, [str(PROGRAMS / "coffee.yaml")])
        for m in MEMBERS:
            service.enroll(db, m, "coffee", at="2026-01-01T00:00:00Z")
        for i, (member, at) in enumerate(by_command):
            service.earn(db, member, amount=Decimal("2.50"), txn=f"C{i}", at=at)
        csv_path = path.parent / "batch.csv"
        csv_path.write_text("txn_id,member_id,kind,occurred_at,amount\n"
                            + "".join(f"I{i},{m},purchase,{at},4\n" for i, (m, at) in enumerate(by_import)))
        assert imports.import_transactions(db, str(csv_path)).applied == len(by_import)

        # the oracle: each member's purchase times in order, and the differences between neighbours
        times = defaultdict(list)
        for member, at in by_command + by_import:
            times[member].append(_secs(at))
        expected = {m: sorted((b - a, b) for a, b in zip(sorted(ts), sorted(ts)[1:])) for m, ts in times.items()}
        rows = db.all("""SELECT n.member_id, g.gap, g.at_s, e.effective_at FROM purchase_gaps g
                         JOIN enrollments n ON n.id = g.enrollment_id JOIN entries e ON e.id = g.entry_id""")
        stored = defaultdict(list)
        for r in rows:
            assert r["at_s"] == _secs(r["effective_at"])  # a gap row belongs to a purchase made at its at_s
            stored[r["member_id"]].append((r["gap"], r["at_s"]))
        assert {m: sorted(v) for m, v in stored.items()} == {m: v for m, v in expected.items() if v}
        assert maintenance.verify(db)["ok"]
    finally:
        db.close()


def test_verify_names_a_wrong_gap_and_migration_backfills_them(cli):
    cli("program", "apply", str(PROGRAMS / "coffee.yaml"))
    cli("member", "enroll", "ANA", "-p", "coffee", "--at", "2026-01-01T00:00:00Z")
    for txn, at in (("P1", "2026-01-10T00:00:00Z"), ("P2", "2026-01-20T00:00:00Z"), ("P3", "2026-01-13T00:00:00Z")):
        cli("earn", "ANA", "--amount", "5", "--txn", txn, "--at", at)
    conn = sqlite3.connect(cli.db)
    gaps = lambda: sorted(conn.execute(  # noqa: E731
        "SELECT e.txn_id, g.gap FROM purchase_gaps g JOIN entries e ON e.id = g.entry_id").fetchall())
    day = 86400
    assert gaps() == [("P2", 7 * day), ("P3", 3 * day)]  # P3 arrived late: P2 now follows it
    with conn:
        conn.execute("UPDATE purchase_gaps SET gap = gap + 1 WHERE gap = ?", (7 * day,))
    bad = cli("verify", ok=False)
    assert bad.exit_code == 1 and bad.stdout.startswith("purchase_gaps: ")
    # a ledger from before the table: the migration computes every gap from the entries
    with conn:
        conn.execute("DROP TRIGGER purchase_gap")
        conn.execute("DROP TRIGGER purchase_gap_next")
        conn.execute("DROP TABLE purchase_gaps")
        conn.execute("PRAGMA user_version = 4")
    cli("member", "show", "ANA")
    assert gaps() == [("P2", 7 * day), ("P3", 3 * day)]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION  # and every later migration
    assert cli.json("verify")["ok"]
    cli("earn", "ANA", "--amount", "5", "--txn", "P4", "--at", "2026-01-01T12:00:00Z")  # the triggers are back
    assert gaps() == [("P1", int(8.5 * day)), ("P2", 7 * day), ("P3", 3 * day)]
    conn.close()
