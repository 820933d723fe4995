"""Text typed by people (issue 14): names, reasons, comments, tags, member and transaction ids
hold no control characters and have one length limit per field, the same on the command
line (a usage error naming the option, nothing written) and in CSV imports (the row is
rejected naming the column); the README's table lists every limit."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conftest import ROOT
from loyaltyctl.core.values import TEXT_LIMITS

ENROLLED = "2026-01-01T00:00:00Z"
AT = "2026-02-01T10:00:00Z"
RED = "\x1b[31mred"


@pytest.fixture
def shop(coffee, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", ENROLLED)
    coffee("earn", "M1", "--amount", "50", "--txn", "P1", "--at", AT)
    return coffee


# (option, field, the command with {} where the value goes)
TYPED = [
    ("--name", "name", ["member", "enroll", "M2", "-p", "coffee", "--name", "{}"]),
    ("--email", "email", ["member", "enroll", "M2", "-p", "coffee", "--email", "{}"]),
    ("--account", "account", ["member", "enroll", "M2", "-p", "coffee", "--account", "{}"]),
    ("--tag", "tags", ["member", "enroll", "M2", "-p", "coffee", "--tag", "{}"]),
    ("--referred-by", "referred_by", ["member", "enroll", "M2", "-p", "coffee", "--referred-by", "{}"]),
    ("MEMBER_ID", "member_id", ["member", "enroll", "{}", "-p", "coffee"]),
    ("--name", "name", ["member", "update", "M1", "--name", "{}"]),
    ("--reason", "reason", ["adjust", "M1", "--points", "5", "--reason", "{}"]),
    ("--txn", "txn_id", ["earn", "M1", "--amount", "5", "--txn", "{}"]),
    ("--event", "event", ["earn", "M1", "--event", "{}"]),
    ("--reward", "reward", ["redeem", "M1", "--reward", "{}"]),
    ("TXN_ID", "ref_txn_id", ["refund", "{}"]),
    ("--reason", "reason", ["tiers", "set", "M1", "--tier", "Gold", "--reason", "{}"]),
    ("--comment", "comment", ["nps", "record", "M1", "--score", "9", "--comment", "{}"]),
    ("--response-id", "response_id", ["nps", "record", "M1", "--score", "9", "--response-id", "{}"]),
]


def _with(args: list[str], value: str) -> list[str]:
    return [value if a == "{}" else a for a in args]


@pytest.mark.parametrize("option, field, args", TYPED, ids=[f"{a[0]} {a[1]} {o}" for o, _, a in TYPED])
def test_control_characters_typed_on_the_command_line_are_refused(shop, option, field, args):
    dump = shop.dump()
    for value in (RED, "two\nlines", "tab\there", "bell\x07", "c1\x9bcsi"):
        err = shop.usage(*_with(args, value))
        assert f"'{option}'" in err and "control character" in err, err
        assert "\x1b" not in err and "\x9b" not in err
    assert shop.dump() == dump


@pytest.mark.parametrize("option, field, args", TYPED, ids=[f"{a[0]} {a[1]} {o}" for o, _, a in TYPED])
def test_one_length_limit_per_field_on_the_command_line(shop, option, field, args):
    limit = TEXT_LIMITS[field]
    dump = shop.dump()
    err = shop.usage(*_with(args, "x" * (limit + 1)))
    assert f"'{option}'" in err and f"longer than {limit:,} characters" in err, err
    assert len(err) < 200  # the value is not echoed
    assert shop.dump() == dump


def test_values_at_the_limit_are_kept_whole(shop):
    name, reason = "N" * TEXT_LIMITS["name"], "r" * TEXT_LIMITS["reason"]
    shop("member", "enroll", "M2", "-p", "coffee", "--name", f"  {name}  ", "--at", ENROLLED)
    shop("adjust", "M2", "--points", "5", "--reason", reason, "--txn", "A1", "--at", AT)
    assert shop.json("member", "show", "M2")["name"] == name  # surrounding blanks dropped, as in imports
    assert shop.json("explain", "A1")["explanation"][0] == f"manual adjustment: {reason}"
    shop("member", "update", "M2", "--name", "Zoë Ångström-Łukasz 王")  # printable text of any script
    assert shop.json("member", "show", "M2")["name"] == "Zoë Ångström-Łukasz 王"


def _import(shop, tmp_path: Path, kind: str, text: str) -> dict:
    path = tmp_path / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    r = shop("import", kind, str(path), "--format", "json", ok=None)
    assert r.exit_code in (0, 1) and "Traceback" not in r.stderr
    return json.loads(r.stdout)


def test_imports_apply_the_same_rule_and_limits(shop, tmp_path):
    limit = TEXT_LIMITS["reason"]
    data = _import(shop, tmp_path, "transactions", "txn_id,member_id,kind,occurred_at,points,reason\n"
                   f"A1,M1,adjust,{AT},5,{'r' * limit}\n"
                   f"A2,M1,adjust,{AT},5,{'r' * (limit + 1)}\n"
                   f"A3,M1,adjust,{AT},5,\"tab\there\"\n"
                   f"A4,M1,adjust,{AT},5,\x1b[31mred\n")
    assert data["applied"] == 1
    assert [(r["line"], r["error"]) for r in data["rejects"]] == [
        (3, f"reason: longer than {limit:,} characters ({limit + 1:,})"),
        (4, "reason: contains a control character (U+0009); only printable text is stored"),
        (5, "reason: contains a control character (U+001B); only printable text is stored"),
    ]
    name = TEXT_LIMITS["name"]
    data = _import(shop, tmp_path, "members", "member_id,program,name,tags\n"
                   f"M3,coffee,{'N' * name},\n"
                   f"M4,coffee,{'N' * (name + 1)},\n"
                   f"M5,coffee,ok,{'t' * (TEXT_LIMITS['tags'] + 1)}\n")
    assert data["applied"] == 1
    assert [r["error"] for r in data["rejects"]] == [f"name: longer than {name:,} characters ({name + 1:,})",
                                                     f"tags: longer than {TEXT_LIMITS['tags']:,} characters (65)"]
    comment = TEXT_LIMITS["comment"]
    data = _import(shop, tmp_path, "nps", "response_id,member_id,score,comment,answered_at\n"
                   f"R1,M1,9,\"tab\there\",{AT}\n")
    assert [r["error"] for r in data["rejects"]] == ["comment: contains a control character (U+0009); only "
                                                     "printable text is stored"]
    assert comment == 10_000


def test_the_readme_lists_every_text_limit():
    readme = (ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| `(\w+)` \| ([\d,]+) \|", readme, flags=re.M))
    assert {k: int(v.replace(",", "")) for k, v in table.items()} == TEXT_LIMITS
