"""The README's examples run, and it documents every command there is.

Example blocks are the ```sh blocks right after a `<!-- example -->` line. Each runs
with `bash -euo pipefail` in its own temporary directory holding a copy of the demo
ledger as ./loyalty.db and the example programs as ./programs, with the venv's bin
first on PATH and no configuration from the environment."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from conftest import clean_env
from loyaltyctl.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BIN = Path(sys.executable).parent
SETUP = ("python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/loyaltyctl demo\n"
         "python3 -m venv .venv && .venv/bin/pip install '.[test]' && .venv/bin/pytest\n")


def examples() -> list[str]:
    return re.findall(r"^<!-- example -->\n```sh\n(.*?)^```", README, flags=re.S | re.M)


def test_readme_starts_with_the_two_setup_commands():
    first = re.search(r"```sh\n(.*?)```", README, flags=re.S)
    assert first.group(1) == SETUP
    assert README.index("```sh\n" + SETUP) < README.index("\n## ")


def test_readme_has_the_sections_operators_scripters_and_cron_need():
    for heading in ("## For operators: daily commands", "## For scripters: JSON, CSV and exit codes",
                    "## Running from cron", "## Configuration", "## Shell completion", "### Exit codes"):
        assert f"\n{heading}\n" in README, heading
    assert len(examples()) >= 10


def test_readme_documents_every_command():
    def leaves(cmd, path=()):
        subs = getattr(cmd, "commands", None)
        if not subs:
            yield " ".join(path)
            return
        for name, sub in subs.items():
            yield from leaves(sub, (*path, name))

    missing = [name for name in leaves(typer.main.get_command(app)) if f"`loyaltyctl {name}`" not in README]
    assert not missing, f"README's 'All commands' table lacks: {missing}"


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "loyalty.db"
    subprocess.run([str(BIN / "loyaltyctl"), "--db", str(path), "demo"], check=True, capture_output=True)
    return path


def _walkthrough_dir(demo_db: Path, tmp_path: Path) -> dict:
    """The directory a reader follows the README in: the demo ledger and the programs; returns the environment."""
    shutil.copy(demo_db, tmp_path / "loyalty.db")
    (tmp_path / "programs").symlink_to(ROOT / "loyaltyctl" / "programs")
    env = clean_env()  # the pinned clock, no NO_COLOR, no user configuration
    env.update(PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", HOME=str(tmp_path),
               XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    return env


def _run(block: str, cwd: Path, env: dict) -> None:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=cwd, env=env,
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, f"{block}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("block", examples(), ids=lambda b: b.splitlines()[0][:50])
def test_readme_example_runs(block, demo_db, tmp_path):
    _run(block, tmp_path, _walkthrough_dir(demo_db, tmp_path))


def test_the_walkthrough_in_one_directory_leaves_no_configuration_behind(demo_db, tmp_path):
    """A reader runs the examples one after another in one directory: none may leave a
    loyaltyctl.toml (a default program or ledger) that changes the examples after it."""
    env = _walkthrough_dir(demo_db, tmp_path)
    for block in examples():
        _run(block, tmp_path, env)
        left = [p for p in (tmp_path / "loyaltyctl.toml", tmp_path / "xdg" / "loyaltyctl" / "loyaltyctl.toml")
                if p.exists()]
        assert not left, f"this example leaves {left[0].name} behind:\n{block}"


def test_every_guarantee_names_tests_that_exist():
    section = README[README.index("\n## Guarantees\n"):]
    section = section[:section.index("\n## ", 5)]
    bullets = re.split(r"\n- \*\*", section)[1:]
    assert len(bullets) >= 10
    for bullet in bullets:
        refs = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", bullet)
        assert refs, f"this guarantee names no test: {bullet[:80]}"
        for path, name in refs:
            source = (ROOT / path).read_text(encoding="utf-8")
            assert re.search(rf"^(def|class) {name}\b", source, flags=re.M), f"{path}::{name} does not exist"


def test_the_demo_builds_in_the_morning(tmp_path, monkeypatch):
    # The demo's "today" was noon of the current day: before 12:00 UTC its jobs ran at a
    # moment still to come, and `loyaltyctl demo` failed on a fresh machine every morning.
    from conftest import Cli

    monkeypatch.setenv("LOYALTYCTL_NOW", "2030-01-01T06:30:00Z")
    c = Cli(tmp_path / "demo.db")
    c("demo")
    assert c("verify").exit_code == 0
    assert len(c.json("member", "list", "--all")) > 200


@pytest.mark.parametrize("hour, day", [("00:00:00", 31), ("11:59:59", 31), ("12:00:00", 1), ("23:59:59", 1)])
def test_the_demos_today_is_the_latest_noon_already_past(hour, day):
    from datetime import datetime

    from loyaltyctl.app.demo import _last_noon

    today = _last_noon(datetime.fromisoformat(f"2030-01-01T{hour}+00:00"))
    assert (today.day, today.hour, today.minute, today.second) == (day, 12, 0, 0)
