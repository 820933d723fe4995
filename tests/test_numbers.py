"""Every number right: ledger rules an operator would otherwise see wrong figures from
(back-dated purchases and tiers, refunds after expiry, cancelling redemptions by import,
dates in the future, ...), each through the CLI."""

from __future__ import annotations

import json

import pytest

from conftest import PROGRAMS

SHOP = """code: shop
name: Shop
currency: GBP
point_value: "0.01"
earn:
  - rule: spend
    points_per_unit: 1
expiry:
  after_days: {days}
tiers:
  basis: spend
  window_days: 365
  levels:
    - {{name: Bronze, threshold: 0, multiplier: 1}}
    - {{name: Silver, threshold: 10000, multiplier: 2, perks: ["free delivery"]}}
    - {{name: Gold, threshold: 50000, multiplier: 3, perks: ["free delivery", "lounge"]}}
rewards:
  - {{code: mug, name: Mug, points: 50}}
"""


@pytest.fixture
def shop(cli, tmp_path):
    path = tmp_path / "shop.yaml"
    path.write_text(SHOP.format(days=10))
    cli("program", "apply", str(path))
    cli("member", "enroll", "M1", "--program", "shop", "--at", "2026-10-01T00:00:00Z")
    return cli


def show(cli, member, at=None, *extra):
    return cli.json("member", "show", member, *(("--as-of", at) if at else ()), *extra)


# --- 1. back-dated purchases and tiers -------------------------------------------------------


def test_a_back_dated_purchase_lifts_the_tier_from_when_spend_crossed_the_threshold(shop):
    shop("earn", "M1", "--amount", "3000", "--txn", "P2", "--at", "2026-10-03T00:00:00Z")
    shop("earn", "M1", "--amount", "8000", "--txn", "P1", "--at", "2026-10-02T00:00:00Z")  # back-dated
    assert show(shop, "M1", "2026-10-02T12:00:00Z")["tier"] == "Bronze"  # 8000: not yet
    s = show(shop, "M1", "2026-10-03T12:00:00Z")
    assert (s["tier"], s["next_tier"], s["to_next_tier"]) == ("Silver", "Gold", "39000.00 GBP to Gold")
    # entries already recorded keep their points: both at Bronze's rate
    assert [e["points"] for e in shop.json("history", "M1", "--as-of", "2026-10-04") if e["kind"] == "earn"] == [8000, 3000]
    tiers = {r["tier"]: r for r in shop.json("report", "tiers", "--as-of", "2026-10-04")}
    assert tiers["Silver"]["members"] == 1 and tiers["Bronze"]["members"] == 0
    why = shop.json("explain", "P1")
    assert why["tier_changes"] == [{"at": "2026-10-03T00:00:00Z", "from": "Bronze", "to": "Silver",
                                     "reason": "qualifying spend 11000.00 GBP reached Silver's 10000.00"}]
    assert any("Silver" in line and "2026-10-03" in line for line in why["explanation"])


def test_an_out_of_order_import_gives_the_same_tiers(shop, tmp_path):
    data = tmp_path / "late.csv"
    data.write_text("txn_id,member_id,kind,occurred_at,amount\n"
                    "P2,M1,purchase,2026-10-03T00:00:00Z,3000\n"
                    "P1,M1,purchase,2026-10-02T00:00:00Z,8000\n")
    assert shop.json("import", "transactions", str(data))["applied"] == 2
    assert show(shop, "M1", "2026-10-03T12:00:00Z")["tier"] == "Silver"
    near = {r["tier"]: r["near_next"] for r in shop.json("report", "tiers", "--as-of", "2026-10-03T12:00:00Z")}
    assert near == {"Bronze": 0, "Silver": 0, "Gold": None}


def test_a_purchase_crossing_the_threshold_earns_at_the_old_tier_the_next_at_the_new(shop):
    shop("earn", "M1", "--amount", "10000", "--at", "2026-10-02T00:00:00Z")
    shop("earn", "M1", "--amount", "100", "--txn", "NEXT", "--at", "2026-10-02T01:00:00Z")
    assert shop.json("explain", "NEXT")["points"] == 200  # Silver doubles


# --- 2. refund after the points expired --------------------------------------------------------


def test_a_refund_after_expiry_does_not_charge_expired_points_again(shop):
    shop("earn", "M1", "--amount", "100", "--txn", "P1", "--at", "2026-10-02T00:00:00Z")  # expires 10-12
    refund = shop.json("refund", "P1", "--at", "2026-10-20T00:00:00Z")
    assert refund["points"] == 0 and refund["balance"] == 0
    assert show(shop, "M1", "2026-10-21")["balance"] == 0
    assert shop.json("verify")["ok"]


def test_a_refund_claws_back_what_redemptions_took_but_not_what_expired(shop):
    shop("earn", "M1", "--amount", "100", "--txn", "P1", "--at", "2026-10-02T00:00:00Z")  # 100, expires 10-12
    shop("redeem", "M1", "--points", "60", "--at", "2026-10-05T00:00:00Z")  # 40 left, they expire 10-12
    refund = shop.json("refund", "P1", "--at", "2026-10-20T00:00:00Z")
    assert refund["points"] == -60  # the 60 redeemed, not the 40 that expired
    assert show(shop, "M1", "2026-10-21")["balance"] == -60  # owed
    assert "already fully refunded" in shop.fail("refund", "P1", "--at", "2026-10-21T00:00:00Z")


def test_a_partial_refund_before_expiry_is_unchanged(shop):
    shop("earn", "M1", "--amount", "100", "--txn", "P1", "--at", "2026-10-02T00:00:00Z")
    assert shop.json("refund", "P1", "--amount", "40", "--at", "2026-10-03T00:00:00Z")["points"] == -40
    assert show(shop, "M1", "2026-10-04")["balance"] == 60


# --- 3. an import can cancel a redemption --------------------------------------------------------


def test_an_import_cancels_a_redemption_as_the_command_does(shop, tmp_path):
    shop("earn", "M1", "--amount", "100", "--at", "2026-10-02T00:00:00Z")
    shop("redeem", "M1", "--reward", "mug", "--txn", "R1", "--at", "2026-10-03T00:00:00Z")
    shop("redeem", "M1", "--reward", "mug", "--txn", "R2", "--at", "2026-10-03T01:00:00Z")
    data = tmp_path / "cancel.csv"
    data.write_text("txn_id,member_id,kind,occurred_at,ref_txn_id,amount\n"
                    "C1,M1,refund,2026-10-04T00:00:00Z,R1,\n"
                    "C2,M1,refund,2026-10-04T00:00:00Z,R2,5.00\n")
    out = shop("import", "transactions", str(data), "--format", "json", ok=False)
    summary = json.loads(out.stdout)
    assert (summary["applied"], summary["rejected"]) == (1, 1)
    assert summary["rejects"][0]["error"] == "amount: applies to purchases; a redemption is cancelled whole"
    assert show(shop, "M1", "2026-10-05")["balance"] == 50
    assert "--amount: applies to purchases" in shop.fail("refund", "R2", "--amount", "5", "--at", "2026-10-04")


# --- 9. dates in the future ------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["member", "enroll", "M9", "--program", "shop", "--at", "2999-01-01"],
    ["earn", "M1", "--amount", "5", "--at", "2999-01-01"],
    ["adjust", "M1", "--points", "5", "--reason", "x", "--at", "2999-01-01"],
    ["expire", "--as-of", "2999-01-01"],
    ["tiers", "review", "--as-of", "2999-01-01"],
    ["nps", "record", "M1", "--score", "9", "--at", "2999-01-01"],
])
def test_moments_in_the_future_are_refused(shop, args):
    before = shop.dump()
    err = shop.fail(*args)
    assert "2999-01-01T00:00:00Z is in the future" in err and ("--at" in err or "--as-of" in err)
    assert shop.dump() == before


def test_a_few_minutes_of_clock_skew_are_accepted_and_imports_refuse_the_future(shop, tmp_path):
    from conftest import NOW
    from loyaltyctl.core.values import shift

    shop("earn", "M1", "--amount", "5", "--at", shift(NOW, seconds=240))
    data = tmp_path / "future.csv"
    data.write_text(f"txn_id,member_id,kind,occurred_at,amount\nF1,M1,purchase,{shift(NOW, days=1)},5\n")
    out = json.loads(shop("import", "transactions", str(data), "--format", "json", ok=False).stdout)
    assert "occurred_at: " in out["rejects"][0]["error"] and "is in the future" in out["rejects"][0]["error"]


# --- 4. tier reviews go forward in time ----------------------------------------------------------


def test_a_review_before_one_already_recorded_is_refused(shop):
    shop("earn", "M1", "--amount", "20000", "--at", "2026-10-02T00:00:00Z")  # Silver
    assert shop.json("tiers", "review", "--as-of", "2027-11-01T00:00:00Z")["down"] == 1  # window passed
    before = shop.dump()
    err = shop.fail("tiers", "review", "--as-of", "2027-06-01T00:00:00Z")
    assert "--as-of: 2027-06-01T00:00:00Z is before the latest tier review of 'shop'" in err
    assert "2027-11-01T00:00:00Z" in err and shop.dump() == before
    assert shop.json("tiers", "review", "--as-of", "2027-06-01T00:00:00Z", "--dry-run")["dry_run"]  # looking is fine
    assert shop.json("tiers", "review", "--as-of", "2027-11-01T00:00:00Z")["members"] == 0  # the same moment again


# --- 6. a manual tier is a floor ----------------------------------------------------------------------


def test_a_floor_below_the_earned_tier_changes_nothing_and_one_above_lifts(shop):
    shop("earn", "M1", "--amount", "20000", "--at", "2026-10-02T00:00:00Z")  # Silver by spend
    out = shop("tiers", "set", "M1", "--tier", "Bronze", "--reason", "oops", "--at", "2026-10-03T00:00:00Z").stdout
    assert "nothing changed" in out and "Silver" in out
    assert show(shop, "M1", "2026-10-04")["tier"] == "Silver"
    assert shop.json("tiers", "review", "--as-of", "2026-10-05T00:00:00Z")["members"] == 0
    shop("tiers", "set", "M1", "--tier", "Gold", "--reason", "vip", "--until", "2027-01-01",
         "--at", "2026-10-06T00:00:00Z")
    assert show(shop, "M1", "2026-10-07")["tier"] == "Gold"
    assert shop.json("tiers", "review", "--as-of", "2026-12-01T00:00:00Z")["members"] == 0  # held by the floor
    assert shop.json("tiers", "review", "--as-of", "2027-01-02T00:00:00Z")["moves"][0]["to"] == "Silver"


# --- 8. member data across programs ---------------------------------------------------------------------


def test_a_second_enrollment_never_overwrites_or_unerases_member_data(coffee, tmp_path):
    coffee("member", "enroll", "A1", "--program", "coffee", "--name", "Ann", "--email", "ann@example.com")
    before = coffee.dump()
    err = coffee.fail("member", "enroll", "A1", "--program", "books", "--name", "Anne")
    assert "name is 'Ann'" in err and "loyaltyctl member update A1 --name" in err
    assert coffee.dump() == before
    coffee("member", "enroll", "A1", "--program", "books", "--name", "Ann", "--account", "Acme")  # same name: fine
    assert show(coffee, "A1", None, "--program", "books")["email"] == "ann@example.com"
    coffee("member", "erase", "A1")
    err = coffee.fail("member", "enroll", "A1", "--program", "engage", "--email", "ann@example.com")
    assert "email was erased" in err
    data = tmp_path / "members.csv"
    data.write_text("member_id,program,name,email\nA1,engage,Ann,ann@example.com\nB1,engage,Bob,\nB1,club,Rob,\n")
    out = json.loads(coffee("import", "members", str(data), "--format", "json", ok=False).stdout)
    assert (out["applied"], out["rejected"]) == (1, 2)
    assert [r["line"] for r in out["rejects"]] == [2, 4]
    assert show(coffee, "A1", None, "--program", "books")["name"] == "[erased]"
    coffee("member", "update", "A1", "--name", "Ann", "--email", "")
    s = show(coffee, "A1", None, "--program", "books")
    assert (s["name"], s["email"]) == ("Ann", None)


# --- 10. removing a tier, changing currency ------------------------------------------------------------


def test_plan_counts_members_of_a_removed_tier_and_a_currency_change_is_refused(coffee, tmp_path):
    coffee("member", "enroll", "G1", "--program", "coffee", "--at", "2026-01-01")
    coffee("earn", "G1", "--amount", "1600", "--at", "2026-01-02T00:00:00Z")  # Gold
    coffee("member", "enroll", "S1", "--program", "coffee", "--at", "2026-01-01")
    coffee("earn", "S1", "--amount", "600", "--at", "2026-01-02T00:00:00Z")  # Silver
    text = (PROGRAMS / "coffee.yaml").read_text()
    no_gold = tmp_path / "coffee.yaml"
    no_gold.write_text(text.replace('    - {name: Gold, threshold: 1500, multiplier: 1.5, perks: ["20% off", "free shipping"]}\n', ""))
    (plan,) = coffee.json("program", "plan", str(no_gold), "--as-of", "2026-02-01T00:00:00Z")
    assert plan["effects"]["tier_moves_at_next_review"] == {"up": 0, "down": 1, "unchanged": 1}
    coffee("program", "apply", str(no_gold))
    assert [m["member_id"] for m in coffee.json("member", "list", "--program", "coffee", "--tier", "Gold")] == ["G1"]
    r = coffee.json("tiers", "review", "--as-of", "2026-02-01T00:00:00Z")
    assert [(m["member_id"], m["from"], m["to"], m["direction"]) for m in r["moves"]] == [("G1", "Gold", "Silver", "down")]
    euro = tmp_path / "euro.yaml"
    euro.write_text(text.replace("currency: GBP", "currency: EUR"))
    before = coffee.dump()
    for verb in ("plan", "apply"):
        err = coffee.fail("program", verb, str(euro))
        assert "currency: cannot change GBP to EUR" in err and "new code" in err
    assert coffee.dump() == before


# --- 13. what member show's totals mean --------------------------------------------------------------------


def test_lifetime_earned_is_what_rules_earned_with_opening_and_adjustments_apart(coffee, tmp_path):
    coffee("member", "enroll", "M1", "--program", "coffee", "--at", "2026-01-01")
    coffee("earn", "M1", "--amount", "100", "--at", "2026-01-02T00:00:00Z")
    coffee("adjust", "M1", "--points=25", "--reason", "goodwill", "--at", "2026-01-03T00:00:00Z")
    data = tmp_path / "open.csv"
    data.write_text("txn_id,member_id,kind,occurred_at,points\nO1,M1,opening,2026-01-01T12:00:00Z,40\n")
    coffee("import", "transactions", str(data))
    s = show(coffee, "M1", "2026-01-04")
    assert (s["lifetime_earned"], s["opening"], s["adjusted"], s["balance"]) == (100, 40, 25, 165)


# --- 7. partner purchases are the partner's revenue ------------------------------------------------------


def test_roi_and_ticket_count_own_sales_and_show_partner_sales_apart(coffee):
    coffee("member", "enroll", "T1", "--program", "travel", "--at", "2026-01-01")
    coffee("earn", "T1", "--amount", "100", "--at", "2026-01-02T00:00:00Z")
    coffee("earn", "T1", "--amount", "50", "--at", "2026-01-03T00:00:00Z")
    coffee("earn", "T1", "--amount", "400", "--partner", "hotel", "--at", "2026-01-04T00:00:00Z")
    (roi,) = coffee.json("report", "roi", "--program", "travel", "--since", "2026-01-01", "--until", "2026-02-01")
    assert (roi["purchases"], roi["revenue"], roi["repeat_revenue"]) == (2, "150.00", "50.00")
    assert (roi["partner_purchases"], roi["partner_revenue"]) == (1, "400.00")
    ticket = {r["segment"]: r for r in coffee.json("report", "ticket", "--program", "travel", "--until", "2026-02-01")}
    assert (ticket["members"]["purchases"], ticket["members"]["avg_ticket"]) == (2, "75.00")
    assert (ticket["partners"]["purchases"], ticket["partners"]["avg_ticket"]) == (1, "400.00")


# --- 11. currency precision ------------------------------------------------------------------------------


def test_amounts_finer_than_the_currency_are_refused_and_money_is_shown_at_its_unit(coffee, tmp_path):
    coffee("member", "enroll", "M1", "--program", "coffee", "--at", "2026-01-01")
    before = coffee.dump()
    assert "--amount: 1.234 has more decimal places than GBP has (2)" in coffee.fail(
        "earn", "M1", "--amount", "1.234", "--at", "2026-01-02")
    assert coffee.dump() == before
    coffee("earn", "M1", "--amount", "1.230", "--txn", "P1", "--at", "2026-01-02")  # 1.23: fine
    assert "more decimal places" in coffee.fail("refund", "P1", "--amount", "0.005", "--at", "2026-01-03")
    data = tmp_path / "fine.csv"
    data.write_text("txn_id,member_id,kind,occurred_at,amount\nX1,M1,purchase,2026-01-04T00:00:00Z,2.001\n")
    out = json.loads(coffee("import", "transactions", str(data), "--format", "json", ok=False).stdout)
    assert out["rejects"][0]["error"] == "amount: 2.001 has more decimal places than GBP has (2)"
    # travel: EUR, a point is worth 0.005: 2,869 points are 14.345 EUR, shown as 14.35
    coffee("member", "enroll", "T1", "--program", "travel", "--at", "2026-01-01")
    coffee("adjust", "T1", "--points", "2869", "--reason", "migration", "--at", "2026-01-02")
    s = show(coffee, "T1", "2026-01-03")
    assert (s["balance"], s["value"], s["currency"]) == (2869, "14.35", "EUR")
    (row,) = coffee.json("report", "liability", "--program", "travel", "--as-of", "2026-01-03")
    assert row["value"] == "14.35"
    csv = coffee("report", "liability", "--program", "travel", "--as-of", "2026-01-03", "--format", "csv").stdout
    assert ",14.35," in csv


def test_member_show_totals_add_up_to_the_balance(coffee):
    coffee("member", "enroll", "M1", "--program", "coffee", "--at", "2026-01-01")
    coffee("earn", "M1", "--amount", "300", "--txn", "P1", "--at", "2026-01-02T00:00:00Z")
    coffee("redeem", "M1", "--points", "150", "--at", "2026-01-03T00:00:00Z")
    coffee("refund", "P1", "--amount", "100", "--at", "2026-01-04T00:00:00Z")
    coffee("adjust", "M1", "--points=-20", "--reason", "fix", "--at", "2026-01-05T00:00:00Z")
    s = show(coffee, "M1", "2027-06-01")
    total = s["lifetime_earned"] + s["opening"] + s["adjusted"] - s["redeemed"] - s["clawed_back"] - s["expired"]
    assert total == s["balance"] and s["expired"] > 0


# --- 5. inactivity added to a running program --------------------------------------------------------------


IDLE = """code: idle
name: Idle
currency: GBP
point_value: "0.01"
earn:
  - rule: spend
    points_per_unit: 1
expiry:
  after_days: 3650{rule}
"""


def test_inactivity_added_later_counts_from_when_it_took_effect_and_hits_old_balances(cli, tmp_path, monkeypatch):
    path = tmp_path / "idle.yaml"
    path.write_text(IDLE.format(rule=""))
    monkeypatch.setenv("LOYALTYCTL_NOW", "2026-01-01T00:00:00Z")
    cli("program", "apply", str(path))
    for m in ("OLD", "ACTIVE"):
        cli("member", "enroll", m, "--program", "idle", "--at", "2025-01-01")
        cli("earn", m, "--amount", "100", "--at", "2025-01-02T00:00:00Z")
    monkeypatch.setenv("LOYALTYCTL_NOW", "2026-06-01T00:00:00Z")
    path.write_text(IDLE.format(rule="\n  inactivity_days: 90"))
    (plan,) = cli.json("program", "plan", str(path))
    assert (plan["effects"]["inactivity_members"], plan["effects"]["inactivity_points"]) == (2, 200)
    assert plan["effects"]["inactivity_expires_at"] == "2026-08-30T00:00:00Z"
    cli("program", "apply", str(path))
    monkeypatch.setenv("LOYALTYCTL_NOW", "2026-12-01T00:00:00Z")
    cli("earn", "ACTIVE", "--amount", "1", "--at", "2026-07-01T00:00:00Z")  # active within the 90 days
    assert show(cli, "OLD", "2026-05-31")["balance"] == 100  # history before the rule: unchanged
    assert show(cli, "OLD", "2026-08-29T23:59:59Z")["balance"] == 100
    old = show(cli, "OLD", "2026-08-30T00:00:00Z")
    assert (old["balance"], old["expired"]) == (0, 100)  # the whole balance, 90 days after the rule
    active = show(cli, "ACTIVE", "2026-08-30T00:00:00Z")
    assert (active["balance"], active["next_expiry"]) == (101, "2026-09-29T00:00:00Z")  # 90 days after 07-01
    assert cli.json("expire")["points"] == 201  # both balances, once their 90 days passed
    assert cli.json("verify")["ok"]
