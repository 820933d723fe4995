"""Scheduled jobs through the CLI: expire, tiers review, tiers set, report expiring."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import PROGRAMS, Cli


LATER = "2030-01-01T00:00:00Z"  # history up to a moment after every test's activity


def enroll(cli, member="M1", program="coffee", at="2026-01-01T09:00:00Z"):
    cli("member", "enroll", member, "--program", program, "--at", at)


def show(cli, member, at, program=None):
    args = ["member", "show", member, "--as-of", at] + (["--program", program] if program else [])
    return cli.json(*args)


def program_file(tmp_path: Path, name: str, base: str, *replacements: tuple[str, str]) -> Path:
    """An example program with some lines changed, applied under a new code."""
    text = (PROGRAMS / f"{base}.yaml").read_text().replace(f"code: {base}", f"code: {name}")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


def lots_ok(cli) -> None:
    """consumed + expired + remaining = original and no expired lot keeps points, from the raw tables."""
    rows = cli.sql(
        """SELECT l.id, l.points, l.remaining,
                      COALESCE(SUM(CASE WHEN e.kind = 'expire' THEN -m.points END), 0) AS expired,
                      COALESCE(SUM(CASE WHEN e.kind <> 'expire' THEN -m.points END), 0) AS consumed,
                      COUNT(CASE WHEN e.kind = 'expire' THEN 1 END) AS expiries
               FROM lots l LEFT JOIN lot_moves m ON m.lot_id = l.id LEFT JOIN entries e ON e.id = m.entry_id
               GROUP BY l.id""")
    for lot_id, points, remaining, expired, consumed, expiries in rows:
        assert consumed + expired + remaining == points, lot_id
        assert remaining >= 0 and expiries <= 1, lot_id
        assert not (expiries and remaining), lot_id
    assert "OK" in cli("verify").stdout


# --- expire --------------------------------------------------------------------


def test_lot_is_expired_at_exactly_its_expiry_instant(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "100", "--txn", "P1", "--at", "2026-01-10T12:00:00Z")  # expires 2027-01-10T12:00Z
    before = show(coffee, "M1", "2027-01-10T11:59:59Z")
    assert (before["balance"], before["expired"], before["next_expiry"]) == (100, 0, "2027-01-10T12:00:00Z")
    at = show(coffee, "M1", "2027-01-10T12:00:00Z")
    assert (at["balance"], at["expired"]) == (0, 100)
    assert coffee.json("expire", "--as-of", "2027-01-10T11:59:59Z")["lots"] == 0
    done = coffee.json("expire", "--as-of", "2027-01-10T12:00:00Z")
    assert (done["lots"], done["points"], done["members"]) == (1, 100, 1)
    expiry = [r for r in coffee.json("history", "M1", "--as-of", LATER) if r["kind"] == "expire"]
    assert [(r["effective_at"], r["points"], r["recorded_at"] is not None) for r in expiry] == [
        ("2027-01-10T12:00:00Z", -100, True)]
    lots_ok(coffee)


def test_partial_consumption_expires_only_the_remainder(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "300", "--at", "2026-01-10T12:00:00Z")  # lot 1: 300, expires 2027-01-10
    coffee("earn", "M1", "--amount", "100", "--at", "2026-02-10T12:00:00Z")  # lot 2: 100, expires 2027-02-10
    coffee("redeem", "M1", "--reward", "free_coffee", "--at", "2026-03-01T00:00:00Z")  # 150 from lot 1
    out = coffee("expire", "--as-of", "2027-01-31T00:00:00Z").stdout
    assert out.strip() == "expired 150 points in 1 lot of 1 member (as of 2027-01-31T00:00:00Z)"
    s = show(coffee, "M1", "2027-01-31T00:00:00Z")
    assert (s["balance"], s["expired"], s["redeemed"], s["lifetime_earned"]) == (100, 150, 150, 400)
    assert coffee.json("expire", "--as-of", "2027-03-01T00:00:00Z") | {"by_member": None} == {
        "as_of": "2027-03-01T00:00:00Z", "program": None, "dry_run": False, "lots": 1, "points": 100, "members": 1,
        "by_member": None}
    assert show(coffee, "M1", "2027-03-01T00:00:00Z")["expired"] == 250
    lots_ok(coffee)


def test_dry_run_writes_nothing_and_reruns_change_nothing(coffee):
    enroll(coffee, "M1")
    enroll(coffee, "M2")
    coffee("earn", "M1", "--amount", "40", "--at", "2026-01-05T00:00:00Z")
    coffee("earn", "M1", "--amount", "60", "--at", "2026-01-06T00:00:00Z")
    coffee("earn", "M2", "--amount", "25", "--at", "2026-01-07T00:00:00Z")
    before = coffee.dump()
    dry = coffee("expire", "--as-of", "2027-02-01T00:00:00Z", "--dry-run").stdout
    assert dry.splitlines()[0] == "would expire 125 points in 3 lots of 2 members (as of 2027-02-01T00:00:00Z)"
    assert "M1" in dry and "100" in dry and "M2" in dry and "25" in dry
    assert coffee.json("expire", "--as-of", "2027-02-01T00:00:00Z", "--dry-run")["by_member"][0]["points"] == 100
    assert coffee.dump() == before
    assert coffee("expire", "--as-of", "2027-02-01T00:00:00Z", "--quiet").stdout == ""
    after = coffee.dump()
    assert after != before
    for again in ("2027-02-01T00:00:00Z", "2027-01-20T00:00:00Z"):  # same or earlier moment: nothing to do
        assert coffee.json("expire", "--as-of", again)["lots"] == 0
    assert coffee.dump() == after
    csv = coffee("expire", "--as-of", "2027-03-01T00:00:00Z", "--dry-run", "--format", "csv").stdout
    assert csv.splitlines()[0] == "as_of,program,dry_run,lots,points,members,by_member"  # the keys of the JSON


def test_job_errors_are_one_line_and_change_nothing(coffee):
    before = coffee.dump()
    assert "--as-of" in coffee.usage("expire", "--as-of", "yesterday-ish")
    assert "unknown program" in coffee.fail("expire", "--program", "nope")
    assert "no tiers" in coffee.fail("tiers", "review", "--program", "books")
    assert "--within" in coffee.usage("report", "expiring", "--within", "0")
    assert coffee.dump() == before


def test_redemption_and_refund_recorded_before_a_late_run_are_honoured(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "200", "--txn", "P1", "--at", "2026-01-10T00:00:00Z")  # 200, expires 2027-01-10
    coffee("earn", "M1", "--amount", "50", "--at", "2026-06-01T00:00:00Z")  # 50, expires 2027-06-01
    coffee("redeem", "M1", "--points", "150", "--txn", "R1", "--at", "2026-12-01T00:00:00Z")  # lot 1 -> 50
    coffee("refund", "P1", "--amount", "20", "--at", "2026-12-15T00:00:00Z")  # claws 20 from lot 1 -> 30
    # The job runs late, long after the expiry.
    assert coffee.json("expire", "--as-of", "2027-02-01T00:00:00Z")["points"] == 30
    s = show(coffee, "M1", "2027-02-01T00:00:00Z")
    assert (s["balance"], s["expired"], s["clawed_back"]) == (50, 30, 20)
    lots_ok(coffee)


def test_one_run_over_several_programs_records_each_programs_current_version(coffee, tmp_path):
    # coffee gets a second version before the run; books and an inactivity program keep their first.
    coffee("program", "apply", str(program_file(tmp_path, "idle", "books", ("after_days: 730", "inactivity_days: 100"))))
    enroll(coffee, "M1", "coffee")
    enroll(coffee, "M2", "books")
    enroll(coffee, "M3", "idle")
    coffee("earn", "M1", "--amount", "40", "--program", "coffee", "--at", "2026-01-02T00:00:00Z")
    coffee("earn", "M2", "--amount", "30", "--program", "books", "--at", "2026-01-03T00:00:00Z")
    coffee("earn", "M3", "--amount", "20", "--program", "idle", "--at", "2026-01-04T00:00:00Z")
    coffee("program", "apply", str(program_file(tmp_path, "coffee", "coffee", ("name: Bean There Coffee Club",
                                                                               "name: Bean There Coffee Club II"))))
    done = coffee.json("expire", "--as-of", "2028-06-01T00:00:00Z")
    assert (done["lots"], done["points"], done["members"]) == (3, 90, 3)
    got = {}
    for member, program in (("M1", "coffee"), ("M2", "books"), ("M3", "idle")):
        rows = [r for r in coffee.json("history", member, "--program", program, "--as-of", LATER) if r["kind"] == "expire"]
        got[member] = [(r["points"], r["rule"], r["program_version"], r["recorded_at"] is not None) for r in rows]
    assert got == {"M1": [(-40, "expiry", 2, True)], "M2": [(-30, "expiry", 1, True)],
                   "M3": [(-20, "inactivity", 1, True)]}
    lots_ok(coffee)  # includes verify: foreign keys, versions of the member's own program


def test_a_failed_expire_writes_nothing_and_leaves_foreign_key_checks_on(coffee, monkeypatch):
    # The job's transaction skips SQLite's per-row foreign key lookups; whatever happens,
    # the connection checks them again afterwards.
    from loyaltyctl.app import jobs
    from loyaltyctl.store import jobs as job_sql
    from loyaltyctl.store.connection import open_db

    def boom(*args):
        raise RuntimeError("disk on fire")

    enroll(coffee, "M1")
    coffee("earn", "M1", "--amount", "40", "--at", "2026-01-05T00:00:00Z")
    coffee("earn", "M1", "--amount", "60", "--at", "2026-01-06T00:00:00Z")
    before = coffee.dump()
    db = open_db(str(coffee.db))
    try:
        with monkeypatch.context() as m:  # fail after every expiry row is written, before commit
            m.setattr(job_sql, "record_job", boom)
            with pytest.raises(RuntimeError, match="disk on fire"):
                jobs.expire(db, "2027-02-01T00:00:00Z")
        assert db.scalar("PRAGMA foreign_keys") == 1
        assert coffee.dump() == before
        assert jobs.expire(db, "2027-02-01T00:00:00Z")["lots"] == 2
        assert db.scalar("PRAGMA foreign_keys") == 1
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            db.execute("INSERT INTO lot_moves (lot_id, entry_id, points, effective_at) "
                       "VALUES (999, 999, -1, '2027-01-01T00:00:00Z')")
    finally:
        db.close()
    assert show(coffee, "M1", LATER)["balance"] == 0
    lots_ok(coffee)


@pytest.mark.slow
def test_as_of_figures_are_the_same_before_and_after_expire(coffee, tmp_path):
    coffee("program", "apply", str(program_file(tmp_path, "idle", "books", ("after_days: 730", "after_days: 200\n  inactivity_days: 60"))))
    for m in ("M1", "M2"):
        enroll(coffee, m)
        enroll(coffee, m, "idle")
    activity = [
        ("earn", "M1", "--amount", "120", "--program", "coffee", "--at", "2026-01-05T10:00:00Z"),
        ("earn", "M1", "--amount", "80", "--txn", "X1", "--program", "coffee", "--at", "2026-03-01T10:00:00Z"),
        ("redeem", "M1", "--points", "150", "--program", "coffee", "--at", "2026-06-01T00:00:00Z"),
        ("earn", "M2", "--amount", "999.99", "--program", "coffee", "--at", "2026-02-01T00:00:00Z"),
        ("refund", "X1", "--amount", "30", "--at", "2026-04-01T00:00:00Z"),
        ("earn", "M1", "--amount", "100", "--program", "idle", "--at", "2026-01-10T00:00:00Z"),
        ("earn", "M1", "--amount", "50", "--program", "idle", "--at", "2026-02-20T00:00:00Z"),
        ("redeem", "M1", "--points", "30", "--program", "idle", "--at", "2026-04-01T00:00:00Z"),  # active until 05-31
        ("earn", "M1", "--amount", "70", "--program", "idle", "--at", "2026-08-01T00:00:00Z"),  # after the gap
        ("adjust", "M2", "--points", "40", "--reason", "goodwill", "--program", "idle", "--at", "2026-03-01T00:00:00Z"),
    ]
    for args in activity:
        coffee(*args)
    moments = [f"2026-{m:02d}-{d:02d}T00:00:00Z" for m in range(1, 13) for d in (2, 15)]
    moments += ["2027-01-05T10:00:00Z", "2027-01-05T09:59:59Z", "2027-03-01T10:00:00Z", "2027-06-01T00:00:00Z",
                "2026-05-31T00:00:00Z", "2026-04-30T00:00:00Z", "2026-04-29T23:59:59Z"]

    def figures():
        out = {}
        for at in moments:
            for m in ("M1", "M2"):
                for p in ("coffee", "idle"):
                    s = show(coffee, m, at, p)
                    out[at, m, p] = (s["balance"], s["expired"], s["expiring_30d"], s["next_expiry"])
        return out

    before = figures()
    coffee("expire", "--as-of", "2026-09-01T00:00:00Z")
    coffee("expire", "--as-of", "2027-07-01T00:00:00Z")
    assert figures() == before
    # Hand-computed for the inactivity program: M2's gift lot (2026-03-01) sees no activity and expires
    # 60 days later; M1's first two idle lots die 60 days after the last redemption (2026-04-01).
    assert before["2026-04-29T23:59:59Z", "M2", "idle"][:2] == (40, 0)
    assert before["2026-04-30T00:00:00Z", "M2", "idle"][:2] == (0, 40)
    assert before["2026-05-15T00:00:00Z", "M1", "idle"][:2] == (120, 0)
    assert before["2026-05-31T00:00:00Z", "M1", "idle"][:2] == (0, 120)
    assert before["2026-12-02T00:00:00Z", "M1", "idle"][:2] == (0, 120 + 70)  # the August lot also idle by 09-30
    assert before["2027-01-05T09:59:59Z", "M1", "coffee"][:2] == (20, 0)  # 200 earned, 30 clawed back, 150 redeemed
    lots_ok(coffee)


@pytest.mark.slow
def test_catch_up_equals_nightly(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # Short expiry and window so a month shows expiries, upgrades and graced downgrades;
    # equal multipliers so earning does not depend on when reviews ran.
    prog = program_file(tmp_path, "quick", "coffee", ("after_days: 365", "after_days: 10"),
                        ("window_days: 365", "window_days: 12"), ("grace_days: 30", "grace_days: 3"),
                        ("multiplier: 1.25", "multiplier: 1"), ("multiplier: 1.5", "multiplier: 1"))
    dbs = {name: Cli(tmp_path / f"{name}.db") for name in ("nightly", "catchup", "single")}
    days = [f"2026-03-{d:02d}" for d in range(1, 29)]
    activity = {}
    for i, day in enumerate(days):
        acts = []
        if i % 3 == 0:
            acts.append(("earn", "A", "--amount", "260", "--txn", f"A{i}", "--at", f"{day}T10:00:00Z"))
        if i in (1, 2):
            acts.append(("earn", "B", "--amount", "900", "--txn", f"B{i}", "--at", f"{day}T11:00:00Z"))
        if i == 9:
            acts.append(("redeem", "B", "--points", "150", "--txn", "R9", "--at", f"{day}T12:00:00Z"))
        if i == 10:
            acts.append(("refund", "B2", "--amount", "500", "--txn", "F10", "--at", f"{day}T12:30:00Z"))
        if i % 5 == 2:
            acts.append(("earn", "C", "--amount", "45.50", "--txn", f"C{i}", "--at", f"{day}T08:00:00Z"))
        activity[day] = acts
    for c in dbs.values():
        c("init")
        c("program", "apply", str(prog))
        for m in "ABC":
            enroll(c, m, "quick", "2026-02-28T00:00:00Z")
    for day in days:
        for c in dbs.values():
            for args in activity[day]:
                c(*args)
        night = f"{day}T23:00:00Z"
        dbs["nightly"]("expire", "--as-of", night, "--quiet")
        dbs["nightly"]("tiers", "review", "--as-of", night, "--quiet")
    for day in days:  # missed nights caught up at the end, one run per night
        night = f"{day}T23:00:00Z"
        dbs["catchup"]("expire", "--as-of", night, "--quiet")
        dbs["catchup"]("tiers", "review", "--as-of", night, "--quiet")
        dbs["single"]("tiers", "review", "--as-of", night, "--quiet")  # reviews nightly, expire never
    dbs["single"]("expire", "--as-of", f"{days[-1]}T23:00:00Z", "--quiet")  # then one expire run

    def ledger(c):
        rows = [{k: v for k, v in r.items() if k != "recorded_at"} for r in c.json("export", "ledger")]
        return sorted(rows, key=lambda r: r["txn_id"])  # in the order of the ledger's time, not of recording

    def tiers(c):
        return [[(r["effective_at"], r["why"]) for r in c.json("history", m, "--as-of", LATER) if r["kind"] == "tier"] for m in "ABC"]

    nightly = ledger(dbs["nightly"])
    assert sum(r["kind"] == "expire" for r in nightly) >= 5
    assert ledger(dbs["catchup"]) == nightly and ledger(dbs["single"]) == nightly
    assert tiers(dbs["catchup"]) == tiers(dbs["nightly"])
    moves = " ".join(w for t in tiers(dbs["nightly"]) for _, w in t)
    assert "Gold -> Silver" in moves or "Gold -> Bronze" in moves or "Silver -> Bronze" in moves
    for c in dbs.values():
        lots_ok(c)


# --- inactivity expiry -------------------------------------------------------------


def test_inactivity_expires_the_whole_balance_and_activity_resets_the_clock(coffee, tmp_path):
    coffee("program", "apply", str(program_file(tmp_path, "idle", "books", ("after_days: 730", "inactivity_days: 100"))))
    enroll(coffee, "M1", "idle")
    coffee("adjust", "M1", "--points", "50", "--reason", "welcome", "--program", "idle", "--at", "2026-01-02T00:00:00Z")
    coffee("earn", "M1", "--amount", "100", "--at", "2026-01-10T00:00:00Z")
    coffee("earn", "M1", "--amount", "20", "--at", "2026-03-01T00:00:00Z")  # last activity: +100 days = 2026-06-09
    coffee("redeem", "M1", "--points", "30", "--at", "2026-03-01T00:00:01Z")  # also activity, one second later
    s = show(coffee, "M1", "2026-06-09T00:00:00Z")
    assert (s["balance"], s["expired"], s["next_expiry"]) == (140, 0, "2026-06-09T00:00:01Z")
    s = show(coffee, "M1", "2026-06-09T00:00:01Z")
    assert (s["balance"], s["expired"]) == (0, 140)
    report = coffee.json("report", "expiring", "--within", "30", "--as-of", "2026-05-20T00:00:00Z")
    assert [(r["member_id"], r["points"], r["first_expiry"]) for r in report] == [("M1", 140, "2026-06-09T00:00:01Z")]
    # a redemption after the deadline cannot use the expired points
    assert "has 0 available" in coffee.fail("redeem", "M1", "--points", "1", "--at", "2026-07-01T00:00:00Z")
    dry = coffee.json("expire", "--as-of", "2026-12-31T00:00:00Z", "--dry-run")
    assert (dry["lots"], dry["points"]) == (3, 140)
    coffee("expire", "--as-of", "2026-12-31T00:00:00Z")
    rows = [r for r in coffee.json("history", "M1", "--as-of", LATER) if r["kind"] == "expire"]
    assert {(r["effective_at"], r["rule"]) for r in rows} == {("2026-06-09T00:00:01Z", "inactivity")}
    assert sum(r["points"] for r in rows) == -140
    # New activity starts a new balance; backdating activity into the recorded gap is refused.
    coffee("earn", "M1", "--amount", "10", "--at", "2026-07-01T00:00:00Z")
    assert show(coffee, "M1", "2026-07-02T00:00:00Z")["balance"] == 10
    before = coffee.dump()
    assert "expired for inactivity" in coffee.fail("earn", "M1", "--amount", "5", "--at", "2026-05-01T00:00:00Z")
    assert coffee.dump() == before
    lots_ok(coffee)


def test_inactivity_combined_with_after_days_takes_the_sooner(coffee, tmp_path):
    coffee("program", "apply", str(program_file(tmp_path, "both", "books", ("after_days: 730", "after_days: 30\n  inactivity_days: 20"))))
    enroll(coffee, "M1", "both", "2025-12-31T00:00:00Z")
    coffee("earn", "M1", "--amount", "10", "--at", "2026-01-01T00:00:00Z")  # expires 01-31 by date
    for day in ("05", "15", "25", "31"):  # activity every <20 days: inactivity never bites
        coffee("earn", "M1", "--amount", "1", "--at", f"2026-01-{day}T00:00:00Z")
    assert show(coffee, "M1", "2026-01-30T23:59:59Z")["balance"] == 13
    s = show(coffee, "M1", "2026-01-31T00:00:00Z")  # the first lot by date; the 01-31 earn is in
    assert (s["balance"], s["expired"]) == (4, 10)
    s = show(coffee, "M1", "2026-02-20T00:00:00Z")  # 20 days after the last activity: all gone
    assert (s["balance"], s["expired"]) == (0, 14)
    coffee("expire", "--as-of", "2026-03-01T00:00:00Z")
    rules = {r["effective_at"]: r["rule"] for r in coffee.json("history", "M1", "--as-of", LATER) if r["kind"] == "expire"}
    assert rules == {"2026-01-31T00:00:00Z": "expiry", "2026-02-04T00:00:00Z": "expiry",  # 01-05 + 30 days
                     "2026-02-14T00:00:00Z": "expiry", "2026-02-20T00:00:00Z": "inactivity"}
    lots_ok(coffee)


# --- round_to ------------------------------------------------------------------------


@pytest.mark.parametrize("round_to,expiry", [("month_end", "2026-03-01T00:00:00Z"), ("year_end", "2027-01-01T00:00:00Z")])
def test_round_to_moves_expiry_to_the_period_end(coffee, tmp_path, round_to, expiry):
    coffee("program", "apply", str(program_file(tmp_path, "rounded", "books",
                                                ("after_days: 730", f"after_days: 30\n  round_to: {round_to}"))))
    enroll(coffee, "M1", "rounded")
    coffee("earn", "M1", "--amount", "80", "--at", "2026-01-15T10:00:00Z")  # +30 days = 2026-02-14T10:00Z
    assert [r["lot_expires_at"] for r in coffee.json("history", "M1", "--as-of", LATER) if r["lot"]] == [expiry]
    assert coffee.json("expire", "--as-of", "2026-02-28T23:59:59Z")["lots"] == 0
    assert show(coffee, "M1", "2026-02-28T23:59:59Z")["balance"] == 80
    assert coffee.json("expire", "--as-of", expiry)["points"] == 80
    assert show(coffee, "M1", expiry)["expired"] == 80


# --- tiers ---------------------------------------------------------------------------


def tier_rows(cli, member):
    return [(r["effective_at"], r["why"]) for r in cli.json("history", member, "--as-of", LATER) if r["kind"] == "tier"]


def test_downgrade_waits_for_grace_after_first_falling_short(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "600", "--at", "2026-01-10T12:00:00Z")  # Silver at once
    assert show(coffee, "M1", "2026-06-01T00:00:00Z")["tier"] == "Silver"
    # The purchase leaves the 365-day window at 2027-01-10T12:00Z; grace is 30 days.
    before = coffee.dump()
    assert coffee.json("tiers", "review", "--as-of", "2027-01-20T00:00:00Z", "--dry-run")["members"] == 0
    out = coffee("tiers", "review", "--as-of", "2027-02-09T11:59:59Z").stdout
    assert out.strip() == "moved 0 members: 0 up, 0 down (as of 2027-02-09T11:59:59Z)"
    assert coffee.dump() == before
    r = coffee.json("tiers", "review", "--as-of", "2027-02-09T12:00:00Z")
    assert (r["up"], r["down"], r["moves"][0]["from"], r["moves"][0]["to"]) == (0, 1, "Silver", "Bronze")
    assert tier_rows(coffee, "M1")[-1] == ("2027-02-09T12:00:00Z",
                                          "Silver -> Bronze: review: qualifying spend 0.00 GBP in 365 days")
    assert show(coffee, "M1", "2027-02-09T11:59:59Z")["tier"] == "Silver"
    assert show(coffee, "M1", "2027-02-09T12:00:00Z")["tier"] == "Bronze"
    assert coffee.json("tiers", "review", "--as-of", "2027-02-10T00:00:00Z")["members"] == 0  # nothing more to do


def test_grace_counts_from_the_last_time_the_member_qualified(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "600", "--at", "2026-01-10T12:00:00Z")  # Silver until 2027-01-10T12:00Z
    coffee("earn", "M1", "--amount", "550", "--txn", "P2", "--at", "2027-01-20T00:00:00Z")  # qualifies again...
    coffee("refund", "P2", "--at", "2027-01-25T00:00:00Z")  # ...until this refund: short from 01-25
    assert coffee.json("tiers", "review", "--as-of", "2027-02-15T00:00:00Z")["members"] == 0
    assert coffee.json("tiers", "review", "--as-of", "2027-02-23T23:59:59Z")["members"] == 0
    assert coffee.json("tiers", "review", "--as-of", "2027-02-24T00:00:00Z")["down"] == 1


def test_review_moves_up_and_manual_floor_holds_until_it_lapses(coffee):
    enroll(coffee, "M1")
    enroll(coffee, "M2")
    coffee("earn", "M1", "--amount", "100", "--at", "2026-01-05T00:00:00Z")
    coffee("earn", "M2", "--amount", "700", "--at", "2026-01-05T00:00:00Z")  # Silver at once
    assert "reason" in coffee.fail("tiers", "set", "M1", "--tier", "Gold", "--reason", " ")
    assert "unknown tier" in coffee.fail("tiers", "set", "M1", "--tier", "Platinum", "--reason", "x")
    assert "must be after" in coffee.fail("tiers", "set", "M1", "--tier", "Gold", "--reason", "x",
                                          "--at", "2026-02-01T00:00:00Z", "--until", "2026-01-01T00:00:00Z")
    coffee("tiers", "set", "M1", "--tier", "Gold", "--reason", "service recovery", "--at", "2026-02-01T00:00:00Z",
           "--until", "2026-06-01T00:00:00Z")
    # a manual tier is a floor: one below what M2's spend earns changes nothing (and says so)
    out = coffee("tiers", "set", "M2", "--tier", "Bronze", "--reason", "data fix", "--at", "2026-02-01T00:00:00Z").stdout
    assert "nothing changed" in out and show(coffee, "M2", "2026-02-02T00:00:00Z")["tier"] == "Silver"
    r = coffee.json("tiers", "review", "--as-of", "2026-03-01T00:00:00Z")
    assert r["moves"] == []
    assert coffee.json("tiers", "review", "--as-of", "2026-05-31T23:59:59Z")["members"] == 0  # M1 held at Gold
    assert show(coffee, "M1", "2026-05-31T23:59:59Z")["tier"] == "Gold"
    r = coffee.json("tiers", "review", "--as-of", "2026-06-01T00:00:00Z")  # floor lapsed; short all along
    assert [(m["member_id"], m["to"], m["direction"]) for m in r["moves"]] == [("M1", "Bronze", "down")]
    assert show(coffee, "M1", "2026-06-01T00:00:00Z")["tier"] == "Bronze"
    assert [w.split(":")[0] for _, w in tier_rows(coffee, "M1")] == ["- -> Bronze", "Bronze -> Gold", "Gold -> Bronze"]
    assert "OK" in coffee("verify").stdout


# --- report expiring -------------------------------------------------------------------


def test_report_expiring(coffee):
    for m, amount, day in (("M1", "300", "2026-01-10"), ("M2", "40", "2026-01-20"), ("M3", "500", "2026-03-01")):
        enroll(coffee, m)
        coffee("earn", m, "--amount", amount, "--at", f"{day}T00:00:00Z")
    rows = coffee.json("report", "expiring", "--within", "30", "--as-of", "2026-12-25T00:00:00Z")
    assert [(r["member_id"], r["points"], r["first_expiry"]) for r in rows] == [
        ("M1", 300, "2027-01-10T00:00:00Z"), ("M2", 40, "2027-01-20T00:00:00Z")]
    rows = coffee.json("report", "expiring", "--within", "30", "--min-points", "100", "--as-of", "2026-12-25T00:00:00Z")
    assert [r["member_id"] for r in rows] == ["M1"]
    csv = coffee("report", "expiring", "--within", "90", "--as-of", "2026-12-25T00:00:00Z", "--format", "csv").stdout
    assert csv.splitlines()[0].startswith("member_id,") and len(csv.splitlines()) == 4
    assert "no points expiring" in coffee("report", "expiring", "--as-of", "2026-02-01T00:00:00Z").stdout


def test_report_expiring_orders_fixed_and_inactivity_deadlines_together(coffee, tmp_path):
    coffee("program", "apply", str(program_file(tmp_path, "idle", "books", ("after_days: 730", "inactivity_days: 100"))))
    for m in ("M1", "M2"):
        enroll(coffee, m)
        enroll(coffee, m, "idle")
    coffee("earn", "M1", "--amount", "300", "-p", "coffee", "--at", "2026-01-10T00:00:00Z")  # coffee: 2027-01-10
    coffee("earn", "M2", "--amount", "40", "--program", "idle", "--at", "2026-09-25T00:00:00Z")  # idle: 2027-01-03
    coffee("earn", "M2", "--amount", "70", "--program", "idle", "--at", "2026-09-30T00:00:00Z")  # ... now 2027-01-08
    coffee("earn", "M1", "--amount", "20", "--program", "idle", "--at", "2026-10-05T00:00:00Z")  # idle: 2027-01-13
    rows = coffee.json("report", "expiring", "--within", "30", "--as-of", "2026-12-25T00:00:00Z")
    assert [(r["member_id"], r["program_code"], r["points"], r["lots"], r["first_expiry"]) for r in rows] == [
        ("M2", "idle", 110, 2, "2027-01-08T00:00:00Z"), ("M1", "coffee", 300, 1, "2027-01-10T00:00:00Z"),
        ("M1", "idle", 20, 1, "2027-01-13T00:00:00Z")]
    assert coffee.json("report", "expiring", "--within", "30", "--as-of", "2026-12-25T00:00:00Z",
                       "--program", "idle", "--min-points", "50") == rows[:1]


# --- concurrency -------------------------------------------------------------------------


@pytest.mark.slow
def test_two_expire_processes_started_together_expire_each_lot_once(tmp_path):
    from decimal import Decimal

    from loyaltyctl.app import ledger as service
    from loyaltyctl.store.connection import open_db

    c = Cli(tmp_path / "race.db")
    c("init")
    c("program", "apply", str(PROGRAMS / "books.yaml"))
    db = open_db(str(c.db))
    for i in range(60):
        service.enroll(db, f"M{i:03d}", "books", at="2026-01-01T00:00:00Z")
        for j in range(5):
            service.earn(db, f"M{i:03d}", program_code="books", amount=Decimal(10 + j), at=f"2026-0{j + 1}-0{1 + i % 9}T00:00:00Z")
    db.close()
    env = {**os.environ, "LOYALTYCTL_DB": str(c.db)}
    cmd = [str(Path(sys.executable).with_name("loyaltyctl")), "expire", "--as-of", "2028-06-01T00:00:00Z", "--format", "json"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    summaries = [json.loads(out) for out, _ in results]
    assert sorted(s["lots"] for s in summaries) == [0, 300]
    assert sum(s["points"] for s in summaries) == 60 * (10 + 11 + 12 + 13 + 14)
    conn = sqlite3.connect(c.db)
    per_lot = conn.execute(
        """SELECT l.id, count(e.id) FROM lots l LEFT JOIN lot_moves m ON m.lot_id = l.id
           LEFT JOIN entries e ON e.id = m.entry_id AND e.kind = 'expire' GROUP BY l.id""").fetchall()
    conn.close()
    assert len(per_lot) == 300 and {n for _, n in per_lot} == {1}
    lots_ok(c)


def test_history_is_the_same_before_and_after_an_inactivity_expiry_is_recorded(cli, tmp_path):
    program = tmp_path / "idle.yaml"
    program.write_text("code: idle\nname: Idle\ncurrency: GBP\npoint_value: '0.01'\n"
                       "earn:\n  - rule: spend\n    points_per_unit: 1\nexpiry:\n  inactivity_days: 30\n")
    cli("program", "apply", str(program), "--yes")
    cli("member", "enroll", "I1", "--program", "idle", "--at", "2026-01-01T00:00:00Z")
    cli("earn", "I1", "--amount", "40", "--at", "2026-01-02T00:00:00Z")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "recorded_at"} for r in rows]  # noqa: E731
    before = strip(cli.json("history", "I1", "--as-of", "2026-03-01T00:00:00Z"))
    assert before[-1]["kind"] == "expire" and before[-1]["rule"] == "inactivity"
    assert before[-1]["why"].startswith("inactivity expiry; lot ")
    cli("expire", "--as-of", "2026-03-01T00:00:00Z")
    assert strip(cli.json("history", "I1", "--as-of", "2026-03-01T00:00:00Z")) == before


def test_expire_ids_are_reserved(coffee, tmp_path):
    """The expire job names its entries expire-<lot id>; an operator's id of that form would
    later make the job fail, so it is refused (CLI and imports) and the job still runs."""
    enroll(coffee, "M1", "coffee", "2025-01-01")
    coffee("earn", "M1", "--amount", "100", "--txn", "P1", "--at", "2025-01-02")
    before = coffee.dump()
    err = coffee.fail("earn", "M1", "--amount", "5", "--txn", "expire-1", "--at", "2025-01-03")
    assert "reserved for the expire job" in err and "expire-1" in err
    assert coffee.fail("redeem", "M1", "--points", "5", "--txn", " expire-9").count("reserved") == 1
    assert coffee.dump() == before
    data = tmp_path / "pos.csv"
    data.write_text("txn_id,member_id,kind,occurred_at,amount\n"
                    "expire-1,M1,purchase,2025-01-04T00:00:00Z,5\n"
                    "P2,M1,purchase,2025-01-05T00:00:00Z,7\n")
    rejects = tmp_path / "rejects.csv"
    result = coffee("import", "transactions", str(data), "--rejects", str(rejects), ok=False)
    assert result.exit_code == 1
    rows = list(csv.DictReader(rejects.open()))
    assert [(r["txn_id"], r["line"], r["error"]) for r in rows] == [
        ("expire-1", "2", "txn_id: 'expire-1': ids starting with 'expire-' are reserved for the expire job")]
    summary = coffee.json("expire", "--as-of", "2026-02-01")
    assert summary["lots"] == 2 and summary["points"] == 107
