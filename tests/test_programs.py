"""Program files: the schema, line-numbered errors, YAML 1.1 pitfalls, canonical form, look-ups."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from conftest import PROGRAMS
from loyaltyctl.core.program import Program as View
from loyaltyctl.errors import ProgramError
from loyaltyctl.core.schema import EventRule, PartnerRule, ReferralRule, SpendRule
from loyaltyctl.io.programs import MAX_BYTES, from_json, load_paths, load_program, to_canonical_json

BASE = """\
code: shop
name: Shop
currency: GBP
point_value: "0.01"
earn:
  - rule: spend
    points_per_unit: 1
tiers:
  basis: spend
  window_days: 365
  review: {grace_days: 30}
  levels:
    - {name: Bronze, threshold: 0}
    - {name: Silver, threshold: 500, multiplier: 1.1}
    - {name: Gold, threshold: 1500, multiplier: 1.5}
expiry:
  after_days: 365
rewards:
  - {code: free_coffee, name: Free coffee, points: 150}
  - {code: five_off, name: "5 off", points: 500}
"""
# Line numbers in BASE: 6 earn[0], 7 points_per_unit, 10 window_days, 11 review, 13-15 levels,
# 16 expiry, 17 after_days, 19-20 rewards.

RULES = """\
  - rule: event
    event: email_signup
    points: 50
    once: true
  - rule: event
    event: review
    points: 20
    limit: {count: 3, per: month}
  - rule: referral
    referrer_points: 200
    referee_points: 100
  - rule: partner
    partner: hotel
    points_per_unit: 2
"""
# Appended after BASE's earn[0], RULES' lines 1-14 become file lines 8-21 (earn[1] at 8,
# earn[2] at 12, earn[3] at 16, earn[4] at 19).


def with_rules(rules: str = RULES) -> str:
    return BASE.replace("    points_per_unit: 1\n", "    points_per_unit: 1\n" + rules, 1)


def pair(rule):
    """A rule the view found, as (its index in `earn`, its fields)."""
    return None if rule is None else (rule.index, rule.spec)


def view(program) -> View:
    """The program as everyday commands read it: its stored canonical JSON through the runtime view."""
    return View(json.loads(to_canonical_json(program)), 1, 1)


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def error(tmp_path, text) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ProgramError) as exc:
        load_program(path)
    return str(exc.value).replace(path, "FILE")


# --- examples ---------------------------------------------------------------------------


def test_every_example_loads():
    loaded = load_paths([str(PROGRAMS)])
    assert [p.code for _, p in loaded] == ["books", "cashback", "club", "coffee", "engage", "travel"]  # by file name
    programs = {p.code: p for _, p in loaded}
    coffee = programs["coffee"]
    assert [(lv.name, lv.threshold, lv.multiplier) for lv in coffee.tiers.levels] == [
        ("Bronze", 0, 1), ("Silver", 500, Decimal("1.25")), ("Gold", 1500, Decimal("1.5"))]
    assert coffee.tiers.basis == "spend" and coffee.tiers.window_days == 365 and coffee.tiers.review.grace_days == 30
    assert coffee.expiry.after_days == 365 and coffee.point_value == Decimal("0.01")
    assert {r.code: r.points for r in coffee.rewards} == {"free_coffee": 150, "five_off": 500}
    assert programs["books"].tiers is None and programs["books"].expiry.after_days == 730
    assert programs["cashback"].expiry is None
    cashback = view(programs["cashback"])
    assert Decimal(cashback.spend_rule({"card_member"}).spec["points_per_unit"]) == 5
    assert Decimal(cashback.spend_rule(set()).spec["points_per_unit"]) == 2
    assert cashback.rewards["credit_5"]["points"] == 500
    engage = view(programs["engage"])
    assert engage.event_rule("email_signup").spec["once"] and engage.event_rule("review").spec["limit"]["count"] == 3
    assert engage.referral_rule().spec["referrer_points"] == 200 and engage.referral_rule().spec["referee_points"] == 100
    assert programs["travel"].tiers.basis == "points" and programs["travel"].expiry.after_days == 540
    travel = view(programs["travel"])
    assert Decimal(travel.partner_rule("car_rental").spec["points_per_unit"]) == Decimal("1.5")
    assert travel.partner_rule("car_rental").spec["tier_multiplier"] is False
    assert programs["club"].earn == [] and programs["club"].rewards == []


def test_the_full_schema_loads(tmp_path):
    p = load_program(write(tmp_path, with_rules() + 'cost_per_month: "250.00"\ndescription: A shop\n'))
    assert [type(r) for r in p.earn] == [SpendRule, EventRule, EventRule, ReferralRule, PartnerRule]
    assert p.earn[0].tier_multiplier is True and p.earn[4].tier_multiplier is False
    assert p.earn[2].limit.per == "month" and p.earn[2].once is False
    assert p.cost_per_month == Decimal("250.00") and p.description == "A shop"
    assert p.tiers.levels[0].multiplier == 1 and p.tiers.levels[0].perks == []


# --- YAML 1.1 pitfalls -----------------------------------------------------------------


def test_numbers_are_exact(tmp_path):
    p = load_program(write(tmp_path, BASE.replace("points_per_unit: 1", "points_per_unit: 0.1")))
    assert p.tiers.levels[1].multiplier == Decimal("1.1") and str(p.tiers.levels[1].multiplier) == "1.1"
    assert p.earn[0].points_per_unit == Decimal("0.1")  # never 0.1000000000000000055511151231257827
    assert type(p.rewards[0].points) is int and type(p.tiers.window_days) is int
    p = load_program(write(tmp_path, BASE.replace("multiplier: 1.5", "multiplier: 15e-1")))
    assert p.tiers.levels[2].multiplier == Decimal("1.5")


def test_yaml11_booleans_and_octals_are_text(tmp_path):
    text = BASE.replace("name: Shop", "name: NO").replace("code: shop", "code: 01234")
    text += "description: yes\n"
    p = load_program(write(tmp_path, text))
    assert p.name == "NO" and p.code == "01234" and p.description == "yes"
    # an octal-looking number is never read as 668: in a whole-number field it is an error
    assert error(tmp_path, BASE.replace("window_days: 365", "window_days: 01234")) \
        == "FILE:10: tiers.window_days: must be a whole number"
    # on/off are not booleans either; true/false are
    assert error(tmp_path, with_rules().replace("once: true", "once: on")) \
        == "FILE:11: earn[1].once: Input should be a valid boolean"
    p = load_program(write(tmp_path, BASE.replace("points_per_unit: 1", "points_per_unit: 1\n    tier_multiplier: False")))
    assert p.earn[0].tier_multiplier is False


def test_duplicate_keys_are_refused_at_the_duplicate(tmp_path):
    assert error(tmp_path, "code: a\nname: A\nname: B\n") == "FILE:3: name: duplicate key 'name'"
    assert error(tmp_path, BASE.replace("window_days: 365", "window_days: 365\n  window_days: 30")) \
        == "FILE:11: tiers.window_days: duplicate key 'window_days'"
    assert error(tmp_path, BASE.replace("{name: Gold,", "{name: Gold, name: Platinum,")) \
        == "FILE:15: tiers.levels[2].name: duplicate key 'name'"


def test_aliases_anchors_tags_and_merge_keys_are_refused(tmp_path):
    bomb = 'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\n'
    assert error(tmp_path, bomb) == "FILE:2: aliases are not allowed"
    assert error(tmp_path, BASE + "x: &unused 1\n") == "FILE:21: anchors and aliases are not allowed"
    assert error(tmp_path, BASE.replace("code: shop", "code: !!str shop")).startswith("FILE:1: tags are not allowed")
    assert error(tmp_path, 'code: !!python/object/apply:os.system ["true"]\n').startswith(
        "FILE:1: tags are not allowed")
    assert error(tmp_path, "<<: {code: x}\n") == "FILE:1: merge keys (<<) are not allowed"
    assert error(tmp_path, "? [a]\n: 1\n") == "FILE:1: mapping keys must be plain names"
    deep = "a: " + "[" * 100 + "]" * 100 + "\n"
    assert "nested more than" in error(tmp_path, deep)


# --- file problems ----------------------------------------------------------------------


def test_file_problems(tmp_path):
    missing = str(tmp_path / "none.yaml")
    assert str(pytest.raises(ProgramError, load_program, missing).value) == f"{missing}: no such file"
    assert error(tmp_path, "- just\n- a list\n") == "FILE:1: the top level must be a mapping of program fields"
    assert error(tmp_path, "# nothing\n").startswith("FILE: empty file")
    assert error(tmp_path, "code: a\nname: [x\n").startswith("FILE:3: YAML syntax error:")
    assert error(tmp_path, "code: a\n\tname: x\n").startswith("FILE:2: YAML syntax error:")
    assert error(tmp_path, "code: a\nname: \x1f\n") == "FILE:2: YAML syntax error: special characters are not allowed"
    assert error(tmp_path, "\x1f").startswith("FILE:1: YAML syntax error")
    assert error(tmp_path, BASE + "---\n" + BASE).startswith("FILE:21: YAML syntax error: expected a single document")
    bad = tmp_path / "bin.yaml"
    bad.write_bytes(b"code: a\nname: \xff\xfe\n")
    assert str(pytest.raises(ProgramError, load_program, str(bad)).value) == f"{bad}:2: not UTF-8 text"
    big = tmp_path / "big.yaml"
    big.write_text(BASE + "# " + "x" * MAX_BYTES + "\n")
    assert "larger than" in str(pytest.raises(ProgramError, load_program, str(big)).value)
    assert load_program(write(tmp_path, "\ufeff" + BASE)).code == "shop"  # a UTF-8 BOM is fine


def test_the_path_is_shown_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "programs").mkdir()
    (tmp_path / "programs" / "coffee.yaml").write_text(BASE.replace("threshold: 1500", "threshold: 400"))
    with pytest.raises(ProgramError) as exc:
        load_program("programs/coffee.yaml")
    assert str(exc.value) == "programs/coffee.yaml:15: tiers.levels[2].threshold: must be greater than Silver's 500"
    e = exc.value
    assert (e.path, e.line, e.field, e.detail) == (
        "programs/coffee.yaml", 15, "tiers.levels[2].threshold", "must be greater than Silver's 500")


# --- validation errors: file:line: field: message ---------------------------------------


@pytest.mark.parametrize(
    "old, new, expected",
    [
        # tiers
        ("threshold: 1500", "threshold: 400", "FILE:15: tiers.levels[2].threshold: must be greater than Silver's 500"),
        ("threshold: 1500", "threshold: 500", "FILE:15: tiers.levels[2].threshold: must be greater than Silver's 500"),
        ("threshold: 0}", "threshold: 10}", "FILE:13: tiers.levels[0].threshold: the first level must have threshold 0"),
        ("{name: Gold,", "{name: Silver,",
         "FILE:15: tiers.levels[2].name: level name 'Silver' is already used by tiers.levels[1]"),
        ("multiplier: 1.5}", "multiplier: 0}", "FILE:15: tiers.levels[2].multiplier: Input should be greater than 0"),
        ("{name: Silver, threshold: 500, multiplier: 1.1}", "{name: Silver, multiplier: 1.1}",
         "FILE:14: tiers.levels[1].threshold: required field is missing"),
        ("basis: spend", "basis: visits", "FILE:9: tiers.basis: must be 'spend' or 'points', not 'visits'"),
        ("window_days: 365", "window_days: 0", "FILE:10: tiers.window_days: Input should be greater than 0"),
        ("window_days: 365", "window_days: 365\n  colour: red", "FILE:11: tiers.colour: unknown field"),
        ("{grace_days: 30}", "{grace_days: -1}",
         "FILE:11: tiers.review.grace_days: Input should be greater than or equal to 0"),
        ("  levels:\n    - {name: Bronze, threshold: 0}\n    - {name: Silver, threshold: 500, multiplier: 1.1}\n"
         "    - {name: Gold, threshold: 1500, multiplier: 1.5}\n", "  levels: []\n",
         "FILE:12: tiers.levels: List should have at least 1 item"),
        # top level
        ("code: shop\n", "", "FILE:1: code: required field is missing"),
        ("code: shop", "code: Shop!", "FILE:1: code: String should match pattern '^[a-z0-9_-]+$'"),
        ("currency: GBP", "currency: pounds", "FILE:3: currency: String should match pattern '^[A-Z]{3}$'"),
        ('point_value: "0.01"', "point_value: 0", "FILE:4: point_value: Input should be greater than 0"),
        ('point_value: "0.01"', "point_value: yes", "FILE:4: point_value: Input should be a valid decimal"),
        ('point_value: "0.01"', 'point_value: "0.01"\ncost_per_month: -1',
         "FILE:5: cost_per_month: Input should be greater than or equal to 0"),
        ("name: Shop", "name: 1984", "FILE:2: name: must be text (put it in quotes)"),
        ("name: Shop", "name: Shop\nlogo: x.png", "FILE:3: logo: unknown field"),
        # earn
        ("points_per_unit: 1", "points_per_unit: -1",
         "FILE:7: earn[0].points_per_unit: Input should be greater than or equal to 0"),
        ("points_per_unit: 1", "points_per_unit: true", "FILE:7: earn[0].points_per_unit: must be a number, not true/false"),
        ("rule: spend", "rule: bonus",
         "FILE:6: earn[0].rule: unknown rule 'bonus' (known: spend, event, referral, partner)"),
        ("  - rule: spend\n", "  - when: {tag: x}\n", "FILE:6: earn[0].rule: required field is missing"),
        ("points_per_unit: 1", "points_per_unit: 1\n    when: {tag: x, colour: red}",
         "FILE:8: earn[0].when.colour: unknown field"),
        # expiry
        ("after_days: 365", "after_days: 0", "FILE:17: expiry.after_days: Input should be greater than 0"),
        ("after_days: 365", "inactivity_days: 90\n  round_to: month_end",
         "FILE:18: expiry.round_to: round_to needs after_days"),
        ("after_days: 365", "after_days: 365\n  round_to: week_end",
         "FILE:18: expiry.round_to: must be 'month_end' or 'year_end', not 'week_end'"),
        ("expiry:\n  after_days: 365\n", "expiry: {}\n", "FILE:16: expiry: give after_days and/or inactivity_days"),
        # rewards
        ("{code: five_off,", "{code: free_coffee,",
         "FILE:20: rewards[1].code: reward code 'free_coffee' is already used by rewards[0]"),
        ("{code: five_off,", "{code: Five Off,", "FILE:20: rewards[1].code: String should match pattern"),
        ("points: 500}", "points: 0}", "FILE:20: rewards[1].points: Input should be greater than 0"),
        ("points: 500}", "points: 1.5}", "FILE:20: rewards[1].points: must be a whole number, not 1.5"),
        ("points: 500}", "points: true}", "FILE:20: rewards[1].points: must be a whole number, not true/false"),
        ("points: 500}", 'points: "500"}', "FILE:20: rewards[1].points: must be a whole number"),
        ("{code: five_off, name: \"5 off\", points: 500}", "{code: five_off, points: 500}",
         "FILE:20: rewards[1].name: required field is missing"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, old, new, expected):
    assert old in BASE
    assert error(tmp_path, BASE.replace(old, new, 1)).startswith(expected)


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("points: 50\n", "points: 0\n", "FILE:10: earn[1].points: Input should be greater than 0"),
        ("points: 50\n", "points: 1.5\n", "FILE:10: earn[1].points: must be a whole number, not 1.5"),
        ("event: email_signup", "event: Email Signup", "FILE:9: earn[1].event: String should match pattern"),
        ("event: review", "event: email_signup",
         "FILE:13: earn[2].event: event 'email_signup' already has a rule (earn[1])"),
        ("    limit: {count: 3, per: month}\n", "    limit: {count: 3, per: month}\n    once: true\n",
         "FILE:15: earn[2].limit: once and limit are mutually exclusive"),
        ("count: 3", "count: 0", "FILE:15: earn[2].limit.count: Input should be greater than 0"),
        ("per: month", "per: fortnight", "FILE:15: earn[2].limit.per: must be 'day', 'week', 'month' or 'year'"),
        ("referrer_points: 200", "referrer_points: -1",
         "FILE:17: earn[3].referrer_points: Input should be greater than or equal to 0"),
        ("  - rule: partner\n", "  - rule: referral\n  - rule: partner\n",
         "FILE:19: earn[4].rule: only one referral rule is allowed (earn[3])"),
        ("partner: hotel", "partner: hotel\n    points: 5", "FILE:21: earn[4].points: unknown field"),
        ("    partner: hotel\n", "", "FILE:19: earn[4].partner: required field is missing"),
        ("points_per_unit: 2\n", "points_per_unit: 2\n  - rule: partner\n    partner: hotel\n    points_per_unit: 3\n",
         "FILE:23: earn[5].partner: partner 'hotel' already has a rule (earn[4])"),
    ],
)
def test_rule_errors_name_file_line_and_field(tmp_path, old, new, expected):
    assert old in RULES
    assert error(tmp_path, with_rules(RULES.replace(old, new, 1))).startswith(expected)


# --- several files ----------------------------------------------------------------------


def test_load_paths_reads_directories_by_name_and_files(tmp_path):
    d = tmp_path / "progs"
    d.mkdir()
    write(d, BASE.replace("code: shop", "code: b"), "b.yml")
    write(d, BASE.replace("code: shop", "code: a"), "a.yaml")
    write(d, "not: a program", "notes.txt")
    single = write(tmp_path, BASE.replace("code: shop", "code: z"), "z.yaml")
    loaded = load_paths([str(d), single])
    assert [(path.rsplit("/", 1)[-1], p.code) for path, p in loaded] == [("a.yaml", "a"), ("b.yml", "b"), ("z.yaml", "z")]
    assert [p.code for _, p in load_paths([str(d), str(d / "a.yaml")])] == ["a", "b"]  # the same file once


def test_load_paths_validates_everything_first(tmp_path):
    write(tmp_path, BASE.replace("code: shop", "code: a"), "a.yaml")
    write(tmp_path, BASE.replace("code: shop", "code: b").replace("threshold: 1500", "threshold: 1"), "b.yaml")
    with pytest.raises(ProgramError, match=r"b\.yaml:15: tiers\.levels\[2\]\.threshold"):
        load_paths([str(tmp_path)])


def test_duplicate_code_across_files_names_both(tmp_path):
    a = write(tmp_path, BASE, "a.yaml")
    b = write(tmp_path, "# the same code again\n" + BASE, "b.yaml")
    with pytest.raises(ProgramError) as exc:
        load_paths([str(tmp_path)])
    assert str(exc.value) == f"{b}:2: code: program code 'shop' is also defined in {a}"


def test_load_paths_needs_programs(tmp_path):
    with pytest.raises(ProgramError, match="no program files"):
        load_paths([])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProgramError, match="no \\*.yaml"):
        load_paths([str(tmp_path / "empty")])
    with pytest.raises(ProgramError, match="no such file"):
        load_paths([str(tmp_path / "missing.yaml")])


# --- canonical JSON ---------------------------------------------------------------------


def test_canonical_json_round_trip_and_stability(tmp_path):
    p = load_program(write(tmp_path, with_rules() + 'cost_per_month: "250.00"\n'))
    text = to_canonical_json(p)
    assert from_json(text) == p
    assert to_canonical_json(from_json(text)) == text
    assert json.loads(text)["tiers"]["levels"][1]["multiplier"] == "1.1"  # Decimals as strings
    assert json.loads(text)["cost_per_month"] == "250"
    assert " " not in text.replace("Free coffee", "").replace("5 off", "")
    assert list(json.loads(text)) == sorted(json.loads(text))
    # spelling, key order, comments, flow or block style: all the same program
    respelt = (with_rules().replace("multiplier: 1.5", "multiplier: 1.50").replace("threshold: 500", "threshold: 5e2")
               .replace("code: shop\nname: Shop\n", "# comment\nname: Shop\ncode: shop\n") + 'cost_per_month: "250"\n')
    assert to_canonical_json(load_program(write(tmp_path, respelt, "q.yaml"))) == text
    # a real change is a different text
    changed = with_rules().replace("points: 150", "points: 151") + 'cost_per_month: "250.00"\n'
    assert to_canonical_json(load_program(write(tmp_path, changed, "r.yaml"))) != text


def test_every_example_round_trips():
    for _, p in load_paths([str(PROGRAMS)]):
        text = to_canonical_json(p)
        assert from_json(text) == p and to_canonical_json(from_json(text)) == text


def test_from_json_refuses_invalid_definitions():
    with pytest.raises(ProgramError):
        from_json("{")
    with pytest.raises(ProgramError):
        from_json('{"code": "x"}')


# --- look-ups ---------------------------------------------------------------------------

SPEND = """\
  - rule: spend
    points_per_unit: 5
    when: {tag: card_member}
  - rule: spend
    points_per_unit: 3
    when: {tag: student}
  - rule: spend
    points_per_unit: 4
    when: {tag: card_member}
"""


def test_spend_rule_is_the_first_match_in_file_order(tmp_path):
    # BASE's unconditional rule comes first, so it wins for everyone
    p = view(load_program(write(tmp_path, with_rules(SPEND))))
    assert pair(p.spend_rule({"card_member"})) == (0, p.earn[0])
    # with the conditional rules first, the first one that matches wins; the catch-all last
    text = BASE.replace("  - rule: spend\n    points_per_unit: 1\n", SPEND + "  - rule: spend\n    points_per_unit: 1\n")
    p = view(load_program(write(tmp_path, text)))
    assert pair(p.spend_rule({"card_member"})) == (0, p.earn[0])
    assert pair(p.spend_rule({"student", "card_member"})) == (0, p.earn[0])
    assert pair(p.spend_rule({"student"})) == (1, p.earn[1])
    assert p.spend_rule(set()).index == 3 and Decimal(p.spend_rule({"other"}).spec["points_per_unit"]) == 1
    # without a catch-all, a member without the tag earns nothing from spend
    p = view(load_program(write(tmp_path, BASE.replace("  - rule: spend\n    points_per_unit: 1\n", SPEND))))
    assert p.spend_rule(set()) is None


def test_rule_lookups(tmp_path):
    p = view(load_program(write(tmp_path, with_rules())))
    assert pair(p.event_rule("review")) == (2, p.earn[2]) and p.event_rule("nope") is None
    assert pair(p.referral_rule()) == (3, p.earn[3])
    assert pair(p.partner_rule("hotel")) == (4, p.earn[4]) and p.partner_rule("airline") is None
    assert p.rewards["five_off"]["points"] == 500 and p.rewards.get("nope") is None
    plain = view(load_program(write(tmp_path, BASE)))
    assert plain.referral_rule() is None and plain.event_rule("review") is None


def test_levels(tmp_path):
    p = view(load_program(write(tmp_path, BASE)))
    names = lambda total: p.level_for(Decimal(total)).name  # noqa: E731
    assert [names(t) for t in ("0", "499.99", "500", "500.01", "1499", "1500", "99999")] == [
        "Bronze", "Bronze", "Silver", "Silver", "Silver", "Gold", "Gold"]
    assert names("-5") == "Bronze"
    assert p.level("Silver").multiplier == Decimal("1.1") and p.level("Platinum") is None
    assert p.next_level(p.level("Bronze")).name == "Silver" and p.next_level(p.level("Silver")).name == "Gold"
    assert p.next_level(p.level("Gold")) is None and p.next_level(p.level("Platinum")) is None
    untiered = view(load_program(write(tmp_path, BASE.split("tiers:")[0])))
    assert untiered.level("Bronze") is None and untiered.next_level(untiered.level("Bronze")) is None
    with pytest.raises(ValueError):
        untiered.level_for(Decimal(1))
