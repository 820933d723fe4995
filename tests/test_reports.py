"""Program reports (tiers, liability, roi, churn, at-risk, ticket) on small ledgers built
through the CLI, checked against figures computed by hand."""

from __future__ import annotations

import csv
import io
from decimal import ROUND_HALF_UP, Decimal

import pytest

from conftest import PROGRAMS


@pytest.fixture
def cafe(cli):
    """Only the coffee program: 1 point per GBP 1, point 0.01, cost 300/month, lots expire
    after 365 days, tiers on spend over 365 days: Bronze 0, Silver 500, Gold 1500."""
    cli("program", "apply", str(PROGRAMS / "coffee.yaml"))
    return cli


def enroll(cli, member, at="2026-01-01", program="coffee", *extra):
    cli("member", "enroll", member, "--program", program, "--at", at, *extra)


def buy(cli, member, amount, at, txn=None):
    cli("earn", member, "--amount", amount, "--at", at, *(["--txn", txn] if txn else []))


def by(rows, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in rows}


# --- tiers ------------------------------------------------------------------------


def test_tiers_share_averages_and_near_next_with_ties_at_thresholds(cafe):
    # A at exactly 90% of Silver (near), B just under 90% (not near), C exactly at Silver
    # (Silver, far from Gold), D exactly 90% of Gold (near), E exactly Gold (top: no next).
    for member, amount in (("A", "450"), ("B", "449.99"), ("C", "500"), ("D", "1350"), ("E", "1500")):
        enroll(cafe, member)
        buy(cafe, member, amount, "2026-02-01")
    rows = by(cafe.json("report", "tiers", "--as-of", "2026-03-01"), "tier")
    assert list(rows) == ["Bronze", "Silver", "Gold"]
    assert rows["Bronze"] | {} == {"program": "coffee", "tier": "Bronze", "members": 2, "share_pct": "40.0",
                                   "avg_balance": "449.5", "basis": "spend", "avg_qualifying": "450.00",
                                   "next_tier": "Silver", "near_next": 1}  # (450 + 449.99) / 2 = 449.995 -> 450.00
    assert (rows["Silver"]["members"], rows["Silver"]["avg_balance"], rows["Silver"]["avg_qualifying"],
            rows["Silver"]["near_next"]) == (2, "925.0", "925.00", 1)
    assert (rows["Gold"]["members"], rows["Gold"]["share_pct"], rows["Gold"]["near_next"],
            rows["Gold"]["next_tier"]) == (1, "20.0", None, None)
    # Before the purchases everyone is Bronze with nothing qualifying.
    early = by(cafe.json("report", "tiers", "--as-of", "2026-01-15"), "tier")
    assert (early["Bronze"]["members"], early["Bronze"]["share_pct"], early["Bronze"]["near_next"]) == (5, "100.0", 0)
    assert early["Silver"]["members"] == 0 and early["Silver"]["share_pct"] == "0.0"
    assert early["Silver"]["avg_balance"] is None
    # The qualifying window is 365 days: a year later nothing qualifies any more.
    late = by(cafe.json("report", "tiers", "--as-of", "2027-02-02"), "tier")
    assert late["Silver"]["avg_qualifying"] == "0.00"


def test_tiers_spend_basis_counts_own_purchases_net_of_refunds_not_partner_ones(cli, tmp_path):
    # The same purchases under a spend-tier program without and with a partner rule: partner
    # purchases never qualify for spend tiers; refunds count against their purchase.
    base = (PROGRAMS / "coffee.yaml").read_text()
    partner = base.replace("  - rule: spend\n    points_per_unit: 1\n",
                           "  - rule: spend\n    points_per_unit: 1\n"
                           "  - rule: partner\n    partner: bakery\n    points_per_unit: 1\n")
    (tmp_path / "mall.yaml").write_text(partner.replace("code: coffee", "code: mall"))
    cli("program", "apply", str(PROGRAMS / "coffee.yaml"), str(tmp_path / "mall.yaml"))
    for code in ("coffee", "mall"):
        enroll(cli, "A", program=code)
        cli("earn", "A", "-p", code, "--amount", "300", "--txn", f"{code}-1", "--at", "2026-02-01")
        cli("earn", "A", "-p", code, "--amount", "180", "--txn", f"{code}-2", "--at", "2026-02-02")
        cli("refund", f"{code}-2", "--amount", "30", "--txn", f"{code}-r", "--at", "2026-02-03")
    cli("earn", "A", "-p", "mall", "--amount", "400", "--partner", "bakery", "--at", "2026-02-04")
    for code in ("coffee", "mall"):
        bronze = by(cli.json("report", "tiers", "--program", code, "--as-of", "2026-03-01"), "tier")["Bronze"]
        assert (bronze["members"], bronze["avg_qualifying"], bronze["near_next"]) == (1, "450.00", 1), code


def test_tiers_points_basis_and_chart(cli):
    cli("program", "apply", str(PROGRAMS / "travel.yaml"))  # points basis: Silver at 5000 points
    enroll(cli, "T1", program="travel")
    enroll(cli, "T2", program="travel")
    buy(cli, "T1", "4500", "2026-02-01")
    buy(cli, "T2", "4499", "2026-02-01")
    rows = by(cli.json("report", "tiers", "--as-of", "2026-03-01"), "tier")
    assert (rows["Blue"]["members"], rows["Blue"]["basis"], rows["Blue"]["avg_qualifying"],
            rows["Blue"]["near_next"]) == (2, "points", "4499.5", 1)
    out = cli("report", "tiers", "--as-of", "2026-03-01").stdout
    assert "Members per tier" in out and "travel Blue" in out and "█" * 40 in out


def test_tiers_empty_program(cafe):
    rows = cafe.json("report", "tiers")
    assert [(r["tier"], r["members"], r["share_pct"], r["avg_balance"]) for r in rows] == [
        ("Bronze", 0, None, None), ("Silver", 0, None, None), ("Gold", 0, None, None)]


# --- balances at a moment ------------------------------------------------------------------


@pytest.fixture
def moved(cafe):
    """Lots used by redemptions, a refund clawing back more than is left (debt), a partial refund,
    and a lot expired by the expire job, all on both sides of the moments checked below."""
    for member, at in (("A", "2025-01-01"), ("B", "2025-01-01"), ("C", "2025-01-01"), ("D", "2025-05-01")):
        enroll(cafe, member, at)
    buy(cafe, "C", "80", "2025-01-10")                     # expires 2026-01-10
    buy(cafe, "A", "100", "2025-06-01", txn="A1")
    buy(cafe, "A", "600", "2025-06-02")                    # Silver from here on
    cafe("redeem", "A", "--points", "650", "--at", "2025-06-10")
    cafe("refund", "A1", "--at", "2025-06-20")             # claws back 100 of which 50 are gone: debt
    buy(cafe, "B", "40", "2025-12-01", txn="B1")
    cafe("redeem", "B", "--points", "30", "--at", "2026-02-01")
    cafe("refund", "B1", "--amount", "5", "--at", "2026-02-05")
    cafe("expire", "--as-of", "2026-02-01")                # records C's expiry at 2026-01-10
    return cafe


MOMENTS = ("2024-12-01", "2025-03-01", "2025-06-01", "2025-06-15", "2025-06-25", "2026-01-09T23:59:59Z",
           "2026-01-10", "2026-02-03", None)


def test_report_balances_and_tiers_agree_with_member_list_at_past_and_present_moments(moved):
    # `member list` sums each lot's moves up to the moment; the reports take the lots' cached
    # remainders and give back the moves recorded after it. None: now, after every entry.
    snapshots = set()
    for at in MOMENTS:
        args = ("--as-of", at) if at else ()
        listed = {r["member_id"]: (r["balance"], r["tier"]) for r in moved.json("member", "list", *args)}
        top = moved.json("report", "balances", "--limit", "10", *args)
        assert {r["member_id"]: (r["balance"], r["tier"]) for r in top} == listed, at
        for r in moved.json("report", "tiers", *args):
            held = [balance for balance, tier in listed.values() if tier == r["tier"]]
            average = (Decimal(sum(held)) / len(held)).quantize(Decimal("0.1"), ROUND_HALF_UP) if held else None
            assert (r["members"], r["avg_balance"]) == (len(held), None if average is None else str(average)), (at, r)
        snapshots.add(tuple(sorted(listed.items())))
    assert len(snapshots) == len(MOMENTS)  # every moment sees other balances
    at = {a: {r["member_id"]: r["balance"] for r in moved.json("report", "balances", "--as-of", a)}
          for a in ("2025-06-15", "2025-06-25", "2026-01-10", "2026-02-03")}
    assert at["2025-06-15"] == {"A": 50, "B": 0, "C": 80, "D": 0}
    assert at["2025-06-25"]["A"] == -50                    # the claw-back's uncovered part
    assert (at["2026-01-10"]["C"], at["2026-01-10"]["B"]) == (0, 40)
    assert at["2026-02-03"]["B"] == 10                     # the later partial refund not yet


# --- liability ----------------------------------------------------------------------------


def test_liability_points_value_and_expiring_windows(cafe):
    enroll(cafe, "A")
    buy(cafe, "A", "100", "2026-01-10")  # lot 1: 100 points, expires 2027-01-10
    buy(cafe, "A", "200", "2026-03-01")  # lot 2: 200 points, expires 2027-03-01
    cafe("redeem", "A", "--points", "50", "--at", "2026-04-01")  # from lot 1 (soonest expiry)
    row = cafe.json("report", "liability", "--as-of", "2026-12-20")[0]
    assert row == {"program": "coffee", "members": 1, "points": 250, "value": "2.50", "expiring_30d": 50,
                   "value_30d": "0.50", "expiring_90d": 250, "value_90d": "2.50", "currency": "GBP"}
    # After lot 1's expiry (whether or not the expire job ran) only lot 2 remains.
    row = cafe.json("report", "liability", "--as-of", "2027-01-15")[0]
    assert (row["points"], row["expiring_30d"], row["expiring_90d"], row["value"]) == (200, 0, 200, "2.00")
    cafe("expire", "--as-of", "2027-01-15")
    assert cafe.json("report", "liability", "--as-of", "2027-01-15")[0]["points"] == 200
    # Before anything was earned.
    row = cafe.json("report", "liability", "--as-of", "2026-01-05")[0]
    assert (row["members"], row["points"], row["value"]) == (0, 0, "0.00")


def test_liability_csv(cafe):
    out = cafe("report", "liability", "--format", "csv").stdout
    assert list(csv.reader(io.StringIO(out))) == [
        ["program", "members", "points", "value", "expiring_30d", "value_30d", "expiring_90d", "value_90d", "currency"],
        ["coffee", "0", "0", "0.00", "0", "0.00", "0", "0.00", "GBP"]]


# --- ROI ---------------------------------------------------------------------------------


@pytest.fixture
def roi_ledger(cafe):
    enroll(cafe, "A")
    buy(cafe, "A", "100", "2026-01-10")                 # A's first purchase
    buy(cafe, "A", "50", "2026-02-10", txn="A2")
    buy(cafe, "A", "30", "2026-03-10")
    cafe("refund", "A2", "--amount", "10", "--at", "2026-03-15")
    cafe("redeem", "A", "--reward", "free_coffee", "--at", "2026-03-20")  # 150 points = 1.50
    enroll(cafe, "B", "2025-12-01")
    buy(cafe, "B", "40", "2025-12-15")                  # B's first purchase, before the period
    buy(cafe, "B", "60", "2026-02-01")
    buy(cafe, "B", "25", "2026-04-01")                  # after the period (until is excluded)
    return cafe


def test_roi_from_program_cost_per_month(roi_ledger):
    row = roi_ledger.json("report", "roi", "--since", "2026-01-01", "--until", "2026-04-01")[0]
    # revenue 100 + (50 - 10) + 30 + 60 = 230; repeat 40 + 30 + 60 = 130; reward 1.50;
    # operating 3 months x 300 = 900; ROI = (130 - 1.5 - 900) / 901.5 = -85.579...%
    assert row == {"program": "coffee", "since": "2026-01-01T00:00:00Z", "until": "2026-04-01T00:00:00Z",
                   "months": "3.00", "members": 2, "purchases": 4, "revenue": "230.00", "repeat_revenue": "130.00",
                   "redeemed_points": 150, "reward_cost": "1.50", "operating_cost": "900.00", "net_gain": "-771.50",
                   "roi_pct": "-85.6", "partner_purchases": 0, "partner_revenue": "0.00", "currency": "GBP"}


def test_roi_with_cost_option_and_pro_rating(roi_ledger):
    row = roi_ledger.json("report", "roi", "--program", "coffee", "--since", "2026-01-01", "--until", "2026-04-01",
                          "--cost", "100")[0]
    assert (row["operating_cost"], row["net_gain"], row["roi_pct"]) == ("100.00", "28.50", "28.1")  # 28.5 / 101.5
    # 16 of January's 31 days: 300 x 16/31 = 154.838... -> 154.84; only A's first purchase is inside.
    row = roi_ledger.json("report", "roi", "--since", "2026-01-16", "--until", "2026-02-01")[0]
    assert (row["months"], row["operating_cost"], row["revenue"], row["purchases"]) == ("0.52", "154.84", "0.00", 0)
    row = roi_ledger.json("report", "roi", "--since", "2026-01-01", "--until", "2026-02-01")[0]
    assert (row["revenue"], row["repeat_revenue"], row["roi_pct"]) == ("100.00", "0.00", "-100.0")


def test_roi_cost_needs_one_program_and_no_cost_no_ratio(cli):
    cli("program", "apply", str(PROGRAMS / "coffee.yaml"), str(PROGRAMS / "books.yaml"))
    assert "--program" in cli.fail("report", "roi", "--cost", "10", "--since", "2026-01-01")
    assert "not a decimal amount" in cli.usage("report", "roi", "--program", "coffee", "--cost", "ten")
    assert "must be after" in cli.fail("report", "roi", "--since", "2026-02-01", "--until", "2026-01-01")
    books = by(cli.json("report", "roi", "--since", "2026-01-01", "--until", "2026-02-01"), "program")["books"]
    assert (books["operating_cost"], books["reward_cost"], books["roi_pct"]) == ("0.00", "0.00", None)


# --- churn --------------------------------------------------------------------------------


@pytest.fixture
def churn_ledger(cafe):
    # A buys in Dec, Jan, Feb, Mar; B in Jan and Mar; C in Feb only.
    enroll(cafe, "A", "2025-12-01")
    enroll(cafe, "B")
    enroll(cafe, "C")
    for member, at in (("A", "2025-12-05"), ("A", "2026-01-05"), ("A", "2026-01-20"), ("B", "2026-01-07"),
                       ("A", "2026-02-05"), ("C", "2026-02-09"), ("A", "2026-03-05"), ("B", "2026-03-30")):
        buy(cafe, member, "5", at)
    return cafe


def test_churn_per_month(churn_ledger):
    rows = churn_ledger.json("report", "churn", "--since", "2026-01-01", "--until", "2026-05-01")
    assert [(r["period"], r["active"], r["previous_active"], r["retained"], r["lost"], r["churn_pct"])
            for r in rows] == [
        ("2026-01", 2, 1, 1, 0, "0.0"),    # A and B; December had A, who stayed
        ("2026-02", 2, 2, 1, 1, "50.0"),   # A and C; B lost
        ("2026-03", 2, 2, 1, 1, "50.0"),   # A and B; C lost (B's return is not a retention)
        ("2026-04", 0, 2, 0, 2, "100.0"),  # nobody
    ]


def test_churn_per_quarter_and_empty(churn_ledger):
    rows = churn_ledger.json("report", "churn", "--period", "quarter", "--since", "2025-10-01", "--until", "2026-07-01")
    assert [(r["period"], r["active"], r["lost"], r["churn_pct"]) for r in rows] == [
        ("2025-Q4", 1, 0, None), ("2026-Q1", 3, 0, "0.0"), ("2026-Q2", 0, 3, "100.0")]
    assert "--period" in churn_ledger.usage("report", "churn", "--period", "week")


def test_churn_empty_ledger(cafe):
    assert cafe.json("report", "churn") == []
    rows = cafe.json("report", "churn", "--since", "2026-01-01", "--until", "2026-03-01")
    assert [(r["period"], r["active"], r["churn_pct"]) for r in rows] == [("2026-01", 0, None), ("2026-02", 0, None)]
    assert "nothing to report" in cafe("report", "churn").stdout


def test_churn_across_chunks_of_62_periods(cafe):
    # --since 2020-01 puts 2019-12 first; 2025-01 ends the first chunk of 62 months and starts the next.
    for member in ("A", "B", "C", "D"):
        enroll(cafe, member, "2019-01-01")
    for member, at in (("C", "2019-12-05"), ("C", "2020-01-10"), ("C", "2020-01-20"), ("D", "2024-12-10"),
                       ("D", "2025-01-10"), ("A", "2025-01-15"), ("B", "2025-01-20"), ("A", "2025-02-15")):
        buy(cafe, member, "5", at)
    rows = by(cafe.json("report", "churn", "--since", "2020-01-01", "--until", "2025-04-01"), "period")
    assert len(rows) == 63
    assert {p: (r["active"], r["previous_active"], r["lost"]) for p, r in rows.items() if r["previous_active"] or r["active"]} == {
        "2020-01": (1, 1, 0), "2020-02": (0, 1, 1), "2024-12": (1, 0, 0), "2025-01": (3, 1, 0), "2025-02": (1, 3, 2),
        "2025-03": (0, 1, 1)}


def test_churn_counts_a_member_in_two_programs_once(cli):
    cli("program", "apply", str(PROGRAMS / "coffee.yaml"), str(PROGRAMS / "books.yaml"))
    for member, program in (("A", "coffee"), ("A", "books"), ("B", "coffee")):
        enroll(cli, member, "2026-01-01", program)
    cli("earn", "A", "--program", "coffee", "--amount", "5", "--at", "2026-01-05")
    cli("earn", "A", "--program", "books", "--amount", "5", "--at", "2026-01-06")
    cli("earn", "B", "--amount", "5", "--at", "2026-01-07")
    cli("earn", "A", "--program", "books", "--amount", "5", "--at", "2026-02-05")  # A stays, through books
    span = ("--since", "2026-01-01", "--until", "2026-03-01")
    figures = lambda *extra: [(r["active"], r["lost"]) for r in cli.json("report", "churn", *span, *extra)]  # noqa: E731
    assert figures() == [(2, 0), (1, 1)]
    assert figures("--program", "coffee") == [(2, 0), (0, 2)]
    assert figures("--program", "books") == [(1, 0), (1, 0)]


def test_churn_marks_the_unfinished_period_partial_and_leaves_its_churn_empty(cafe, monkeypatch):
    # "Now" is 12:00 on the 1st of a month: only A has come back yet, out of A, B and C.
    monkeypatch.setenv("LOYALTYCTL_NOW", "2026-03-01T12:00:00Z")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    for member in ("A", "B", "C"):
        enroll(cafe, member, "2026-01-01")
        buy(cafe, member, "5", "2026-01-10")
        buy(cafe, member, "5", "2026-02-10")
    buy(cafe, "A", "5", "2026-03-01T09:00:00Z")
    rows = cafe.json("report", "churn", "--since", "2026-01-01")
    assert [(r["period"], r["partial"], r["active"], r["previous_active"], r["retained"], r["lost"], r["churn_pct"])
            for r in rows] == [("2026-01", False, 3, 0, 0, 0, None), ("2026-02", False, 3, 3, 3, 0, "0.0"),
                               ("2026-03", True, 1, 3, 1, None, None)]  # not 66.7% churn: B and C may come yet
    table = cafe("report", "churn", "--since", "2026-01-01").stdout
    march = next(line for line in table.splitlines() if "2026-03" in line)
    assert "yes" in march and "66.7" not in march and "%" not in march
    assert max(map(len, table.splitlines())) <= 80
    text = cafe("report", "churn", "--since", "2026-01-01", "--format", "csv").stdout
    assert list(csv.reader(io.StringIO(text)))[-1] == ["2026-03", "true", "1", "3", "1", "", ""]
    # A month that has ended is whole again, whatever the report's --until.
    monkeypatch.setenv("LOYALTYCTL_NOW", "2026-04-01T00:00:00Z")
    last = cafe.json("report", "churn", "--since", "2026-01-01", "--until", "2026-04-01")[-1]
    assert (last["partial"], last["lost"], last["churn_pct"]) == (False, 2, "66.7")


# --- at risk -------------------------------------------------------------------------------


@pytest.fixture
def risk_ledger(cafe):
    enroll(cafe, "A")
    for at in ("2026-01-01", "2026-01-11", "2026-01-21", "2026-01-31"):  # gaps 10, 10, 10: median 10 days
        buy(cafe, "A", "10", at)
    enroll(cafe, "D")
    for at in ("2026-01-01", "2026-01-03", "2026-01-07", "2026-01-13", "2026-01-21"):  # gaps 2, 4, 6, 8: median 5
        buy(cafe, "D", "20", at)
    enroll(cafe, "B")
    buy(cafe, "B", "10", "2026-01-02")  # two purchases only: no rhythm to lag
    buy(cafe, "B", "10", "2026-01-03")
    enroll(cafe, "C", "2025-01-01")
    buy(cafe, "C", "300", "2025-03-10")  # 300 points expiring 2026-03-10
    return cafe


def test_at_risk_rhythm_ties_and_expiring_idle(risk_ledger):
    # 2026-02-20: A is exactly 20 days (2 x median) after the last purchase: not beyond it.
    # D is 30 days after, beyond 2 x 5 days. C's 300 points expire within 30 days and C
    # has been idle since 2025-03-10.
    rows = risk_ledger.json("report", "at-risk", "--as-of", "2026-02-20")
    assert [r["member_id"] for r in rows] == ["C", "D"]  # largest balance at stake first (300, 100)
    c, d = rows
    assert (c["balance"], c["expiring"], c["reason"], c["median_gap_days"]) == (300, 300, "points expiring, idle 60d", None)
    assert (d["balance"], d["purchases"], d["last_purchase"], d["days_since"], d["median_gap_days"], d["reason"]) == (
        100, 5, "2026-01-21T00:00:00Z", "30.0", "5.0", "lagging rhythm")
    later = risk_ledger.json("report", "at-risk", "--as-of", "2026-02-20T00:00:01Z")
    assert [r["member_id"] for r in later] == ["C", "D", "A"]
    assert [r["member_id"] for r in risk_ledger.json("report", "at-risk", "--as-of", "2026-02-20", "--factor", "6.5")] == ["C"]
    assert [r["member_id"] for r in risk_ledger.json("report", "at-risk", "--as-of", "2026-02-20", "--factor", "5.9")] == ["C", "D"]
    # factor 4: D's threshold is 7.5 days, above three of its four gaps (2, 4, 6): the median is below it.
    assert [r["member_id"] for r in risk_ledger.json("report", "at-risk", "--as-of", "2026-02-20", "--factor", "4")] == ["C", "D"]
    # Once C's points expired nothing is at stake for C any more.
    assert [r["member_id"] for r in risk_ledger.json("report", "at-risk", "--as-of", "2026-03-10")] == ["D", "A"]
    assert "--factor" in risk_ledger.usage("report", "at-risk", "--factor", "zero")
    assert "--factor" in risk_ledger.usage("report", "at-risk", "--factor", "-1")
    assert "4 decimal places" in risk_ledger.usage("report", "at-risk", "--factor", "2.00001")
    assert risk_ledger.json("report", "at-risk", "--as-of", "2026-02-20", "--factor", "5.90000") == rows  # = 5.9


def test_at_risk_rhythm_takes_back_dated_purchases_and_stops_at_the_moment_asked(risk_ledger):
    buy(risk_ledger, "A", "10", "2026-01-06")  # recorded late: A's gaps become 5, 5, 10, 10 (median 7.5)
    a = by(risk_ledger.json("report", "at-risk", "--as-of", "2026-02-20"), "member_id")["A"]
    assert (a["purchases"], a["days_since"], a["median_gap_days"], a["reason"]) == (5, "20.0", "7.5", "lagging rhythm")
    # On 2026-01-30 the 2026-01-31 purchase has not happened: gaps 5, 5, 10 (median 5); 9 days > 1.5 x 5.
    a = by(risk_ledger.json("report", "at-risk", "--as-of", "2026-01-30", "--factor", "1.5"), "member_id")["A"]
    assert (a["purchases"], a["last_purchase"], a["median_gap_days"]) == (4, "2026-01-21T00:00:00Z", "5.0")
    assert "A" not in by(risk_ledger.json("report", "at-risk", "--as-of", "2026-01-30", "--factor", "1.8"), "member_id")


def test_at_risk_recent_activity_clears_expiring_flag(risk_ledger):
    risk_ledger("earn", "C", "--amount", "1", "--at", "2025-12-01")  # 81 days before: still idle
    assert "C" in [r["member_id"] for r in risk_ledger.json("report", "at-risk", "--as-of", "2026-02-20")]
    risk_ledger("redeem", "C", "--points", "1", "--at", "2026-01-01")  # 50 days before
    assert "C" not in [r["member_id"] for r in risk_ledger.json("report", "at-risk", "--as-of", "2026-02-20")]


def test_at_risk_counts_points_as_they_stood_before_later_redemptions(risk_ledger):
    risk_ledger("redeem", "C", "--points", "120", "--at", "2026-02-25")  # after the moment asked about
    c = by(risk_ledger.json("report", "at-risk", "--as-of", "2026-02-20"), "member_id")["C"]
    assert (c["balance"], c["expiring"]) == (300, 300)
    c = by(risk_ledger.json("report", "at-risk", "--as-of", "2026-02-26"), "member_id").get("C")
    assert c is None  # the redemption is activity within the last 60 days


# --- ticket ------------------------------------------------------------------------------------


def test_ticket_members_anonymous_and_first_90_days(cafe, tmp_path):
    enroll(cafe, "A")
    buy(cafe, "A", "10", "2026-01-10")                  # first 90 days
    buy(cafe, "A", "20", "2026-02-01", txn="A2")        # wholly refunded: left out
    buy(cafe, "A", "30", "2026-05-01", txn="A3")        # after 90 days, refunded 10 -> 20
    cafe("refund", "A2", "--at", "2026-02-02")
    cafe("refund", "A3", "--amount", "10", "--at", "2026-05-02")
    sales = tmp_path / "sales.csv"
    sales.write_text("txn_id,member_id,kind,occurred_at,amount\n"
                     "S1,,purchase,2026-01-05,5\nS2,,purchase,2026-03-05,7.50\n")
    cafe("import", "transactions", str(sales), "--program", "coffee")
    rows = by(cafe.json("report", "ticket"), "segment")
    assert [(s, rows[s]["purchases"], rows[s]["amount"], rows[s]["avg_ticket"]) for s in rows] == [
        ("members", 2, "30.00", "15.00"), ("anonymous", 2, "12.50", "6.25"),
        ("members_first", 1, "10.00", "10.00"), ("members_after", 1, "20.00", "20.00"), ("partners", 0, "0.00", None)]
    rows = by(cafe.json("report", "ticket", "--since", "2026-02-01", "--until", "2026-04-01"), "segment")
    assert (rows["members"]["purchases"], rows["members"]["avg_ticket"]) == (0, None)
    assert (rows["anonymous"]["purchases"], rows["anonymous"]["avg_ticket"]) == (1, "7.50")


def test_reports_need_a_known_program(cafe):
    for name in ("tiers", "liability", "roi", "churn", "at-risk", "ticket"):
        assert "unknown program 'nope'" in cafe.fail("report", name, "--program", "nope")
