"""Baskets through the CLI: purchase lines, rule scope and basis, catalogue multipliers,
discounts (Odoo's figures), refunds of lines and `explain` per line. Every figure is worked
out by hand in the comment beside it."""

from __future__ import annotations

import json

import pytest

from conftest import Cli, ago

AT = ago(10)  # recent: the example programs' points expire after a year
JOINED = ago(400)

ODOO = """\
code: odoo
name: Odoo food points
currency: EUR
point_value: "0.01"
catalogue:
  skus: {FOOD: Food, OTHER: Other}
earn:
  - rule: spend
    scope: {categories: [Food]}
    points_per_unit: 1
"""

SHOP = """\
code: shop
name: Corner shop
currency: GBP
point_value: "0.01"
catalogue:
  categories: [grocery, gifts]
  skus: {COFFEE-BAG: grocery, RICE: grocery, GIFT: gifts}
earn:
  - rule: spend                 # earn[0]: 1 point per pound, gift cards excepted
    points_per_unit: 1
    scope: {exclude_skus: [GIFT]}
  - rule: spend                 # earn[1]: 5 points per bag of coffee (a sku beats a category)
    scope: {skus: [COFFEE-BAG]}
    per: unit
    points_per_unit: 5
  - rule: spend                 # earn[2]: 2 points per pound of groceries
    scope: {categories: [grocery]}
    points_per_unit: 2
  - rule: spend                 # earn[3]: 10 points a visit
    per: order
    points_per_unit: 10
"""


def program(cli: Cli, tmp_path, text: str, member: str = "M1") -> None:
    code = text.split("\n", 1)[0].split(": ")[1]
    path = tmp_path / f"{code}.yaml"
    path.write_text(text)
    cli("program", "apply", str(path))
    cli("member", "enroll", member, "-p", code, "--at", JOINED)


def earn(cli: Cli, *args: str) -> dict:
    return cli.json("earn", *args, "--at", AT)


# --- discounts: Odoo's tested figures ---------------------------------------------------------


def test_odoo_order_wide_discount_does_not_reduce_category_scoped_points(cli, tmp_path):
    # Food 100 + other 50, 1 point per EUR on Food; 10% off the whole order (15.00):
    # paid 150 - 15 = 135, Food earns on its own price 100 -> 100 points.
    program(cli, tmp_path, ODOO)
    r = earn(cli, "M1", "--line", "FOOD:1:100", "--line", "OTHER:1:50", "--discount", "15.00", "--txn", "O1")
    assert (r["amount"], r["points"]) == ("135.00", 100)


def test_odoo_category_discount_reduces_the_points_of_its_lines(cli, tmp_path):
    # 10% off Food only (10.00): paid 150 - 10 = 140, Food earns on 90 -> 90 points; the same
    # discount given on the line itself earns the same.
    program(cli, tmp_path, ODOO)
    r = earn(cli, "M1", "--line", "FOOD:1:100", "--line", "OTHER:1:50", "--discount", "Food:10.00", "--txn", "O2")
    assert (r["amount"], r["points"]) == ("140.00", 90)
    r = earn(cli, "M1", "--line", "FOOD:1:100:10", "--line", "OTHER:1:50", "--txn", "O3")
    assert (r["amount"], r["points"]) == ("140.00", 90)


def test_order_wide_discount_reduces_points_of_rules_without_categories(cli, tmp_path):
    # The shop's earn[0] covers the whole order (but GIFT): RICE 2 x 5.00 is groceries
    # (earn[2], 2 per pound on its own 10.00 = 20); a bag of coffee earns 5 per bag (earn[1]);
    # TEA has no rule of its own: earn[0] on 6.00 less its share of 3.00 off the order.
    # Shares of 3.00 by what is left of each line (10.00, 8.00, 6.00 of 24.00): 1.25, 1.00,
    # 0.75. TEA: 6.00 - 0.75 = 5.25 x 1 = 5.25; lines 20 + 5 + 5.25 = 30.25 -> 30; +10 a visit.
    text = SHOP.replace("categories: [grocery, gifts]", "categories: [grocery, gifts, drinks]") \
               .replace("GIFT: gifts}", "GIFT: gifts, TEA: drinks}")
    program(cli, tmp_path, text)
    r = earn(cli, "M1", "--line", "RICE:2:5.00", "--line", "COFFEE-BAG:1:8.00", "--line", "TEA:1:6.00",
             "--discount", "3.00", "--txn", "S1")
    assert (r["amount"], r["points"]) == ("21.00", 40)
    lines = {x["sku"]: (x["order_discount"], x["points"]) for x in cli.json("explain", "S1")["lines"]}
    assert lines == {"RICE": ("1.25", 20), "COFFEE-BAG": ("1.00", 5), "TEA": ("0.75", 5)}


# --- the café: double points on pastries (programs/coffee.yaml) --------------------------------


def test_cafe_pastries_earn_double_and_explain_shows_each_line(coffee):
    # Bronze (x1): LATTE 2 x 3.40 = 6.80 -> 6.8; CROISSANT 2.60 x 2 (pastry) = 5.2; 12.0 -> 12
    # points for 9.40 (the amount alone would earn 9).
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", JOINED)
    r = earn(coffee, "M1", "--line", "LATTE:2:3.40", "--line", "CROISSANT:1:2.60", "--txn", "POS-1")
    assert (r["amount"], r["points"], r["balance"]) == ("9.40", 12, 12)
    out = coffee.json("explain", "POS-1")
    assert [(x["sku"], x["category"], x["paid"], x["arithmetic"], x["points"]) for x in out["lines"]] == [
        ("LATTE", "coffee", "6.80", "6.80 x 1 x 1 = 6.8 -> 7", 7),
        ("CROISSANT", "pastry", "2.60", "2.60 x 1 x 2 = 5.2 -> 5", 5)]
    text = coffee("explain", "POS-1").stdout
    assert "line 2: 1 x CROISSANT (pastry) at 2.60 = 2.60; earn[0] per amount: 2.60 x 1 x 2 = 5.2 -> 5; 5 points" in text


def test_lines_points_are_rounded_once_and_shared_by_largest_remainder(coffee):
    # LATTE 3.40 -> 3.4; CAKE 4.50 x 2 -> 9.0; MUFFIN 2.30 x 2 -> 4.6: 17.0 -> 17 points.
    # Rounded down each: 3 + 9 + 4 = 16; the 17th goes to the largest remainder (MUFFIN, .6).
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", JOINED)
    r = earn(coffee, "M1", "--line", "LATTE:1:3.40", "--line", "CAKE:1:4.50", "--line", "MUFFIN:1:2.30",
             "--txn", "POS-2")
    assert (r["amount"], r["points"]) == ("10.20", 17)
    assert [x["points"] for x in coffee.json("explain", "POS-2")["lines"]] == [3, 9, 5]
    # Refunding the cake gives back exactly its 9 points and its 4.50.
    r = coffee.json("refund", "POS-2", "--line", "CAKE", "--at", AT)
    assert (r["amount"], r["points"], r["balance"]) == ("4.50", -9, 8)
    # The rest: 3.40 + 2.30 = 5.70 and 3 + 5 = 8 points.
    r = coffee.json("refund", "POS-2", "--at", AT)
    assert (r["amount"], r["points"], r["balance"]) == ("5.70", -8, 0)
    assert "already fully refunded" in coffee.fail("refund", "POS-2", "--line", "LATTE", "--at", AT)


def test_tier_multiplier_applies_to_lines(coffee):
    # 1600.00 makes M1 Gold (x1.5) for the next purchase: CAKE 4.00 x 1 x 1.5 x 2 = 12 points.
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", JOINED)
    coffee("earn", "M1", "--amount", "1600", "--at", ago(20))
    r = earn(coffee, "M1", "--line", "CAKE:1:4.00", "--txn", "POS-3")
    assert (r["tier"], r["points"]) == ("Gold", 12)


def test_an_amount_without_lines_earns_as_before(coffee):
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", JOINED)
    assert earn(coffee, "M1", "--amount", "9.40")["points"] == 9


# --- the book shop by category (programs/books.yaml) -------------------------------------------


def test_book_shop_earns_by_category(coffee):
    # fiction 12.00 x 1 = 12; textbooks 40.00 x 0.5 = 20; a 25.00 gift card (known by sku) 0:
    # 32 points for 77.00.
    coffee("member", "enroll", "B1", "-p", "books", "--at", JOINED)
    basket = ('[{"sku": "978-0-14-118776-1", "category": "fiction", "quantity": 1, "unit_price": "12.00"},'
              ' {"sku": "978-0-07-352332-3", "category": "textbooks", "quantity": 1, "unit_price": 40},'
              ' {"sku": "GIFT-25", "quantity": 1, "unit_price": "25.00"}]')
    r = json.loads(coffee("earn", "B1", "--basket", "-", "--txn", "BK-1", "--at", AT, "-f", "json", input=basket).stdout)
    assert (r["amount"], r["points"]) == ("77.00", 32)
    rules = [x["rule"] for x in coffee.json("explain", "BK-1")["lines"]]
    assert rules == ["earn[0]", "earn[1]", "earn[2]"]
    err = coffee.fail("earn", "B1", "--line", "978-1:1:10.00", "--at", AT)
    assert err == "Error: --line: line 1 (978-1): sku '978-1' is not in the catalogue of 'books'; give its category"


# --- scope and basis ----------------------------------------------------------------------------


def test_sku_beats_category_beats_whole_order_and_per_unit_and_per_order(cli, tmp_path):
    # COFFEE-BAG 3 x 8.00: earn[1], 5 per bag = 15; RICE 3.00: earn[2] 2 x 3.00 = 6;
    # GIFT 20.00: excluded from earn[0], no other rule: 0. Lines 21, +10 a visit = 31 for 47.00.
    program(cli, tmp_path, SHOP)
    r = earn(cli, "M1", "--line", "COFFEE-BAG:3:8.00", "--line", "RICE:1:3.00", "--line", "GIFT:1:20.00",
             "--txn", "S2")
    assert (r["amount"], r["points"]) == ("47.00", 31)
    out = cli.json("explain", "S2")
    assert [(x["rule"], x["points"]) for x in out["lines"]] == [("earn[1]", 15), ("earn[2]", 6), (None, 0)]
    assert "earn[3] per order: 10 x 1 = 10 -> 10" in out["explanation"]
    # A refund of one bag of three: 15 x 1/3 = 5 points, 8.00; then two more: 10 and 16.00.
    assert cli.json("refund", "S2", "--line", "COFFEE-BAG:1", "--at", AT)["points"] == -5
    r = cli.json("refund", "S2", "--line", "COFFEE-BAG:2", "--at", AT)
    assert (r["amount"], r["points"]) == ("16.00", -10)
    # The last lines take back the visit's 10 points too: RICE 6 + GIFT 0 + 10.
    r = cli.json("refund", "S2", "--line", "RICE", "--line", "GIFT", "--at", AT)
    assert (r["amount"], r["points"], r["balance"]) == ("23.00", -16, 0)


def test_an_amount_alone_earns_under_whole_order_rules_and_refunds_proportionally(cli, tmp_path):
    # 39.00 without lines: earn[0] (it excludes only a sku) 39 + a visit 10 = 49.
    program(cli, tmp_path, SHOP)
    assert earn(cli, "M1", "--amount", "39.00", "--txn", "S3")["points"] == 49
    # Not amount x rate (the visit bonus): a refund of 13.00 keeps 49 x 26/39 = 32.67 -> 32.
    assert cli.json("refund", "S3", "--amount", "13.00", "--at", AT)["points"] == -17


# --- idempotency and refusals -------------------------------------------------------------------


def test_the_lines_are_part_of_the_content_a_repeated_txn_is_compared_on(coffee):
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", JOINED)
    first = earn(coffee, "M1", "--line", "LATTE:2:3.40", "--txn", "T1")
    again = earn(coffee, "M1", "--line", "LATTE:2:3.40", "--amount", "6.80", "--txn", "T1")
    assert (first["status"], again["status"], again["balance"]) == ("recorded", "duplicate", 6)
    before = coffee.dump()
    err = coffee.fail("earn", "M1", "--line", "LATTE:2:3.40", "--line", "CAKE:1:4.00", "--txn", "T1", "--at", AT)
    assert "already recorded with different content" in err
    assert coffee.fail("earn", "M1", "--line", "LATTE:2:3.40", "--amount", "7.00", "--at", AT) == \
        "Error: --amount: 7.00 is not the lines' total 6.80 (leave it out, or correct it)"
    assert coffee.dump() == before


@pytest.mark.parametrize("args, message", [
    (["--line", "MOCHA:1:3.00"], "--line: line 1 (MOCHA): sku 'MOCHA' is not in the catalogue of 'coffee'; give its category"),
    (["--line", "LATTE:1:3.001"], "--line: line 1 (LATTE): unit_price 3.001 has more decimal places than GBP has (2)"),
    (["--line", "LATTE:1:3.00:4.00"], "--line: line 1 (LATTE): discount 4.00 exceeds the line's 3.00"),
    (["--line", "LATTE:1:3.00", "--discount", "pastry:1.00"], "--discount: no line of category 'pastry' to discount"),
    (["--line", "LATTE:1:3.00", "--discount", "5.00"], "--discount: 5.00 exceeds the 3.00 it applies to"),
    (["--line", "LATTE:1:3.00", "--partner", "x"], "--line: a partner purchase earns on its amount: give --amount without lines"),
    (["--amount", "3.00", "--discount", "1.00"], "--discount: applies to purchases with lines (--line or --basket)"),
    (["--event", "x", "--pay-points", "5"], "--pay-points: applies to purchases, not to events"),
])
def test_bad_baskets_are_one_line_errors_and_write_nothing(coffee, args, message):
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", JOINED)
    before = coffee.dump()
    assert coffee.fail("earn", "M1", *args, "--at", AT) == f"Error: {message}"
    assert coffee.dump() == before


@pytest.mark.parametrize("value", ["LATTE", "LATTE:x:3.00", "LATTE:0:3.00", ":1:3.00", "LATTE:1:-3", "A:1:2:3:4"])
def test_a_malformed_line_is_a_usage_error(coffee, value):
    assert "--line" in coffee.usage("earn", "M1", "--line", value)


def test_a_basket_file_and_its_errors(coffee, tmp_path):
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", JOINED)
    path = tmp_path / "basket.json"
    path.write_text('{"lines": [{"sku": "LATTE", "quantity": 2, "unit_price": 3.40}], '
                    '"discounts": [{"amount": "0.80"}]}')
    r = coffee.json("earn", "M1", "--basket", str(path), "--at", AT)
    assert (r["amount"], r["points"]) == ("6.00", 6)
    path.write_text('[{"sku": "LATTE", "quantity": 1.5, "unit_price": "3.40"}]')
    assert coffee.fail("earn", "M1", "--basket", str(path), "--at", AT) == \
        f"Error: --basket: {path}: line 1: quantity '1.5' is not a whole number of items (1 or more)"
    assert "no such file" in coffee.fail("earn", "M1", "--basket", str(tmp_path / "none.json"), "--at", AT)


def test_refunds_of_lines_are_checked(coffee):
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", JOINED)
    earn(coffee, "M1", "--line", "LATTE:2:3.40", "--txn", "T1")
    earn(coffee, "M1", "--amount", "5.00", "--txn", "T2")
    before = coffee.dump()
    assert coffee.fail("refund", "T1", "--line", "CAKE", "--at", AT) == \
        "Error: --line: purchase 'T1' has no line 'CAKE' (its lines: LATTE)"
    assert coffee.fail("refund", "T1", "--line", "LATTE:3", "--at", AT) == \
        "Error: --line: LATTE: 3 to refund, but purchase 'T1' has only 2 left to refund"
    assert coffee.fail("refund", "T1", "--amount", "1.00", "--at", AT) == \
        "Error: --amount: purchase 'T1' has lines: name them (--line SKU:QTY), or refund all of it"
    assert coffee.fail("refund", "T2", "--line", "LATTE", "--at", AT) == \
        "Error: --line: transaction 'T2' has no lines: refund an amount, or all of it"
    assert coffee.dump() == before


def test_verify_checks_that_lines_add_up(coffee):
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", JOINED)
    earn(coffee, "M1", "--line", "LATTE:2:3.40", "--line", "CAKE:1:4.50", "--txn", "V1")
    coffee.json("refund", "V1", "--line", "CAKE", "--at", AT)
    assert coffee("verify").exit_code == 0
    coffee.execute("UPDATE purchase_lines SET unit_price_e4 = unit_price_e4 + 100 WHERE sku = 'LATTE'")
    bad = coffee("verify", ok=False)
    assert bad.exit_code == 1 and "purchase_lines: " in bad.stdout and "txn_id=V1" in bad.stdout
