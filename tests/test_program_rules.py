"""Rules operators asked the leading systems for, through the CLI: credits with an expiry of
their own (adjust --expires-at / --never-expires, opening balances that never expire),
purchases without points, the tier the crossing purchase earns at (ERPNext's tier selection),
program validity and eligibility by tag, and what `program plan` says of them."""

from __future__ import annotations

import pytest

from conftest import Cli

JOINED = "2026-01-01T00:00:00Z"
AT = "2026-02-01T10:00:00Z"


def apply(cli: Cli, tmp_path, text: str, *members: tuple[str, str]) -> None:
    code = text.split("\n", 1)[0].split(": ")[1]
    (tmp_path / f"{code}.yaml").write_text(text)
    cli("program", "apply", str(tmp_path / f"{code}.yaml"))
    for member, tags in members or (("M1", ""),):
        cli("member", "enroll", member, "-p", code, "--at", JOINED, *(["--tag", tags] if tags else []))


def balance(cli: Cli, member: str, at: str) -> int:
    return cli.json("member", "show", member, "--as-of", at)["balance"]


# --- credits with an expiry of their own --------------------------------------------------------

IDLE = """\
code: idle
name: Idle
currency: GBP
point_value: "0.01"
earn:
  - rule: spend
    points_per_unit: 1
expiry:
  after_days: 365
  inactivity_days: 60
"""


def test_adjust_expires_at_a_date_or_never(cli, tmp_path):
    # +100 by the program's rule (a year, or 60 idle days: 2026-04-02), +20 until 2026-03-01,
    # +5 never (not even for inactivity).
    apply(cli, tmp_path, IDLE)
    cli("adjust", "M1", "--points", "100", "--reason", "goodwill", "--at", AT)
    cli("adjust", "M1", "--points", "20", "--reason", "promo", "--expires-at", "2026-03-01", "--at", AT)
    cli("adjust", "M1", "--points", "5", "--reason", "forever", "--never-expires", "--at", AT)
    assert balance(cli, "M1", "2026-02-28T00:00:00Z") == 125
    assert balance(cli, "M1", "2026-03-01T00:00:00Z") == 105
    assert balance(cli, "M1", "2026-04-03T00:00:00Z") == 5
    assert balance(cli, "M1", "2029-12-31T00:00:00Z") == 5
    before = cli.dump()
    assert cli.fail("adjust", "M1", "--points", "5", "--reason", "x", "--expires-at", "2026-01-01", "--at", AT) == \
        f"Error: --expires-at: 2026-01-01T00:00:00Z is not after the credit's time {AT}"
    assert cli.fail("adjust", "M1", "--points=-5", "--reason", "x", "--never-expires", "--at", AT) == \
        "Error: --never-expires: applies to points added (a removal takes from the lots that expire soonest)"
    assert cli.fail("adjust", "M1", "--points", "5", "--reason", "x", "--never-expires", "--expires-at",
                    "2027-01-01", "--at", AT) == "Error: --never-expires: give --expires-at or --never-expires, not both"
    assert cli.dump() == before


def test_an_opening_balance_that_never_expires(cli, tmp_path):
    apply(cli, tmp_path, IDLE)
    (tmp_path / "open.csv").write_text("txn_id,member_id,kind,occurred_at,points,expires_at\n"
                                       f"O1,M1,opening,{AT},70,never\nO2,M1,opening,{AT},30,\n")
    cli("import", "transactions", str(tmp_path / "open.csv"))
    # O2 lapses after 60 idle days; O1 never does.
    assert balance(cli, "M1", "2026-03-01T00:00:00Z") == 100
    assert balance(cli, "M1", "2028-01-01T00:00:00Z") == 70
    rows = {r["txn_id"]: r["lot_expires_at"] for r in cli.json("history", "M1", "--as-of", "2026-03-01")}
    assert rows == {"O1": None, "O2": "2027-02-01T10:00:00Z"}


# --- earn --no-points ---------------------------------------------------------------------------


def test_a_purchase_without_points_counts_for_tiers(coffee):
    # 600.00 --no-points: 0 points, but spend 600 >= Silver's 500, so the next 10.00 earns at
    # Silver: 10 x 1.25 = 12.5 -> 12.
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", "2029-06-01T00:00:00Z")
    r = coffee.json("earn", "M1", "--amount", "600", "--no-points", "--txn", "N1", "--at", "2029-06-02T00:00:00Z")
    assert (r["points"], r["balance"], r["upgraded_to"]) == (0, 0, "Silver")
    r = coffee.json("earn", "M1", "--amount", "10", "--at", "2029-06-03T00:00:00Z")
    assert (r["points"], r["tier"]) == (12, "Silver")
    assert "recorded with no points (--no-points): it counts for tiers and analytics" in coffee("explain", "N1").stdout
    # Earning or not is part of what a repeated --txn is compared on.
    assert "already recorded with different content" in coffee.fail("earn", "M1", "--amount", "600", "--txn", "N1",
                                                                     "--at", "2029-06-02T00:00:00Z")


def test_a_community_program_records_purchases_without_points(coffee):
    # club has no earn rules: a purchase is refused, one without points is recorded for analytics.
    coffee("member", "enroll", "C1", "-p", "club", "--at", JOINED)
    assert "has no spend rule" in coffee.fail("earn", "C1", "--amount", "20", "--at", AT)
    r = coffee.json("earn", "C1", "--amount", "20", "--no-points", "--txn", "CL1", "--at", AT)
    assert (r["rule"], r["points"], r["amount"]) == ("spend", 0, "20.00")
    assert "0 points in all (--no-points)" in coffee("explain", "CL1").stdout
    assert coffee("verify").exit_code == 0


# --- tiers.upgrade_earns ------------------------------------------------------------------------

# ERPNext's test_tier_selection program: 1 point per 1,000; Silver from 10,000, Gold from 20,000
# (here as multipliers 2 and 3 on the same rate).
TIERED = """\
code: erp
name: ERPNext tiers
currency: INR
point_value: "1"
earn:
  - rule: spend
    points_per_unit: 0.001
tiers:
  basis: spend
  window_days: 365
  upgrade_earns: crossing
  levels:
    - {name: Bronze, threshold: 0}
    - {name: Silver, threshold: 10000, multiplier: 2}
    - {name: Gold, threshold: 20000, multiplier: 3}
"""


@pytest.mark.parametrize("spent, amount, tier, points", [
    (0, 6000, "Bronze", 6),        # 6,000: Bronze, 6 points
    (0, 15000, "Silver", 30),      # crosses 10,000: earns at Silver, 15 x 2
    (4000, 500, "Bronze", 0),      # 4,500: Bronze, 0.5 -> 0
    (8000, 3000, "Silver", 6),     # 11,000: Silver, 3 x 2
    (18000, 3000, "Gold", 9),      # 21,000 (from Silver): Gold, 3 x 3
])
def test_the_crossing_purchase_earns_at_the_new_tier_with_upgrade_earns_crossing(cli, tmp_path, spent, amount, tier,
                                                                                 points):
    apply(cli, tmp_path, TIERED)
    if spent:
        cli("earn", "M1", "--amount", str(spent), "--at", "2026-01-10T00:00:00Z")
    r = cli.json("earn", "M1", "--amount", str(amount), "--txn", "T", "--at", AT)
    assert (r["tier"], r["points"]) == (tier, points)
    assert cli.json("explain", "T")["tier"] == tier


def test_with_upgrade_earns_next_the_crossing_purchase_earns_at_the_old_tier(cli, tmp_path):
    # 8,000 then 3,000: crosses into Silver but earns at Bronze, 3 x 1; the next 1,000 at Silver.
    apply(cli, tmp_path, TIERED.replace("upgrade_earns: crossing", "upgrade_earns: next"))
    cli("earn", "M1", "--amount", "8000", "--at", "2026-01-10T00:00:00Z")
    r = cli.json("earn", "M1", "--amount", "3000", "--at", AT)
    assert (r["points"], r["upgraded_to"]) == (3, "Silver")
    assert cli.json("earn", "M1", "--amount", "1000", "--at", AT)["points"] == 2


# --- validity and eligibility -------------------------------------------------------------------

SEASON = """\
code: season
name: Summer season
currency: GBP
point_value: "0.01"
starts_at: "2026-02-01"
ends_at: "2026-07-01"
eligible_tags: [card_member]
earn:
  - rule: spend
    points_per_unit: 1
  - rule: event
    event: review
    points: 5
"""


def test_earning_outside_the_programs_dates_or_without_an_eligible_tag_is_refused(cli, tmp_path):
    apply(cli, tmp_path, SEASON, ("C1", "card_member"), ("N1", ""))
    before = cli.dump()
    assert cli.fail("earn", "C1", "--amount", "10", "--at", "2026-01-31T23:59:59Z") == \
        "Error: --at: program 'season' starts at 2026-02-01T00:00:00Z: nothing earns before then"
    assert cli.fail("earn", "C1", "--event", "review", "--at", "2026-07-01T00:00:00Z") == \
        "Error: --at: program 'season' ended at 2026-07-01T00:00:00Z: nothing earns from then on"
    assert cli.fail("earn", "N1", "--amount", "10", "--at", AT) == \
        "Error: member 'N1' may not earn in 'season': it is for members tagged card_member"
    assert cli.dump() == before
    assert cli.json("earn", "C1", "--amount", "10", "--at", AT)["points"] == 10
    # Spending points after the end, and purchases recorded without points, are not earning.
    assert cli.json("redeem", "C1", "--points", "4", "--at", "2026-08-01T00:00:00Z")["balance"] == 6
    assert cli.json("earn", "N1", "--amount", "10", "--no-points", "--at", AT)["points"] == 0


def test_program_plan_shows_who_validity_and_eligibility_keep_from_earning(cli, tmp_path):
    open_ = SEASON.replace('starts_at: "2026-02-01"\nends_at: "2026-07-01"\neligible_tags: [card_member]\n', "")
    apply(cli, tmp_path, open_, ("C1", "card_member"), ("N1", ""), ("N2", ""))
    (tmp_path / "season.yaml").write_text(SEASON)
    (plan,) = cli.json("program", "plan", str(tmp_path / "season.yaml"), "--as-of", "2026-08-01T00:00:00Z")
    effects = plan["effects"]
    assert (effects["ineligible_members"], effects["earning_open"]) == (2, False)
    text = cli("program", "plan", str(tmp_path / "season.yaml"), "--as-of", "2026-08-01T00:00:00Z").stdout
    assert "only members tagged card_member earn: 2 of 3 members cannot earn" in text
    assert "earning runs from 2026-02-01T00:00:00Z until 2026-07-01T00:00:00Z: refused now" in text
