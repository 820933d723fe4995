"""Shell completion: the committed scripts are current, and <TAB> completes commands,
options, and program/reward codes read from the database (through the real
`_LOYALTYCTL_COMPLETE` protocol, in a subprocess, as a shell would call it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXE = str(BIN / "loyaltyctl")
sys.path.insert(0, str(ROOT / "scripts"))

import gen_completions  # noqa: E402


@pytest.mark.parametrize("shell", sorted(gen_completions.FILES))
def test_committed_completion_scripts_are_current(shell):
    committed = (ROOT / "completions" / gen_completions.FILES[shell]).read_text(encoding="utf-8")
    assert committed == gen_completions.generate(shell), (
        f"completions/{gen_completions.FILES[shell]} is stale: run python scripts/gen_completions.py")


def test_zsh_script_starts_with_compdef():
    assert (ROOT / "completions" / "_loyaltyctl").read_text().splitlines()[0] == "#compdef loyaltyctl"


@pytest.fixture(scope="module")
def ledger(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("completion") / "c.db"
    env = dict(os.environ, LOYALTYCTL_DB=str(db))
    subprocess.run([EXE, "init"], env=env, check=True, capture_output=True)
    subprocess.run([EXE, "program", "apply", str(ROOT / "loyaltyctl" / "programs"), "--yes"], env=env,
                   check=True, capture_output=True)
    return db


def complete_bash(words: str, env_db: Path | None, cwd: Path | None = None) -> list[str]:
    parts = words.split(" ")
    env = {k: v for k, v in os.environ.items() if k != "LOYALTYCTL_DB"}
    env.update(_LOYALTYCTL_COMPLETE="complete_bash", COMP_WORDS=words, COMP_CWORD=str(len(parts) - 1))
    if env_db is not None:
        env["LOYALTYCTL_DB"] = str(env_db)
    out = subprocess.run([EXE], env=env, capture_output=True, text=True, cwd=cwd)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    return out.stdout.split()


def test_program_codes_come_from_the_database(ledger):
    assert complete_bash("loyaltyctl earn M1 --program c", ledger) == ["cashback", "club", "coffee"]
    assert complete_bash("loyaltyctl member enroll M1 -p ", ledger) == [
        "books", "cashback", "club", "coffee", "engage", "travel"]


def test_reward_codes_come_from_the_database(ledger):
    got = complete_bash("loyaltyctl redeem M1 --reward f", ledger)
    assert "free_coffee" in got and all(code.startswith("f") for code in got)


def test_db_flag_on_the_command_line_is_the_database_completed_from(ledger, tmp_path):
    assert complete_bash(f"loyaltyctl --db {ledger} earn M1 --program co", None, cwd=tmp_path) == ["coffee"]


def test_no_database_completes_nothing_and_creates_nothing(tmp_path):
    missing = tmp_path / "none.db"
    assert complete_bash("loyaltyctl earn M1 --program ", missing) == []
    assert not missing.exists()


def test_commands_and_options_complete(ledger):
    assert complete_bash("loyaltyctl mem", ledger) == ["member"]
    assert set(complete_bash("loyaltyctl report ", ledger)) >= {"balances", "expiring", "tiers"}
    assert "--format" in complete_bash("loyaltyctl member show M1 --f", ledger)


def test_zsh_and_fish_protocols(ledger):
    env = dict(os.environ, LOYALTYCTL_DB=str(ledger), _LOYALTYCTL_COMPLETE="complete_zsh",
               _TYPER_COMPLETE_ARGS="loyaltyctl earn M1 --program cof")
    zsh = subprocess.run([EXE], env=env, capture_output=True, text=True)
    assert zsh.returncode == 0 and '"coffee"' in zsh.stdout
    env.update(_LOYALTYCTL_COMPLETE="complete_fish", _TYPER_COMPLETE_FISH_ACTION="get-args")
    fish = subprocess.run([EXE], env=env, capture_output=True, text=True)
    assert fish.returncode == 0 and fish.stdout.split() == ["coffee"]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_installed_bash_script_completes_in_bash(ledger):
    """Source completions/loyaltyctl.bash as the README says and press <TAB> in a real bash."""
    script = (f'source {ROOT / "completions" / "loyaltyctl.bash"}\n'
              'COMP_WORDS=(loyaltyctl earn M1 --program co); COMP_CWORD=4\n'
              '_loyaltyctl_completion loyaltyctl\n'
              'printf "%s\\n" "${COMPREPLY[@]}"\n')
    env = dict(os.environ, LOYALTYCTL_DB=str(ledger), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    out = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["coffee"]
