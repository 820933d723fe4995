"""The basket rules as pure functions (core/rules.py): shares that add up, rounding once,
the most specific rule, refunds of lines that give back exactly what a line earned."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from loyaltyctl.core import rules
from loyaltyctl.core.program import Rule
from loyaltyctl.core.records import PurchaseLine


def test_allocate_rounds_down_and_gives_the_rest_to_the_largest_remainders():
    # 1.00 (100 pennies) over 1:1:1 -> 33.3 each: 33, 33, 33 and the last penny to the first.
    assert rules.allocate(10000, [1, 1, 1], 100) == [3400, 3300, 3300]
    # 3.00 over 10 : 8 : 6 -> 1.25, 1.00, 0.75 exactly.
    assert rules.allocate(30000, [100000, 80000, 60000], 100) == [12500, 10000, 7500]
    assert rules.allocate(0, [1, 2], 100) == [0, 0]


@given(st.integers(0, 10**6), st.lists(st.integers(0, 10**6), min_size=1, max_size=8).filter(any))
def test_allocate_always_adds_up(total, weights):
    shares = rules.allocate(total * 100, weights, 100)
    assert sum(shares) == total * 100 and all(s % 100 == 0 and s >= 0 for s in shares)


def test_split_points_rounds_once_for_the_basket():
    # 3.4 + 9.0 + 4.6 = 17.0 -> 17: 3, 9, 4 and the 17th to 4.6.
    assert rules.split_points([Decimal("3.4"), Decimal("9.0"), Decimal("4.6")]) == [3, 9, 5]
    # 0.5 + 0.5 = 1 -> the first on a tie.
    assert rules.split_points([Decimal("0.5"), Decimal("0.5")]) == [1, 0]


def rule(index: int, **spec) -> Rule:
    return Rule(index, {"rule": "spend", "points_per_unit": "1", **spec})


def test_the_most_specific_rule_covers_a_line():
    whole, cat, sku = rule(0), rule(1, scope={"categories": ["pastry"]}), rule(2, scope={"skus": ["CAKE"]})
    rules_ = [whole, cat, sku]
    assert rules.covering_rule(rules_, "CAKE", "pastry") is sku
    assert rules.covering_rule(rules_, "MUFFIN", "pastry") is cat
    assert rules.covering_rule(rules_, "LATTE", "coffee") is whole
    assert rules.covering_rule([rule(0, scope={"exclude_skus": ["GIFT"]})], "GIFT", None) is None


def line(no: int, quantity: int, price_e4: int, points: int, discount_e4: int = 0, order_e4: int = 0):
    return PurchaseLine(1, no, f"S{no}", None, quantity, price_e4, discount_e4, order_e4, points)


def test_refunding_units_one_by_one_gives_back_exactly_the_line():
    # 3 items at 1.00 less 0.10 each (0.30) and 0.20 of the order discount: 2.50 and 10 points.
    # One at a time: 0.83 + 0.84 + 0.83 = 2.50 (cumulative, half up); 3 + 3 + 4 = 10 points.
    lines = (line(1, 3, 10000, 10, 3000, 2000),)
    done: tuple = ()
    paid, points = [], []
    for _ in range(3):
        (row,) = rules.refund_rows(lines, done, (("S1", 1),), 100, "T")
        done += (row,)
        paid.append(-row.paid_e4)
        points.append(-row.points)
    assert paid == [8300, 8400, 8300] and points == [3, 3, 4]
    assert rules.fully_refunded(lines, done)


def test_a_refund_without_lines_named_takes_everything_left():
    lines = (line(1, 2, 10000, 4), line(2, 1, 5000, 1))
    done = rules.refund_rows(lines, (), (("S1", 1),), 100, "T")
    rest = rules.refund_rows(lines, done, (), 100, "T")
    assert [(r.line_no, r.quantity, r.points) for r in rest] == [(1, -1, -2), (2, -1, -1)]


def test_points_paid_go_back_in_the_share_refunded_to_lots_still_alive():
    # 500 points paid on 40.00: refunding 10.00 gives back 125, then the remaining 30.00 the other 375.
    assert rules.points_back(500, 400000, 0, 100000) == 125
    assert rules.points_back(500, 400000, 100000, 400000) == 375
    # Taken 300 from lot 1 and 200 from lot 2; lot 1 has expired: its points are lost.
    assert rules.give_back(((1, -300), (2, -200)), (), {2}, 500) == [(2, 200)]
    assert rules.give_back(((1, -300), (2, -200)), ((1, 100),), {1, 2}, 400) == [(1, 200), (2, 200)]
