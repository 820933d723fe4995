"""Black-box tests of the core commands through the CLI."""

from __future__ import annotations

import pytest

from conftest import PROGRAMS


def enroll(cli, member="M1", program="coffee", *extra):
    cli("member", "enroll", member, "--program", program, "--at", "2026-01-01T09:00:00Z", *extra)


# --- database ------------------------------------------------------------------


def test_init_is_idempotent_and_private(cli):
    assert "already exists" in cli("init").stdout
    assert (cli.db.stat().st_mode & 0o777) == 0o600


def test_missing_database_is_refused(tmp_path):
    from conftest import Cli

    c = Cli(tmp_path / "nope.db")
    err = c.fail("member", "list")
    assert "nope.db" in err and "loyaltyctl init" in err
    assert not (tmp_path / "nope.db").exists()


def test_db_from_environment(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from loyaltyctl.cli import app

    monkeypatch.setenv("LOYALTYCTL_DB", str(tmp_path / "env.db"))
    assert CliRunner().invoke(app, ["init"]).exit_code == 0
    assert (tmp_path / "env.db").exists()


# --- programs -------------------------------------------------------------------


def test_apply_unchanged_is_noop_and_change_is_new_version(cli, tmp_path):
    rows = cli.json("program", "apply", str(PROGRAMS / "coffee.yaml"))
    assert rows[0]["status"] == "created" and rows[0]["version"] == 1
    again = cli.json("program", "apply", str(PROGRAMS / "coffee.yaml"))
    assert again[0]["status"] == "unchanged"
    changed = tmp_path / "coffee.yaml"
    changed.write_text((PROGRAMS / "coffee.yaml").read_text().replace("name: ", "name: New ", 1))
    third = cli.json("program", "apply", str(changed))
    assert third[0]["status"] == "updated" and third[0]["version"] == 2
    listed = cli.json("program", "list")
    assert [p["version"] for p in listed if p["code"] == "coffee"] == [2]
    assert cli.json("program", "show", "coffee")["code"] == "coffee"


def test_invalid_program_leaves_database_unchanged(cli, tmp_path):
    cli("program", "apply", str(PROGRAMS / "coffee.yaml"))
    before = cli.dump()
    bad = tmp_path / "bad.yaml"
    bad.write_text((PROGRAMS / "coffee.yaml").read_text().replace("threshold: 1500", "threshold: 100"))
    err = cli.fail("program", "apply", str(PROGRAMS / "books.yaml"), str(bad))
    assert "bad.yaml:" in err and "threshold" in err
    assert cli.dump() == before


def test_validate_needs_no_database(tmp_path):
    from conftest import Cli

    c = Cli(tmp_path / "none.db")
    out = c("program", "validate", str(PROGRAMS)).stdout
    assert "coffee" in out and not (tmp_path / "none.db").exists()


# --- earning -------------------------------------------------------------------


def test_spend_rounds_down_and_upgrades_at_once(coffee):
    enroll(coffee)
    r = coffee.json("earn", "M1", "--amount", "499.99", "--txn", "T1", "--at", "2026-01-02")
    assert r["points"] == 499 and r["tier"] == "Bronze"
    r = coffee.json("earn", "M1", "--amount", "23.45", "--txn", "T2", "--at", "2026-01-03")
    # multiplier is the tier before the purchase (Bronze x1); the purchase upgrades to Silver
    assert r["points"] == 23 and r["upgraded_to"] == "Silver"
    r = coffee.json("earn", "M1", "--amount", "23.45", "--txn", "T3", "--at", "2026-01-04")
    assert r["points"] == 29  # 23.45 x 1 x 1.25 = 29.3125 -> 29
    show = coffee.json("member", "show", "M1", "--as-of", "2026-01-05")
    assert show["balance"] == 499 + 23 + 29
    assert show["tier"] == "Silver"
    assert show["to_next_tier"] == "953.11 GBP to Gold"


def test_cashback_tag_condition_first_match(coffee):
    enroll(coffee, "CARD", "cashback", "--tag", "card_member")
    enroll(coffee, "PLAIN", "cashback")
    assert coffee.json("earn", "CARD", "--amount", "10.00", "--at", "2026-01-02")["points"] == 50
    assert coffee.json("earn", "PLAIN", "--amount", "10.00", "--at", "2026-01-02")["points"] == 20


def test_event_once_and_limit(coffee):
    enroll(coffee, "E1", "engage")
    assert coffee.json("earn", "E1", "--event", "email_signup", "--at", "2026-01-02")["points"] == 50
    before = coffee.dump()
    assert "once" in coffee.fail("earn", "E1", "--event", "email_signup", "--at", "2026-01-03")
    assert coffee.dump() == before
    for day in ("05", "06", "07"):
        coffee("earn", "E1", "--event", "review", "--at", f"2026-01-{day}")
    assert "limit" in coffee.fail("earn", "E1", "--event", "review", "--at", "2026-01-20")
    coffee("earn", "E1", "--event", "review", "--at", "2026-02-01")  # a new month
    assert "unknown event" in coffee.fail("earn", "E1", "--event", "nope")


def test_referral_credits_both(coffee):
    enroll(coffee, "R1", "engage")
    out = coffee("member", "enroll", "R2", "--program", "engage", "--referred-by", "R1", "--at", "2026-01-05").stdout
    assert "referrer R1 +200" in out
    assert coffee.json("member", "show", "R1", "--as-of", "2026-01-06")["balance"] == 200
    assert coffee.json("member", "show", "R2", "--as-of", "2026-01-06")["balance"] == 100
    assert "not enrolled" in coffee.fail("member", "enroll", "R3", "--program", "engage", "--referred-by", "ZZ")


def test_partner_rate(coffee):
    enroll(coffee, "T1", "travel")
    assert coffee.json("earn", "T1", "--amount", "100", "--partner", "hotel", "--at", "2026-01-02")["points"] == 200
    assert coffee.json("earn", "T1", "--amount", "100", "--partner", "car_rental", "--at", "2026-01-02")["points"] == 150
    assert "unknown partner" in coffee.fail("earn", "T1", "--amount", "100", "--partner", "airline")


def test_community_program_tracks_members_only(coffee):
    enroll(coffee, "C1", "club")
    assert coffee.json("member", "show", "C1")["balance"] == 0


# --- redeeming, refunds, adjustments ------------------------------------------------


def test_redeem_fifo_by_expiry_and_refusal(coffee):
    enroll(coffee)
    coffee("adjust", "M1", "--points", "100", "--reason", "goodwill", "--at", "2026-03-01")
    coffee("earn", "M1", "--amount", "100", "--txn", "P1", "--at", "2026-02-01")  # expires sooner
    before = coffee.dump()
    err = coffee.fail("redeem", "M1", "--points", "201", "--at", "2026-03-02")
    assert "insufficient points" in err and "200" in err
    assert coffee.dump() == before
    coffee("redeem", "M1", "--points", "150", "--txn", "R1", "--at", "2026-03-02")
    rows = coffee.json("history", "M1")
    redeem = next(r for r in rows if r["txn_id"] == "R1")
    lots = {r["txn_id"]: r["lot"] for r in rows if r["lot"]}
    assert f"lot {lots['P1']} -100" in redeem["why"] and "-50" in redeem["why"]


def test_reward_redemption_and_unknown_reward(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "200", "--at", "2026-01-02")
    assert coffee.json("redeem", "M1", "--reward", "free_coffee", "--at", "2026-01-03")["points"] == -150
    assert "unknown reward" in coffee.fail("redeem", "M1", "--reward", "gold_bar")


def test_refund_after_partial_redemption_goes_negative_and_is_repaid(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "100", "--txn", "P1", "--at", "2026-01-02")
    coffee("redeem", "M1", "--points", "80", "--txn", "R1", "--at", "2026-01-03")
    r = coffee.json("refund", "P1", "--amount", "40", "--at", "2026-01-04")
    assert r["points"] == -40
    r = coffee.json("refund", "P1", "--at", "2026-01-05")
    assert r["points"] == -60
    assert coffee.json("member", "show", "M1", "--as-of", "2026-01-06")["balance"] == -80
    assert "already fully refunded" in coffee.fail("refund", "P1", "--at", "2026-01-06")
    coffee("earn", "M1", "--amount", "50", "--at", "2026-01-07")
    assert coffee.json("member", "show", "M1", "--as-of", "2026-01-08")["balance"] == -30
    assert "insufficient" in coffee.fail("redeem", "M1", "--points", "1", "--at", "2026-01-08")


def test_partial_refunds_accumulate_and_never_exceed(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "10.99", "--txn", "P1", "--at", "2026-01-02")
    assert coffee.json("refund", "P1", "--amount", "0.50", "--at", "2026-01-03")["points"] == 0  # 10.49 still earns 10
    assert coffee.json("refund", "P1", "--amount", "0.50", "--at", "2026-01-03")["points"] == -1  # 9.99 earns 9
    assert "exceeds" in coffee.fail("refund", "P1", "--amount", "10.00", "--at", "2026-01-04")


def test_cancel_redemption_returns_points_to_lots(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "200", "--at", "2026-01-02")
    coffee("redeem", "M1", "--points", "150", "--txn", "R1", "--at", "2026-01-03")
    assert coffee.json("refund", "R1", "--at", "2026-01-04")["points"] == 150
    assert coffee.json("member", "show", "M1", "--as-of", "2026-01-05")["balance"] == 200
    assert "already cancelled" in coffee.fail("refund", "R1")


def test_cancel_redemption_does_not_revive_expired_points(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "200", "--at", "2026-01-02")
    coffee("redeem", "M1", "--points", "150", "--txn", "R1", "--at", "2026-01-03")
    assert coffee.json("refund", "R1", "--at", "2027-02-01")["points"] == 0


def test_adjust_needs_reason_and_may_be_negative(coffee):
    enroll(coffee)
    coffee("adjust", "M1", "--points", "100", "--reason", "goodwill", "--at", "2026-01-02")
    coffee("adjust", "M1", "--points=-30", "--reason", "double scan", "--at", "2026-01-03")
    assert coffee.json("member", "show", "M1", "--as-of", "2026-01-04")["balance"] == 70
    assert "reason" in coffee.fail("adjust", "M1", "--points", "5", "--reason", " ")
    assert "zero" in coffee.usage("adjust", "M1", "--points", "0", "--reason", "x")


# --- idempotency -------------------------------------------------------------------


def test_txn_is_idempotent(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "10", "--txn", "T1", "--at", "2026-01-02")
    before = coffee.dump()
    out = coffee("earn", "M1", "--amount", "10", "--txn", "T1").stdout
    assert "already recorded" in out
    assert coffee.dump() == before
    assert "different content" in coffee.fail("earn", "M1", "--amount", "11", "--txn", "T1")
    assert "different content" in coffee.fail("earn", "M1", "--amount", "10", "--txn", "T1", "--at", "2026-01-03")
    assert coffee.dump() == before


# --- expiry and as-of ---------------------------------------------------------------


def test_balance_excludes_expired_lots_without_job(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "100", "--at", "2026-01-02T10:00:00Z")
    assert coffee.json("member", "show", "M1", "--as-of", "2027-01-02T09:59:59Z")["balance"] == 100
    s = coffee.json("member", "show", "M1", "--as-of", "2027-01-02T10:00:00Z")
    assert s["balance"] == 0 and s["expired"] == 100


def test_member_in_several_programs(coffee):
    enroll(coffee, "M1", "coffee")
    enroll(coffee, "M1", "books")
    assert "several programs" in coffee.fail("earn", "M1", "--amount", "5")
    shown = coffee.json("member", "show", "M1")
    assert isinstance(shown, list) and {s["program"] for s in shown} == {"coffee", "books"}
    coffee("earn", "M1", "--amount", "5", "--program", "books", "--at", "2026-01-02")


# --- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, needle",
    [
        (["earn", "NOPE", "--amount", "5"], "unknown member"),
        (["earn", "M1", "--amount", "5", "--program", "nope"], "unknown program"),
        (["redeem", "M1", "--reward", "nope"], "unknown reward"),
        (["member", "enroll", "M1", "--program", "coffee"], "already enrolled"),
        (["refund", "NOTX"], "unknown transaction"),
    ],
)
def test_errors_are_one_line_and_change_nothing(coffee, args, needle):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "10", "--at", "2026-01-02")
    before = coffee.dump()
    assert needle in coffee.fail(*args)
    assert coffee.dump() == before


@pytest.mark.parametrize(
    "args, needle",
    [
        (["earn", "M1", "--amount", "-5"], "'--amount': amount must not be negative"),
        (["earn", "M1", "--amount", "abc"], "'--amount': 'abc' is not a decimal"),
        (["earn", "M1", "--amount", "5", "--at", "yesterday"], "'--at': 'yesterday' is not an ISO-8601"),
        (["redeem", "M1", "--points", "0"], "'--points': points must not be zero"),
    ],
)
def test_bad_option_values_are_usage_errors_and_change_nothing(coffee, args, needle):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "10", "--at", "2026-01-02")
    before = coffee.dump()
    assert needle in coffee.usage(*args)
    assert coffee.dump() == before


def test_output_formats(coffee):
    enroll(coffee)
    coffee("earn", "M1", "--amount", "10", "--at", "2026-01-02")
    table = coffee("member", "list").stdout
    assert "M1" in table
    csv_out = coffee("member", "list", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("member_id,") and csv_out[1].startswith("M1,")
    hist = coffee.json("history", "M1", "--as-of", "2026-06-01")
    assert [h["kind"] for h in hist] == ["tier", "earn"]
