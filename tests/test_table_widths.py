"""Issue 14: at 60, 80 and 120 columns no number, id, date or amount is ever cut. Every table
command renders the demo ledger at each width; every value of its JSON rows that is not free
text (ids, numbers, amounts, dates, codes) and that the table shows when it has all the room
it wants (1,000 columns) must appear whole, on one line, at the narrow width too."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from loyaltyctl.cli import app
from loyaltyctl.render import TEXT_COLUMNS

SINCE = ["--since", "2029-01-01", "--until", "2030-01-01"]
COMMANDS = {
    "member list": ["member", "list", "--all"],
    "member show": ["member", "show", "D0002"],
    "history": ["history", "D0002", "--all"],
    "program list": ["program", "list"],
    "report balances": ["report", "balances"],
    "report tiers": ["report", "tiers"],
    "report liability": ["report", "liability"],
    "report roi": ["report", "roi", *SINCE],
    "report ticket": ["report", "ticket", *SINCE],
    "report churn": ["report", "churn", *SINCE],
    "report expiring": ["report", "expiring", "--within", "400", "--all"],
    "report at-risk": ["report", "at-risk", "--all"],
    "explain": ["explain", "DEMO-BASKET-1"],
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("widths") / "demo.db"
    result = CliRunner().invoke(app, ["--db", str(path), "demo"])
    assert result.exit_code == 0, result.output
    return path


def _run(db, args, **env):
    result = CliRunner().invoke(app, ["--db", str(db), *args], env={"NO_COLOR": "1", **env})
    assert result.exit_code == 0, (args, result.output)
    return result.stdout


def _atoms(data, key=None):
    """(column, text) of every value that must never be cut."""
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _atoms(v, k)
    elif isinstance(data, list):
        for v in data:
            yield from _atoms(v, key)
    elif data is not None and not isinstance(data, bool) and key not in TEXT_COLUMNS:
        text = str(data)
        if isinstance(data, (int, Decimal)) or (text and " " not in text and len(text) <= 24):
            yield key, text


def _tables_and_json(demo, name):
    args = COMMANDS[name]
    data = json.loads(_run(demo, [*args, "--format", "json"]))
    return args, data


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("columns", [60, 80, 120])
def test_no_number_id_date_or_amount_is_cut(demo, name, columns, monkeypatch):
    monkeypatch.setattr(shutil, "get_terminal_size", lambda fallback=(80, 24): __import__("os").terminal_size((columns, 24)))
    args, data = _tables_and_json(demo, name)
    wide = _run(demo, args, COLUMNS="1000").splitlines()
    shown = {(k, v) for k, v in _atoms(data) if any(v in line for line in wide)}
    assert len(shown) >= 3, (name, shown)  # the table does show the data
    out = _run(demo, args, COLUMNS=str(columns))
    assert "…" not in out, out
    lines = out.splitlines()
    if name != "explain":  # explain's arithmetic is prose, not a table
        assert max(len(line) for line in lines if not line.startswith("... ")) <= columns, out
    missing = sorted((k, v) for k, v in shown if not any(v in line for line in lines))
    assert not missing, f"{name} at {columns} columns lost {missing[:10]}\n{out[:3000]}"
