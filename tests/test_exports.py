"""Exports of the ledger, members and balances: CSV and JSON, filters, formula-safe cells."""

from __future__ import annotations

import csv
import io
import json

from test_imports import write


def setup(coffee, tmp_path):
    coffee("member", "enroll", "M1", "--program", "coffee", "--at", "2026-01-01T00:00:00Z", "--tag", "=HYPERLINK(x)")
    coffee("member", "enroll", "E1", "--program", "engage", "--at", "2026-01-01T00:00:00Z", "--name", "@evil")
    coffee("import", "transactions", write(tmp_path, """txn_id,member_id,kind,occurred_at,amount,points,reason,event
p1,M1,purchase,2026-02-01T10:00:00Z,600,,,
a1,M1,adjust,2026-02-02T10:00:00Z,,-60,+cmd|' /C calc'!A0,
-x,M1,adjust,2026-02-03T10:00:00Z,,10,goodwill,
e1,E1,event,2026-02-04T10:00:00Z,,,,email_signup
"""))


def parse(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def test_ledger_csv_has_the_contract_columns_and_neutralises_formulas(coffee, tmp_path):
    setup(coffee, tmp_path)
    rows = parse(coffee("export", "ledger").stdout)
    for column in ("txn_id", "member_id", "program", "kind", "points", "effective_at", "recorded_at"):
        assert column in rows[0]
    by_txn = {r["txn_id"]: r for r in rows}
    assert set(by_txn) == {"p1", "a1", "'-x", "e1"}  # a txn id starting with - is text, so neutralised
    assert by_txn["a1"]["points"] == "-60"  # a well-formed number is left alone
    assert by_txn["a1"]["reason"] == "'+cmd|' /C calc'!A0"
    assert by_txn["'-x"]["reason"] == "goodwill"
    assert by_txn["p1"]["points"] == "600" and by_txn["p1"]["amount"] == "600.00"
    assert by_txn["e1"]["program"] == "engage" and by_txn["e1"]["event"] == "email_signup"
    assert by_txn["p1"]["effective_at"] == "2026-02-01T10:00:00Z"


def test_ledger_json_keeps_values_as_they_are(coffee, tmp_path):
    setup(coffee, tmp_path)
    rows = json.loads(coffee("export", "ledger", "--format", "json").stdout)
    by_txn = {r["txn_id"]: r for r in rows}
    assert by_txn["a1"]["points"] == -60 and by_txn["a1"]["reason"] == "+cmd|' /C calc'!A0"
    assert "-x" in by_txn


def test_program_and_as_of_filters(coffee, tmp_path):
    setup(coffee, tmp_path)
    rows = json.loads(coffee("export", "ledger", "--program", "engage", "--format", "json").stdout)
    assert [r["txn_id"] for r in rows] == ["e1"]
    rows = json.loads(coffee("export", "ledger", "--as-of", "2026-02-02T10:00:00Z", "--format", "json").stdout)
    assert [r["txn_id"] for r in rows] == ["p1", "a1"]
    assert "unknown program 'nope'" in coffee.fail("export", "ledger", "--program", "nope")
    assert "'everything' is not one of 'ledger', 'members', 'balances'" in coffee.usage("export", "everything")


def test_members_and_balances(coffee, tmp_path):
    setup(coffee, tmp_path)
    members = {r["member_id"]: r for r in parse(coffee("export", "members").stdout)}
    assert members["M1"]["tags"] == "'=HYPERLINK(x)" and members["E1"]["name"] == "'@evil"
    assert members["M1"]["tier"] == "Silver"
    balances = json.loads(coffee("export", "balances", "--as-of", "2026-03-01T00:00:00Z", "--format", "json").stdout)
    assert {b["member_id"]: (b["balance"], b["value"], b["tier"]) for b in balances} == {
        "M1": (600 - 60 + 10, "5.50", "Silver"), "E1": (50, "0.50", None)}
    only = parse(coffee("export", "balances", "--program", "engage").stdout)
    assert [r["member_id"] for r in only] == ["E1"]


def test_output_file(coffee, tmp_path):
    setup(coffee, tmp_path)
    result = coffee("export", "ledger", "--output", tmp_path / "out.csv")
    assert result.stdout == "" and "exported 4 ledger rows" in result.stderr
    assert len(parse((tmp_path / "out.csv").read_text())) == 4
    coffee("export", "members", "--format", "json", "--output", tmp_path / "m.json")
    assert len(json.loads((tmp_path / "m.json").read_text())) == 2
    assert "--output" in coffee.fail("export", "ledger", "--output", tmp_path / "no" / "dir.csv")


def test_empty_exports(coffee):
    assert coffee("export", "ledger").stdout.splitlines()[0].startswith("txn_id,member_id,program,kind")
    assert json.loads(coffee("export", "ledger", "--format", "json").stdout) == []


def test_ledger_points_sum_to_the_balance(coffee, tmp_path):
    """Every point of the balance is in the export: 600 - 60 + 10."""
    setup(coffee, tmp_path)
    rows = json.loads(coffee("export", "ledger", "--program", "coffee", "--format", "json").stdout)
    assert sum(r["points"] for r in rows) == 550


def test_tab_and_carriage_return_cells_are_neutralised_numbers_are_not():
    from loyaltyctl.app import exports

    out = io.StringIO()
    exports.write(["a", "b", "c", "d", "e"], [{"a": "\tx", "b": "\ry", "c": "-60", "d": "+1.5", "e": "-"}], "csv", out)
    assert parse(out.getvalue()) == [{"a": "'\tx", "b": "'\ry", "c": "-60", "d": "+1.5", "e": "'-"}]
