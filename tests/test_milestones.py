"""report milestones (points milestones crossed, tier moves) and report expiring, as an e-mail
tool reads them: name, email (none for an erased member), what happened and when."""

from __future__ import annotations

import csv
import io

import pytest


@pytest.fixture
def ledger(coffee):
    # coffee: milestones [500, 1000]; Silver from 500.00 spent (x1.25), Gold from 1500.00.
    # M1: 300 before the period; 250 on 02-05 -> 550 (500 points, and Silver: 550.00 spent);
    # 600.00 at Silver on 02-10 -> 750 points, 1,300 (1000 points). M2: 1,200 before the period.
    # M3 (erased): 520 in the period.
    for m, name in (("M1", "Ada"), ("M2", "Bob"), ("M3", "Cy")):
        coffee("member", "enroll", m, "-p", "coffee", "--name", name, "--email", f"{m.lower()}@example.com",
               "--at", "2029-01-01T00:00:00Z")
    coffee("earn", "M1", "--amount", "300", "--at", "2029-01-10T00:00:00Z")
    coffee("earn", "M2", "--amount", "1200", "--at", "2029-01-10T00:00:00Z")
    coffee("earn", "M1", "--amount", "250", "--at", "2029-02-05T00:00:00Z")
    coffee("earn", "M1", "--amount", "600", "--at", "2029-02-10T00:00:00Z")
    coffee("earn", "M3", "--amount", "520", "--at", "2029-02-11T00:00:00Z")
    coffee("member", "erase", "M3", "--yes")
    return coffee


def test_milestones_crossed_and_tier_moves_in_the_period(ledger):
    rows = ledger.json("report", "milestones", "--since", "2029-02-01", "--until", "2029-03-01")
    assert [(r["member_id"], r["email"], r["kind"], r["milestone"], r["previous"], r["reached_at"]) for r in rows] == [
        ("M1", "m1@example.com", "points", "500 points", None, "2029-02-05T00:00:00Z"),
        ("M1", "m1@example.com", "tier up", "Silver", "Bronze", "2029-02-05T00:00:00Z"),
        ("M1", "m1@example.com", "points", "1000 points", None, "2029-02-10T00:00:00Z"),
        ("M3", None, "points", "500 points", None, "2029-02-11T00:00:00Z"),
        ("M3", None, "tier up", "Silver", "Bronze", "2029-02-11T00:00:00Z")]
    # --until is excluded; M2's 1,200 were earned before the period.
    rows = ledger.json("report", "milestones", "--since", "2029-02-01", "--until", "2029-02-10")
    assert [r["milestone"] for r in rows] == ["500 points", "Silver"]
    text = ledger("report", "milestones", "--since", "2029-02-01", "--until", "2029-03-01", "--format", "csv").stdout
    got = list(csv.DictReader(io.StringIO(text)))
    assert list(got[0]) == ["member_id", "name", "email", "program", "kind", "milestone", "previous", "reached_at"]
    assert (got[0]["name"], got[0]["email"]) == ("Ada", "m1@example.com")
    assert "--since" in ledger.usage("report", "milestones")


def test_report_expiring_has_a_date_for_a_mail_merge(ledger):
    # coffee points last 365 days: M1's 300 of 2029-01-10 expire on 2030-01-10.
    rows = ledger.json("report", "expiring", "--within", "30", "--as-of", "2029-12-20T00:00:00Z")
    assert [(r["member_id"], r["name"], r["email"], r["points"], r["expires_on"]) for r in rows] == [
        ("M2", "Bob", "m2@example.com", 1200, "2030-01-10"), ("M1", "Ada", "m1@example.com", 300, "2030-01-10")]
