"""One consistent CLI (issue 14): exit codes per command, help that says what it means,
completion from the database through bash itself, the configured default program,
output formats, safety prompts, and summaries that read as sentences."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commands import CASES, fill, foreign, leaves, ledger
from conftest import PROGRAMS, Cli, clean_env
from loyaltyctl.cli import app

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EXE = str(BIN / "loyaltyctl")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("contract")
    ledger(directory)
    foreign(directory / "foreign.db")
    return directory


@pytest.fixture
def world(base, tmp_path, monkeypatch) -> tuple[Cli, Path]:
    """A fresh copy of the module's ledger and files for one test, in the current directory."""
    for f in base.iterdir():
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.chdir(tmp_path)
    return Cli(tmp_path / "ledger.db"), tmp_path


def _places(c: Cli, d: Path) -> dict:
    return {"db": c.db, "dir": d, "foreign": d / "foreign.db"}


# --- exit codes -----------------------------------------------------------------------


def test_every_command_has_exit_code_cases():
    assert {name for name, _ in leaves()} == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_usage_errors_exit_2_and_business_errors_exit_1(world, name):
    c, d = world
    _, usage, business = CASES[name]
    before = c.db.read_bytes()
    err = c.usage(*fill(usage, **_places(c, d)))
    assert len(err) < 300
    assert c.db.read_bytes() == before
    err = c.fail(*fill(business, **_places(c, d)))
    assert "Traceback" not in err
    assert c.db.read_bytes() == before


# --- help --------------------------------------------------------------------------


def _help(*args: str) -> str:
    result = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.parametrize("name", sorted(CASES))
def test_help_shows_no_bool_metavar_and_one_argument_style(name):
    text = _help(*name.split())
    assert "<bool>" not in text
    usage = text[text.index("Usage:"):].splitlines()[0]
    words = [w.strip("{}[].") for w in usage.split()[2 + len(name.split()):] if w != "[OPTIONS]"]
    assert all(w.isupper() for w in words if w), usage


def test_points_and_score_show_int():
    for args in (("redeem",), ("adjust",), ("nps", "record")):
        text = _help(*args)
        line = next(x for x in text.splitlines() if "│" in x and ("--points" in x or "--score" in x))
        assert "<int>" in line, line


def test_option_help_says_what_each_command_does():
    assert "Expire what is due at this moment" in _help("expire")
    assert "default: all" not in _help("tiers", "set")
    text = _help("import", "transactions")
    assert "amount [partner]" in " ".join(text.split()) and "points [expires_at]" in " ".join(text.split())


def test_the_adjust_example_runs_as_written(world):
    c, _ = world
    example = _help("adjust").split("Example: loyaltyctl ")[1].splitlines()[0].strip()
    assert "--points=-50" in example
    import shlex

    args = shlex.split(example.replace("M00001", "M1"))
    assert c.json(*args)["points"] == -50


# --- completion, through bash -----------------------------------------------------------


COMPLETED = ("--program", "-p", "--tier", "--reward", "--event", "--partner")


def _expected(option: str, program: str | None = None) -> list[str]:
    import yaml

    defs = [yaml.safe_load(p.read_text()) for p in sorted(PROGRAMS.glob("*.yaml"))]
    defs = [d for d in defs if program in (None, d["code"])]
    values = {
        "--program": [d["code"] for d in defs],
        "--tier": [lv["name"] for d in defs for lv in (d.get("tiers") or {}).get("levels", [])],
        "--reward": [r["code"] for d in defs for r in d.get("rewards") or []],
        "--event": [r["event"] for d in defs for r in d["earn"] if r["rule"] == "event"],
        "--partner": [r["partner"] for d in defs for r in d["earn"] if r["rule"] == "partner"],
    }[option]
    return sorted(set(values))


def _completion_cases() -> list[tuple[str, str, list[str]]]:
    cases = []
    for name, cmd in leaves():
        for param in cmd.params:
            opts = [o for o in param.opts if o in COMPLETED]
            if opts:
                option = "--program" if opts[0] == "-p" else opts[0]
                cases.append((f"loyaltyctl {name} {option} ", option, _expected(option)))
    cases.append(("loyaltyctl program show ", "CODE", _expected("--program")))
    cases.append(("loyaltyctl member list -p coffee --tier ", "--tier", _expected("--tier", "coffee")))
    cases.append(("loyaltyctl redeem M1 -p books --reward vo", "--reward",
                  [r for r in _expected("--reward", "books") if r.startswith("vo")]))
    return cases


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_every_code_option_completes_from_the_database_in_bash(base, tmp_path):
    """Source the generated script in an interactive bash, find the function `complete -p`
    registered, and call it as bash's <TAB> does (COMP_WORDS, COMP_CWORD, COMP_LINE)."""
    cases = _completion_cases()
    assert len(cases) >= 30
    lines = [f'source {ROOT / "completions" / "loyaltyctl.bash"}',
             'fn=$(complete -p loyaltyctl | sed -n "s/.*-F \\([^ ]*\\) .*/\\1/p")',
             'echo "FUNCTION $fn"']
    for i, (line, _, _) in enumerate(cases):
        lines += [f"COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}",
                  'read -ra COMP_WORDS <<< "$COMP_LINE"',
                  '[[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")',
                  "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))",
                  'COMPREPLY=(); "$fn" loyaltyctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"',
                  f'echo "CASE {i} ${{COMPREPLY[*]}}"']
    env = clean_env(LOYALTYCTL_DB=str(base / "ledger.db"), PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                    HOME=str(tmp_path))
    out = subprocess.run(["bash", "--norc", "--noprofile", "-i", "-c", "\n".join(lines)], env=env,
                         capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    got = dict(x.split(" ", 2)[1:] if x.count(" ") > 1 else (x.split(" ")[1], "")
               for x in out.stdout.splitlines() if x.startswith("CASE "))
    assert "FUNCTION _loyaltyctl_completion" in out.stdout
    for i, (line, option, want) in enumerate(cases):
        assert want, line
        assert sorted(got[str(i)].split()) == want, (line, got[str(i)])


# --- the configured default program ---------------------------------------------------------


ASOF = ["--as-of", "2026-06-01T00:00:00Z"]  # the world's data is of 2026; "now" is pinned later
LISTS = [["member", "list", *ASOF], ["report", "balances", *ASOF], ["report", "tiers", *ASOF],
         ["report", "liability", *ASOF], ["report", "expiring", "--within", "800", *ASOF],
         ["report", "roi", "--until", "2026-06-01"], ["nps", "summary", "--by", "program"],
         ["export", "balances", "--format", "json", *ASOF]]


@pytest.mark.parametrize("how", ["environment", "file"])
def test_the_configured_program_applies_to_list_and_report_commands(world, how, monkeypatch):
    c, d = world
    c("earn", "M2", "--amount", "50", "--at", "2026-02-01T00:00:00Z")
    c("nps", "record", "M2", "--score", "9", "--at", "2026-02-01T00:00:00Z")
    c("nps", "record", "M1", "--score", "3", "--at", "2026-02-01T00:00:00Z")
    if how == "environment":
        monkeypatch.setenv("LOYALTYCTL_PROGRAM", "books")
    else:
        (d / "loyaltyctl.toml").write_text('program = "books"\n')
    for args in LISTS:
        rows = c.json(*args)
        programs = {r.get("program") or r.get("program_code") for r in rows}
        assert programs == {"books"}, (args, rows)
    # a flag still wins
    assert {r["program"] for r in c.json("member", "list", "--program", "coffee")} == {"coffee"}


def _takes_program(cmd) -> bool:
    return any("--program" in p.opts for p in cmd.params)


def test_an_unknown_configured_program_is_an_error_on_every_command_that_takes_one(world, monkeypatch):
    c, d = world
    monkeypatch.setenv("LOYALTYCTL_PROGRAM", "nope")
    names = [name for name, cmd in leaves() if _takes_program(cmd)]
    assert len(names) >= 20
    before = c.db.read_bytes()
    for name in names:
        valid = [a for a in fill(CASES[name][0], **_places(c, d)) if a not in ("-p", "coffee") or name == "tiers set"]
        if name == "member enroll":
            valid = ["member", "enroll", "M9"]
        err = c.fail(*valid)
        assert err.startswith("Error: LOYALTYCTL_PROGRAM: unknown program 'nope'"), (name, err)
    assert c.db.read_bytes() == before


# --- output formats -----------------------------------------------------------------------


def test_lists_are_json_arrays_and_semicolon_joined_in_csv(world):
    c, _ = world
    rows = {r["code"]: r for r in c.json("program", "list")}
    assert rows["coffee"]["tiers"] == ["Bronze", "Silver", "Gold"] and rows["books"]["tiers"] == []
    table = {r["code"]: r for r in csv.DictReader(io.StringIO(c("program", "list", "--format", "csv").stdout))}
    assert table["coffee"]["tiers"] == "Bronze;Silver;Gold" and table["books"]["tiers"] == ""


def test_a_missing_value_is_null_in_json_and_empty_in_csv(world):
    c, _ = world
    books = [r for r in c.json("report", "tiers") if r["program"] == "books"]
    assert [r["tier"] for r in books] == [None]
    rows = [r for r in csv.DictReader(io.StringIO(c("report", "tiers", "--format", "csv").stdout))
            if r["program"] == "books"]
    assert [r["tier"] for r in rows] == [""]


def test_export_refuses_table_format_and_writes_stdout_for_dash(world):
    c, d = world
    assert "'table' is not one of 'csv', 'json'" in c.usage("export", "ledger", "--format", "table")
    out = c("export", "ledger", "-o", "-")
    assert out.stdout.startswith("txn_id,") and "P1" in out.stdout
    assert not (d / "-").exists()


@pytest.mark.parametrize("args", [["explain", "P1"], ["verify"], ["expire", "--as-of", "2028-01-01", "--dry-run"],
                                  ["tiers", "review", "--dry-run"]])
def test_json_and_csv_carry_the_same_keys(world, args):
    c, _ = world
    data = c.json(*args)
    table = list(csv.DictReader(io.StringIO(c(*args, "--format", "csv").stdout)))
    assert len(table) == 1 and list(table[0]) == list(data)


@pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX pipes")
def test_export_piped_into_head_exits_quietly(tmp_path):
    db = tmp_path / "d.db"
    env = clean_env(LOYALTYCTL_DB=str(db))
    subprocess.run([EXE, "demo"], env=env, check=True, capture_output=True)
    out = subprocess.run(f"{EXE} export ledger | head -1; echo \"status ${{PIPESTATUS[0]}}\"", shell=True,
                         executable="bash", env=env, capture_output=True, text=True)
    assert out.stderr == ""
    first, status = out.stdout.splitlines()
    assert first.startswith("txn_id,") and status == "status 141"  # as if killed by SIGPIPE, like cat or git


# --- member show: one object when one program is chosen ---------------------------------------


def test_member_show_json_is_one_object_when_a_program_is_chosen(world, monkeypatch):
    c, _ = world
    c("member", "enroll", "M1", "-p", "books", "--at", "2026-01-01T09:00:00Z")
    assert isinstance(c.json("member", "show", "M1"), list)
    assert c.json("member", "show", "M1", "--program", "coffee", *ASOF)["balance"] == 100
    monkeypatch.setenv("LOYALTYCTL_PROGRAM", "books")
    assert c.json("member", "show", "M1")["program"] == "books"


def test_the_readme_balance_example_survives_a_second_program(tmp_path):
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("balance=$(loyaltyctl member show D0002"))
    env = clean_env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", HOME=str(tmp_path),
                    XDG_CONFIG_HOME=str(tmp_path / "xdg"))
    script = ("loyaltyctl demo > /dev/null\n"
              "loyaltyctl member enroll D0002 --program books --at 2026-06-01T00:00:00Z > /dev/null\n"
              f"{line}\necho \"$balance\"\n")
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                         text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().isdigit()


# --- safety ------------------------------------------------------------------------------


def _on_terminal(argv: list[str], env: dict, answer: bytes) -> tuple[int, bytes]:
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    answered = False
    while True:
        ready, _, _ = select.select([master], [], [], 10)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        if not answered and b"[y/N]" in out:
            os.write(master, answer)
            answered = True
    proc.wait(timeout=30)
    os.close(master)
    return proc.returncode, out


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_member_erase_asks_on_a_terminal(world):
    c, _ = world
    env = clean_env(LOYALTYCTL_DB=str(c.db), NO_COLOR="1")
    code, out = _on_terminal([EXE, "member", "erase", "M2"], env, b"n\n")
    assert code == 1 and b"This cannot be undone" in out and b"nothing erased" in out
    assert c.json("member", "show", "M2")["name"] == "Bob"
    code, out = _on_terminal([EXE, "member", "erase", "M2"], env, b"y\n")
    assert code == 0 and b"erased" in out
    assert c.json("member", "show", "M2")["name"] == "[erased]"
    code, out = _on_terminal([EXE, "member", "erase", "M1", "--yes"], env, b"n\n")
    assert code == 0 and b"[y/N]" not in out


def test_program_validate_reports_every_bad_file(tmp_path):
    for name in ("a.yaml", "c.yaml"):
        (tmp_path / name).write_text("code: x\nname: [unclosed\n")
    shutil.copy(PROGRAMS / "coffee.yaml", tmp_path / "b.yaml")
    result = Cli(tmp_path / "unused.db")("program", "validate", str(tmp_path), "--format", "json", ok=False)
    assert result.exit_code == 1
    errors = result.stderr.splitlines()
    assert len(errors) == 2 and all(e.startswith("Error: ") for e in errors)
    assert str(tmp_path / "a.yaml") in errors[0] and str(tmp_path / "c.yaml") in errors[1]
    assert [r["code"] for r in json.loads(result.stdout)] == ["coffee"]
    assert not (tmp_path / "unused.db").exists()


# --- grammar -----------------------------------------------------------------------------


def test_summaries_read_as_sentences(world):
    c, _ = world
    out = c("expire", "--as-of", "2027-02-01T00:00:00Z", "--dry-run").stdout.splitlines()[0]
    assert out.startswith("would expire 100 points in 1 lot of 1 member "), out
    c("adjust", "M1", "--points", "5", "--reason", "goodwill", "--txn", "AD1", "--at", "2026-03-01")
    assert "'AD1' is an adjustment" in c.fail("refund", "AD1")
