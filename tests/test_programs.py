"""Program files: the schema, line-numbered errors, YAML 1.1 pitfalls, canonical form."""

from __future__ import annotations

from decimal import Decimal

import pytest

from conftest import PROGRAMS
from loyaltyctl.errors import ProgramError
from loyaltyctl.programs import from_json, load_paths, load_program, to_canonical_json

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
  levels:
    - {name: Bronze, threshold: 0}
    - {name: Silver, threshold: 500, multiplier: 1.1}
    - {name: Gold, threshold: 1500, multiplier: 1.5}
"""


def write(tmp_path, text, name="p.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def error(tmp_path, text) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ProgramError) as exc:
        load_program(path)
    return str(exc.value).replace(path, "FILE")


def test_every_example_loads():
    loaded = load_paths([str(PROGRAMS)])
    assert {p.code for _, p in loaded} == {"coffee", "books", "cashback", "engage", "travel", "club"}


def test_numbers_are_exact_and_yaml11_pitfalls_avoided(tmp_path):
    p = load_program(write(tmp_path, BASE))
    assert p.tiers.levels[1].multiplier == Decimal("1.1")
    text = BASE.replace("name: Shop", "name: NO").replace("code: shop", "code: '01234'")
    p = load_program(write(tmp_path, text))
    assert p.name == "NO" and p.code == "01234"


@pytest.mark.parametrize(
    "old, new, expected",
    [
        ("threshold: 1500", "threshold: 400", "FILE:14: tiers.levels[2].threshold: must be greater than Silver's 500"),
        ("threshold: 0}", "threshold: 10}", "FILE:12: tiers.levels[0].threshold: the first level must have threshold 0"),
        ("points_per_unit: 1", "points_per_unit: -1", "FILE:7: earn[0].points_per_unit: Input should be greater than or equal to 0"),
        ("currency: GBP", "currency: pounds", "FILE:3: currency: String should match pattern '^[A-Z]{3}$'"),
        ("window_days: 365", "window_days: 365\n  colour: red", "FILE:11: tiers.colour: unknown field"),
        ("code: shop\n", "", "FILE:1: code: required field is missing"),
        ("rule: spend", "rule: bonus", "FILE:6: earn[0]"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, old, new, expected):
    assert error(tmp_path, BASE.replace(old, new, 1)).startswith(expected)


def test_integer_fields_reject_fractions_and_booleans(tmp_path):
    text = BASE + "rewards:\n  - {code: x, name: X, points: 1.5}\n"
    assert "rewards[0].points" in error(tmp_path, text)
    text = BASE + "rewards:\n  - {code: x, name: X, points: true}\n"
    assert "rewards[0].points" in error(tmp_path, text)


def test_duplicate_keys_and_aliases_refused(tmp_path):
    assert "FILE:3: name: duplicate key 'name'" in error(tmp_path, "code: a\nname: A\nname: B\n")
    bomb = 'a: &a ["x","x"]\nb: &b [*a,*a]\nc: &c [*b,*b]\n'
    assert "aliases are not allowed" in error(tmp_path, bomb)


def test_file_problems(tmp_path):
    assert "no such file" in str(pytest.raises(ProgramError, load_program, str(tmp_path / "none.yaml")).value)
    assert "mapping" in error(tmp_path, "- just\n- a list\n")
    assert "empty" in error(tmp_path, "")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    assert "UTF-8" in str(pytest.raises(ProgramError, load_program, str(tmp_path / "bin.yaml")).value)


def test_duplicate_code_across_files(tmp_path):
    write(tmp_path, BASE, "a.yaml")
    write(tmp_path, BASE, "b.yaml")
    with pytest.raises(ProgramError, match="also defined in"):
        load_paths([str(tmp_path)])


def test_canonical_json_round_trip_and_number_spelling(tmp_path):
    p = load_program(write(tmp_path, BASE))
    q = load_program(write(tmp_path, BASE.replace("multiplier: 1.5", "multiplier: 1.50"), "q.yaml"))
    assert to_canonical_json(p) == to_canonical_json(q)  # 1.5 and 1.50 are the same program
    assert to_canonical_json(from_json(to_canonical_json(p))) == to_canonical_json(p)
