"""Paying with points and per-point rewards, through the CLI: one transaction redeems points
worth part of the order and earns on the net (ERPNext) or gross (Odoo's eWallet) amount; a
refund gives the points paid back and takes back the points earned; a per-point reward
takes whole multiples of its required points (Odoo). Figures are worked out beside them."""

from __future__ import annotations

import pytest

from conftest import Cli

AT = "2026-02-01T10:00:00Z"

# ERPNext's single-tier test program: 1 point per 1,000 spent (collection_factor 1000), a
# point worth 1 (conversion_factor 1).
ERP = """\
code: erp
name: ERPNext single tier
currency: INR
point_value: "1"
earn_on: net
earn:
  - rule: spend
    points_per_unit: 0.001
rewards:
  - {code: per_point, name: Discount per point, required_points: 3, value_per_point: "0.10"}
"""

WALLET = """\
code: wallet
name: Wallet
currency: GBP
point_value: "0.01"
earn:
  - rule: spend
    points_per_unit: 1
"""


def program(cli: Cli, tmp_path, text: str) -> None:
    code = text.split("\n", 1)[0].split(": ")[1]
    (tmp_path / f"{code}.yaml").write_text(text)
    cli("program", "apply", str(tmp_path / f"{code}.yaml"))
    cli("member", "enroll", "M1", "-p", code, "--at", "2026-01-01T00:00:00Z")


@pytest.mark.parametrize("earn_on, earned, balance", [("net", 9, 9), ("gross", 10, 10)])
def test_erpnext_redeeming_on_an_invoice_earns_on_the_net_amount(cli, tmp_path, earn_on, earned, balance):
    # Invoice 1: 10,000 earns 10 points. Invoice 2: 10,000 paying those 10 points (worth 10):
    # net 9,990 / 1,000 = 9.99 -> 9 points (ERPNext), gross 10,000 -> 10; balance 10 - 10 + earned.
    program(cli, tmp_path, ERP.replace("earn_on: net", f"earn_on: {earn_on}"))
    assert cli.json("earn", "M1", "--amount", "10000", "--txn", "SI-1", "--at", AT)["points"] == 10
    r = cli.json("earn", "M1", "--amount", "10000", "--pay-points", "10", "--txn", "SI-2", "--at", AT)
    assert (r["amount"], r["points"], r["paid_points"], r["balance"]) == ("10000.00", earned, 10, balance)
    history = {h["txn_id"]: h["points"] for h in cli.json("history", "M1")}
    assert history == {"SI-1": 10, "SI-2": earned, "SI-2/points": -10}
    assert cli("earn", "M1", "--amount", "10000", "--pay-points", "10", "--txn", "SI-2", "--at", AT).stdout.startswith(
        "SI-2 already recorded")


def test_paying_more_than_the_order_or_the_balance_is_refused(cli, tmp_path):
    program(cli, tmp_path, WALLET)
    cli("adjust", "M1", "--points", "1000", "--reason", "welcome", "--at", AT)
    before = cli.dump()
    # 5,000 points are worth 50.00, more than a 40.00 order.
    assert cli.fail("earn", "M1", "--amount", "40.00", "--pay-points", "5000", "--at", AT) == \
        "Error: --pay-points: 5000 points are worth 50.00, more than the order's 40.00"
    assert cli.fail("earn", "M1", "--amount", "40.00", "--pay-points", "2000", "--at", AT) == \
        f"Error: --pay-points: insufficient points: member 'M1' has 1000 available at {AT}, paying needs 2000"
    assert "reserved for payments with points" in cli.fail("earn", "M1", "--amount", "1", "--txn", "X/points")
    assert cli.dump() == before


def test_refunds_give_the_points_paid_back_and_take_the_earned_ones(cli, tmp_path):
    # 1,000 points; P1: 40.00 paying 500 points (5.00), earning on net 35.00 -> 35: 1,000 - 500 + 35 = 535.
    program(cli, tmp_path, WALLET)
    cli("adjust", "M1", "--points", "1000", "--reason", "welcome", "--at", AT)
    r = cli.json("earn", "M1", "--amount", "40.00", "--pay-points", "500", "--txn", "P1", "--at", AT)
    assert (r["points"], r["balance"]) == (35, 535)
    # Refund 10.00 (a quarter): 500 x 10/40 = 125 points back; the purchase keeps 35 x 30/40 =
    # 26.25 -> 26 of its points, so 9 go: 535 + 125 - 9 = 651.
    r = cli.json("refund", "P1", "--amount", "10.00", "--at", AT)
    assert (r["points"], r["returned_points"], r["balance"]) == (-9, 125, 651)
    # The rest: 375 back, 26 taken: back to the 1,000 we started from.
    r = cli.json("refund", "P1", "--at", AT)
    assert (r["points"], r["returned_points"], r["balance"]) == (-26, 375, 1000)
    assert "refund the purchase" in cli.fail("refund", "P1/points", "--at", AT)
    assert cli("verify").exit_code == 0


def test_a_basket_paid_with_points_earns_on_each_line_net_of_its_share(coffee):
    # Bronze, 300 points from a 300.00 purchase: paying 390 is refused. LATTE 3.40 + CAKE 4.50
    # (pastry x2) = 7.90 paying 290 points (2.90), shared 340:450 -> 1.25 / 1.65 (124.8 and
    # 165.2 pence, the odd penny to the larger remainder): LATTE 2.15, CAKE 2.85 x 2 = 5.70;
    # 7.85 -> 7 points; 300 - 290 + 7 = 17.
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", "2029-06-01T00:00:00Z")
    coffee("earn", "M1", "--amount", "300", "--at", "2029-06-02T00:00:00Z")
    assert "insufficient points" in coffee.fail("earn", "M1", "--line", "LATTE:1:3.40", "--line", "CAKE:1:4.50",
                                                "--pay-points", "390", "--at", "2029-06-03T00:00:00Z")
    r = coffee.json("earn", "M1", "--line", "LATTE:1:3.40", "--line", "CAKE:1:4.50", "--pay-points", "290",
                    "--txn", "POS-9", "--at", "2029-06-03T00:00:00Z")
    assert (r["amount"], r["points"], r["paid_points"]) == ("7.90", 7, 290)
    # (a command's balance is the one at now, when later runs of the suite find these expired)
    assert coffee.json("member", "show", "M1", "--as-of", "2029-06-03T00:00:00Z")["balance"] == 17
    text = coffee("explain", "POS-9").stdout
    assert "paid 290 points (2.90) of the order with POS-9/points; points earned on the net amount" in text
    # Refunding the cake: its 5 points (of 7: 2.15 -> 2, 5.70 -> 5) and 290 x 4.50/7.90 = 165.2 -> 165 points back.
    r = coffee.json("refund", "POS-9", "--line", "CAKE", "--at", "2029-06-04T00:00:00Z")
    assert (r["points"], r["returned_points"]) == (-5, 165)
    assert coffee.json("member", "show", "M1", "--as-of", "2029-06-04T00:00:00Z")["balance"] == 177


def test_odoo_per_point_reward_takes_whole_multiples(cli, tmp_path):
    # 10 points, 3 required per step: 9 taken (worth 0.90), 1 left.
    program(cli, tmp_path, ERP)
    cli("adjust", "M1", "--points", "10", "--reason", "gift", "--at", AT)
    r = cli.json("redeem", "M1", "--reward", "per_point", "--txn", "R1", "--at", AT)
    assert (r["points"], r["balance"]) == (-9, 1)
    assert "9 points x 0.1 = 0.90 INR" in cli("explain", "R1").stdout
    assert cli.fail("redeem", "M1", "--reward", "per_point", "--at", AT) == \
        "Error: reward 'per_point' takes points in multiples of 3; member 'M1' has 1 available"
    # --points caps it: 8 offered of 11 -> 6.
    cli("adjust", "M1", "--points", "10", "--reason", "gift", "--at", AT)
    assert cli.json("redeem", "M1", "--reward", "per_point", "--points", "8", "--at", AT)["points"] == -6
