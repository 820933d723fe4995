"""Every number explainable: explain, as-of snapshots, program plan."""

from __future__ import annotations

from conftest import PROGRAMS, ago


def enroll(cli, member, program, *extra, at="2026-01-01T09:00:00Z"):
    cli("member", "enroll", member, "--program", program, "--at", at, *extra)


def test_explain_spend_with_tier_multiplier(coffee):
    enroll(coffee, "M1", "coffee")
    coffee("earn", "M1", "--amount", "600", "--txn", "P0", "--at", "2026-01-02")  # upgrades to Silver
    ex = coffee.json("explain", "P0")
    assert ex["tier_change"] == {"from": "Bronze", "to": "Silver", "reason": ex["tier_change"]["reason"]}
    coffee("earn", "M1", "--amount", "23.45", "--txn", "P1", "--at", "2026-01-03")
    ex = coffee.json("explain", "P1")
    assert ex["arithmetic"] == "23.45 x 1 x 1.25 = 29.3125 -> 29"
    assert ex["tier"] == "Silver" and ex["multiplier"] == "1.25" and ex["points"] == 29
    assert ex["program_version"] == 1 and ex["rule"] == "earn[0] spend"
    assert ex["lot"]["points"] == 29 and ex["lot"]["expires_at"] == "2027-01-03T00:00:00Z"
    text = coffee("explain", "P1").stdout
    assert "23.45 x 1 x 1.25 = 29.3125 -> 29" in text and "tier Silver (multiplier 1.25)" in text


def test_explain_tag_condition(coffee):
    enroll(coffee, "C1", "cashback", "--tag", "card_member")
    coffee("earn", "C1", "--amount", "19.99", "--txn", "CB1", "--at", "2026-01-02")
    ex = coffee.json("explain", "CB1")
    assert ex["rule"] == "earn[0] spend" and ex["rule_definition"]["when"] == {"tag": "card_member"}
    assert ex["arithmetic"] == "19.99 x 5 x 1 = 99.95 -> 99"


def test_explain_event_referral_partner(coffee):
    enroll(coffee, "E1", "engage")
    coffee("earn", "E1", "--event", "app_download", "--txn", "EV1", "--at", "2026-01-02")
    ex = coffee.json("explain", "EV1")
    assert ex["rule"] == "earn[2] event" and ex["points"] == 100
    assert "app_download earns 100 points" in ex["explanation"][0]
    enroll(coffee, "E2", "engage", "--referred-by", "E1", at="2026-01-05T00:00:00Z")
    ex = coffee.json("explain", "referral-engage-E2-referrer")
    assert ex["member_id"] == "E1" and ex["points"] == 200 and ex["rule"] == "earn[5] referral"
    enroll(coffee, "T1", "travel")
    coffee("earn", "T1", "--amount", "80.10", "--partner", "car_rental", "--txn", "H1", "--at", "2026-01-02")
    ex = coffee.json("explain", "H1")
    assert ex["arithmetic"] == "80.10 x 1.5 x 1 = 120.15 -> 120"
    assert "partner car_rental rule earn[2]" in ex["explanation"][0]


def test_explain_refund_after_partial_redemption(coffee):
    enroll(coffee, "M1", "coffee")
    coffee("earn", "M1", "--amount", "100", "--txn", "P1", "--at", "2026-01-02")
    coffee("redeem", "M1", "--points", "80", "--txn", "R1", "--at", "2026-01-03")
    coffee("refund", "P1", "--amount", "30.50", "--txn", "F1", "--at", "2026-01-04")
    ex = coffee.json("explain", "F1")
    assert ex["points"] == -31
    assert ex["arithmetic"] == ("purchase P1 100.00 earned 100; after refunds of 30.50 the remaining 69.50 x 1 x 1 = "
                                "69.5 -> 69; 100 kept before this refund, so 31 clawed back")
    # 20 points were left in the purchase's own lot; the other 11 became a debt
    assert any("11 points were not covered" in line for line in ex["explanation"])
    purchase = coffee.json("explain", "P1")
    assert [(r["txn_id"], r["points"]) for r in purchase["later"]] == [("R1", -80), ("F1", -20)]
    redemption = coffee.json("explain", "R1")
    assert redemption["lots_moved"][0]["points"] == -80 and redemption["lots_moved"][0]["lot_txn_id"] == "P1"


def test_explain_expiry_and_adjustment(coffee):
    enroll(coffee, "M1", "coffee")
    coffee("earn", "M1", "--amount", "40", "--txn", "P1", "--at", "2026-01-02")
    coffee("adjust", "M1", "--points", "15", "--reason", "late delivery", "--txn", "A1", "--at", "2026-01-03")
    coffee("redeem", "M1", "--points", "10", "--txn", "R1", "--at", "2026-01-04")
    coffee("expire", "--as-of", "2027-01-02T00:00:00Z")
    lot = coffee.json("explain", "P1")["lot"]["lot"]
    ex = coffee.json("explain", f"expire-{lot}")
    assert ex["kind"] == "expire" and ex["points"] == -30 and ex["effective_at"] == "2027-01-02T00:00:00Z"
    assert [r["txn_id"] for r in coffee.json("explain", "P1")["later"]] == ["R1", f"expire-{lot}"]
    adj = coffee.json("explain", "A1")
    assert adj["explanation"][0] == "manual adjustment: late delivery" and adj["points"] == 15
    assert "unknown transaction" in coffee.fail("explain", "NOPE")


def test_a_pending_expiry_in_history_is_explained_by_its_id(coffee, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    enroll(coffee, "M1", "coffee")
    coffee("earn", "M1", "--amount", "40", "--txn", "P1", "--at", "2026-01-02")
    coffee("redeem", "M1", "--points", "10", "--txn", "R1", "--at", "2026-01-04")
    [pending] = [r for r in coffee.json("history", "M1") if r["kind"] == "expire"]  # the job has not run
    assert pending["recorded_at"] is None and pending["points"] == -30
    ex = coffee.json("explain", pending["txn_id"])
    assert (ex["status"], ex["kind"], ex["member_id"], ex["points"], ex["effective_at"]) == (
        "pending", "expire", "M1", -30, "2027-01-02T00:00:00Z")
    assert ex["lot"]["txn_id"] == "P1" and ex["explanation"][0].startswith("expiry not recorded yet")
    text = coffee("explain", pending["txn_id"]).stdout
    assert "expiry not recorded yet" in text and "loyaltyctl expire" in text
    coffee("expire")
    recorded = coffee.json("explain", pending["txn_id"])  # the same id, now the job's entry
    assert (recorded["kind"], recorded["points"], recorded["effective_at"]) == ("expire", -30, ex["effective_at"])
    assert "status" not in recorded and recorded["recorded_at"]
    for unknown in ("expire-999", "expire-x", "expire-" + "9" * 30):
        assert "unknown transaction" in coffee.fail("explain", unknown)


def test_history_why_column(coffee):
    enroll(coffee, "M1", "coffee")
    coffee("earn", "M1", "--amount", "10", "--txn", "P1", "--at", "2026-01-02")
    coffee("redeem", "M1", "--points", "4", "--txn", "R1", "--at", "2026-01-03")
    rows = {r["txn_id"]: r for r in coffee.json("history", "M1")}
    assert rows["P1"]["why"] == "spend: 10.00 x 1 x 1 (Bronze) = 10 -> 10"
    assert rows["R1"]["why"].startswith("points redeemed; lot ")


def test_as_of_snapshots_match_state_taken_along_the_way(coffee):
    """Build a ledger step by step, snapshot after each step, then ask --as-of each moment."""
    enroll(coffee, "M1", "coffee")
    enroll(coffee, "M2", "coffee")
    steps = [
        ("2026-01-05T10:00:00Z", ["earn", "M1", "--amount", "300"]),
        ("2026-02-05T10:00:00Z", ["earn", "M1", "--amount", "250"]),  # -> Silver
        ("2026-03-05T10:00:00Z", ["redeem", "M1", "--points", "150"]),
        ("2026-04-05T10:00:00Z", ["earn", "M2", "--amount", "20"]),
        ("2026-05-05T10:00:00Z", ["adjust", "M2", "--points=-5", "--reason", "fix"]),
        ("2027-01-05T10:00:00Z", ["earn", "M2", "--amount", "1"]),  # M1's first lot expired
    ]
    snapshots = []
    for at, args in steps:
        coffee(*args, "--at", at)
        snapshots.append((at, coffee.json("member", "show", "M1", "--as-of", at),
                          coffee.json("member", "list", "--as-of", at),
                          coffee.json("export", "balances", "--as-of", at),
                          coffee.json("history", "M1", "--as-of", at)))
    coffee("expire", "--as-of", "2027-06-01T00:00:00Z")
    coffee("tiers", "review", "--as-of", "2027-06-01T00:00:00Z")
    for at, show, listing, balances, history in snapshots:
        assert coffee.json("member", "show", "M1", "--as-of", at) == show
        assert coffee.json("member", "list", "--as-of", at) == listing
        assert coffee.json("export", "balances", "--as-of", at) == balances
        assert _without_recorded(coffee.json("history", "M1", "--as-of", at)) == _without_recorded(history)
    first = dict((s[0], s[1]) for s in snapshots)
    assert first["2026-03-05T10:00:00Z"]["balance"] == 300 + 250 - 150
    assert first["2026-03-05T10:00:00Z"]["tier"] == "Silver"
    assert first["2027-01-05T10:00:00Z"]["balance"] == 250 + 300 - 150 - 150  # 150 left of lot 1 expired
    assert first["2027-01-05T10:00:00Z"]["expired"] == 150


def _without_recorded(rows):
    return [{k: v for k, v in r.items() if k != "recorded_at"} for r in rows]


def _fixed_ledger(cli):
    """Four coffee members with known 365-day spend: 100, 450, 520, 1600."""
    for member, amount in (("A", "100"), ("B", "450"), ("C", "520"), ("D", "1600")):
        enroll(cli, member, "coffee")
        cli("earn", member, "--amount", amount, "--at", "2026-02-01T00:00:00Z")
    cli("tiers", "review", "--as-of", "2026-03-01T00:00:00Z")


def test_plan_rate_change(coffee, tmp_path):
    _fixed_ledger(coffee)
    changed = tmp_path / "coffee.yaml"
    changed.write_text((PROGRAMS / "coffee.yaml").read_text()
                       .replace("points_per_unit: 1", "points_per_unit: 2")
                       .replace('point_value: "0.01"', 'point_value: "0.005"'))
    before = coffee.dump()
    plans = coffee.json("program", "plan", str(changed), "--as-of", "2026-03-01T00:00:00Z")
    assert coffee.dump() == before
    (p,) = plans
    assert p["status"] == "changed" and p["version"] == 2
    assert {(c["field"], c["before"], c["after"]) for c in p["changes"]} == {
        ("earn[0].points_per_unit", "1", "2"), ("point_value", "0.01", "0.005")}
    effects = p["effects"]
    assert effects["outstanding_points"] == 100 + 450 + 520 + 1600
    assert effects["liability_before"] == "26.70" and effects["liability_after"] == "13.35"
    assert effects["tier_moves_at_next_review"] == {"up": 0, "down": 0, "unchanged": 4}


def test_plan_threshold_change_counts_tier_moves(coffee, tmp_path):
    _fixed_ledger(coffee)  # tiers now: A Bronze, B Bronze, C Silver, D Gold
    changed = tmp_path / "coffee.yaml"
    changed.write_text((PROGRAMS / "coffee.yaml").read_text()
                       .replace("threshold: 500,", "threshold: 400,")
                       .replace("threshold: 1500,", "threshold: 2000,"))
    (p,) = coffee.json("program", "plan", str(changed), "--as-of", "2026-03-01T00:00:00Z")
    # B (450) reaches Silver at 400; D (1600) falls below Gold at 2000; A and C stay.
    assert p["effects"]["tier_moves_at_next_review"] == {"up": 1, "down": 1, "unchanged": 2}
    assert p["effects"]["tier_moves_without_change"] == {"up": 0, "down": 0, "unchanged": 4}
    text = coffee("program", "plan", str(changed), "--as-of", "2026-03-01T00:00:00Z").stdout
    assert "tiers.levels[1].threshold" in text and "1 up, 1 down" in text
    applied = coffee("program", "apply", str(changed), "--yes").stdout
    assert "tiers.levels[2].threshold" in applied and "updated" in applied
    assert coffee.json("program", "plan", str(changed))[0]["status"] == "unchanged"


def test_import_dry_run_shows_balances_and_tier_moves_and_writes_nothing(coffee, tmp_path):
    # The effects are balances and tiers now, so the data is recent (its points not yet expired).
    enroll(coffee, "M1", "coffee", at=ago(30))
    enroll(coffee, "M2", "coffee", at=ago(30))
    coffee("earn", "M2", "--amount", "100", "--at", ago(20))
    data = tmp_path / "day.csv"
    data.write_text("txn_id,member_id,kind,occurred_at,amount,points\n"
                    f"D1,M1,purchase,{ago(10)},520,\n"
                    f"D2,M2,redeem,{ago(9)},,40\n"
                    f"D3,M2,redeem,{ago(8)},,999\n")
    before = coffee.dump()
    result = coffee("import", "transactions", str(data), "--dry-run", "--format", "json", ok=False)
    assert result.exit_code == 1  # one row would be rejected
    out = __import__("json").loads(result.stdout)
    assert coffee.dump() == before
    assert (out["applied"], out["rejected"], out["dry_run"]) == (2, 1, True)
    assert out["rejects"][0]["line"] == 4 and "insufficient points" in out["rejects"][0]["error"]
    effects = {e["member_id"]: e for e in out["effects"]}
    assert effects["M1"] | {} == {"member_id": "M1", "program": "coffee", "balance_before": 0, "balance_after": 520,
                                  "change": 520, "tier_before": "Bronze", "tier_after": "Silver"}
    assert (effects["M2"]["balance_before"], effects["M2"]["balance_after"], effects["M2"]["tier_after"]) == (100, 60, "Bronze")
    text = coffee("import", "transactions", str(data), "--dry-run", ok=False).stdout
    assert "would apply 2" in text and "Bronze" in text and "Silver" in text
    assert coffee.dump() == before
