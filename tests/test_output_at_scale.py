"""Long lists (issue 19): a first screen on a terminal with how many more and the whole
list's totals, --all for every row, --limit bounds, and JSON that streams to the same text."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from test_cli_ux import EXE, _on_terminal, env_without_config

AT = "2026-02-01T10:00:00Z"
MEMBERS = 60


@pytest.fixture
def crowd(tmp_path):
    """A ledger with MEMBERS members of coffee, each with a purchase."""
    db = tmp_path / "crowd.db"
    env = env_without_config(tmp_path, LOYALTYCTL_DB=str(db), LOYALTYCTL_NOW="2026-03-01T00:00:00Z")
    subprocess.run([EXE, "init"], env=env, check=True, capture_output=True)
    subprocess.run([EXE, "program", "apply", str(_coffee()), "--yes"], env=env, check=True, capture_output=True)
    members = tmp_path / "members.csv"
    members.write_text("member_id,program,name,joined_at\n" + "".join(
        f"M{i:03d},coffee,Member {i},2026-01-01T00:00:00Z\n" for i in range(MEMBERS)))
    subprocess.run([EXE, "import", "members", str(members)], env=env, check=True, capture_output=True)
    txns = tmp_path / "txns.csv"
    txns.write_text("txn_id,member_id,kind,occurred_at,amount\n" + "".join(
        f"T{i},M{i:03d},purchase,{AT},{i + 1}\n" for i in range(MEMBERS)))
    subprocess.run([EXE, "import", "transactions", str(txns)], env=env, check=True, capture_output=True)
    return env


def _coffee():
    from conftest import PROGRAMS

    return PROGRAMS / "coffee.yaml"


def _lines(out: bytes) -> list[str]:
    return out.decode().replace("\r\n", "\n").splitlines()


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_long_list_on_a_terminal_shows_a_first_screen_then_how_many_more(crowd):
    env = crowd | {"COLUMNS": "80", "LINES": "24", "NO_COLOR": "1", "TERM": "xterm"}
    lines = _lines(_on_terminal([EXE, "member", "list"], env))
    rows = [line for line in lines if line.startswith("M0")]
    assert len(rows) == 24 - 6 and rows[0].startswith("M000")
    more = [line for line in lines if "more members" in line]
    assert more == [f"... {MEMBERS - len(rows)} more members (of {MEMBERS}): --all shows them, or --format csv"]
    total = sum(json.loads(subprocess.run([EXE, "member", "list", "--format", "json"], env=crowd,
                                          capture_output=True, check=True).stdout)[i]["balance"] for i in range(MEMBERS))
    assert f"{MEMBERS} members, {total:,} points in all" in lines  # the whole list's totals, not the page's
    assert max(map(len, lines)) <= 80

    every = _lines(_on_terminal([EXE, "member", "list", "--all"], env))
    assert [line.split()[0] for line in every if line.startswith("M0")] == [f"M{i:03d}" for i in range(MEMBERS)]
    assert not any("more members" in line for line in every)

    limited = _lines(_on_terminal([EXE, "report", "balances", "--limit", "5"], env))
    assert len([line for line in limited if line.startswith("M0")]) == 5
    assert any(f"{MEMBERS - 5} more members" in line for line in limited)


def test_off_a_terminal_every_row_streams_and_limit_bounds_any_format(crowd):
    out = subprocess.run([EXE, "member", "list"], env=crowd, capture_output=True, text=True, check=True)
    assert len([line for line in out.stdout.splitlines() if line.startswith("M0")]) == MEMBERS
    assert "more members" not in out.stdout + out.stderr
    out = subprocess.run([EXE, "member", "list", "--limit", "7", "--format", "csv"], env=crowd, capture_output=True,
                         text=True, check=True)
    assert len(out.stdout.splitlines()) == 1 + 7 and f"{MEMBERS - 7} more members" in out.stderr
    out = subprocess.run([EXE, "report", "expiring", "--within", "400", "--limit", "3", "--format", "json"], env=crowd,
                         capture_output=True, text=True, check=True)
    assert len(json.loads(out.stdout)) == 3


@pytest.mark.parametrize("args", [
    ["member", "list", "--limit", "99999999999999999999"],
    ["member", "list", "--limit", "-1"],
    ["member", "list", "--limit", "0"],
    ["report", "expiring", "--limit", "1e9"],
    ["report", "at-risk", "--limit", "2000000000"],
    ["history", "M001", "--limit", "-5"],
    ["report", "balances", "--limit", "3", "--all"],
    ["member", "list", "--limit", "3", "--all"],
])
def test_limit_out_of_bounds_is_a_usage_error(crowd, args):
    out = subprocess.run([EXE, *args], env=crowd, capture_output=True, text=True)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert out.stdout == "" and out.stderr.strip().splitlines()[-1].startswith("Error:")


def test_json_lists_stream_to_the_same_text_as_one_document(crowd):
    from loyaltyctl import render

    for args in (["member", "list"], ["report", "expiring", "--within", "400"], ["report", "balances", "--all"],
                 ["history", "M001"], ["report", "at-risk"]):
        out = subprocess.run([EXE, *args, "--format", "json"], env=crowd, capture_output=True, text=True, check=True)
        assert out.stdout == render.dumps(json.loads(out.stdout)) + "\n", args


def test_write_json_list_matches_dumps_for_every_shape():
    import io
    from decimal import Decimal

    from loyaltyctl import render

    items = [{"a": 1, "b": None, "c": 'q"\\é\u2028\x1b', "d": True, "e": Decimal("1.50"), "f": [1, 2]},
             {"é": "ü", "n": -5, "z": False}, {}, {"x": {"y": [1, {"z": None}]}}, [1, "a"], "text", 3]
    for case in (items, [], items[:2], [{}], items[1:2]):
        out = io.StringIO()
        render.write_json_list(iter(case), out)
        assert out.getvalue() == render.dumps(case) + "\n"


def test_control_characters_in_stored_text_are_escaped_in_tables(crowd):
    import sqlite3

    conn = sqlite3.connect(crowd["LOYALTYCTL_DB"])
    conn.execute("UPDATE members SET name = ? WHERE member_id = 'M001'", ("\x1b[31mred\x07",))
    conn.commit()
    conn.close()
    out = subprocess.run([EXE, "member", "list", "--limit", "3"], env=crowd, capture_output=True, text=True, check=True)
    assert "\x1b" not in out.stdout and "\x07" not in out.stdout
    assert "\\x1b[31mred\\x07" in out.stdout
