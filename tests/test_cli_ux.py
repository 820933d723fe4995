"""Operator experience: help that teaches, consistent output and exit codes, plain text
off a terminal, configuration precedence, start-up imports, and JSON that agrees with
CSV for every data command."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from conftest import PROGRAMS, Cli, clean_env
from loyaltyctl.cli import app

BIN = Path(sys.executable).parent
EXE = str(BIN / "loyaltyctl")
ROOT = Path(__file__).resolve().parent.parent
# Commands that act and print one line; every other command is a data command.
ACTIONS = {"init", "demo", "backup", "restore"}


def leaves(cmd=None, path=()):
    cmd = cmd or typer.main.get_command(app)
    subs = getattr(cmd, "commands", None)
    if not subs:
        yield " ".join(path), cmd
        return
    for name, sub in subs.items():
        yield from leaves(sub, (*path, name))


def env_without_config(tmp_path: Path, **extra) -> dict:
    env = clean_env()  # the pinned clock, no NO_COLOR, no user configuration
    env.update(XDG_CONFIG_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path), **extra)
    return env


def run(args, tmp_path, **env):
    return subprocess.run([EXE, *map(str, args)], cwd=tmp_path, env=env_without_config(tmp_path, **env),
                          capture_output=True, text=True)


# --- help -------------------------------------------------------------------------


def test_every_command_help_has_a_one_line_summary_and_an_example():
    found = list(leaves())
    assert len(found) >= 25
    for name, cmd in found:
        text = cmd.help or ""
        summary = text.strip().splitlines()[0]
        assert summary.endswith((".", ")")) and len(summary) <= 120, f"{name}: summary {summary!r}"
        assert "Example" in text, f"`loyaltyctl {name} --help` has no example"
        example = text[text.index("Example"):].split(":", 1)[1].strip().splitlines()[0]
        assert example.startswith("loyaltyctl"), f"{name}: example {example!r}"


def test_root_help_groups_commands_in_a_sensible_order_and_documents_exit_codes():
    out = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "100"}).stdout
    panels = [p for p in ("Members", "Transactions", "Programs", "Import and export", "Jobs", "Reports", "Admin")]
    positions = [out.index(f"─ {p} ") for p in panels]
    assert positions == sorted(positions)
    assert "0 ok, 1 business or input error" in out and "2 usage error" in out
    assert "--install-completion" not in out  # completion works through the env var protocol instead


def test_every_data_command_offers_table_json_and_csv():
    for name, cmd in leaves():
        if name in ACTIONS:
            continue
        fmt = [p for p in cmd.params if "--format" in p.opts]
        assert fmt, f"{name} has no --format"
        choices = {getattr(c, "value", c) for c in fmt[0].type_descriptor.choices}
        # export streams any number of rows: CSV or JSON only (--format table is a usage error)
        assert choices == ({"json", "csv"} if name == "export" else {"table", "json", "csv"}), name


# --- exit codes and streams -----------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["no-such-command"],
    ["member", "show"],                            # missing argument
    ["member", "show", "M1", "--format", "xml"],   # bad choice
    ["report", "balances", "--limit", "ten"],      # not an integer
    ["earn", "M1", "--no-such-option"],
    [],                                            # no command: help, exit 2
])
def test_usage_errors_exit_2_with_the_message_on_stderr(tmp_path, args):
    result = run(args, tmp_path, LOYALTYCTL_DB=str(tmp_path / "x.db"))
    assert result.returncode == 2, result
    assert "Usage: loyaltyctl" in result.stderr + result.stdout
    if args:
        assert result.stdout == ""
    assert not (tmp_path / "x.db").exists()


def test_business_errors_exit_1_with_one_line_on_stderr(tmp_path):
    db = tmp_path / "x.db"
    assert run(["init"], tmp_path, LOYALTYCTL_DB=str(db)).returncode == 0
    result = run(["member", "show", "NOBODY"], tmp_path, LOYALTYCTL_DB=str(db))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == "Error: unknown member 'NOBODY'\n"


def test_data_on_stdout_and_diagnostics_on_stderr(coffee, tmp_path):
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", "2026-01-01")
    result = coffee("export", "members", "--output", str(tmp_path / "m.csv"))
    assert result.stdout == "" and result.stderr == f"exported 1 members rows to {tmp_path / 'm.csv'}\n"
    bad = tmp_path / "t.csv"
    bad.write_text("txn_id,member_id,kind,occurred_at,amount\nT1,M1,purchase,2026-02-01,5\nT2,M1,purchase,2026-02-01,x\n")
    result = coffee("import", "transactions", str(bad), "--format", "json", ok=False)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["applied"] == 1  # stdout stays machine-readable
    assert result.stderr.startswith(f"{bad}:3: ")


def test_output_off_a_terminal_has_no_ansi_escapes(tmp_path):
    db = tmp_path / "d.db"
    assert run(["demo"], tmp_path, LOYALTYCTL_DB=str(db)).returncode == 0
    for args in (["member", "show", "D0002"], ["report", "tiers"], ["--help"], ["member", "show", "-h"],
                 ["report", "balances", "--limit", "x"]):
        result = run(args, tmp_path, LOYALTYCTL_DB=str(db))
        assert "\x1b" not in result.stdout + result.stderr, args


def _on_terminal(argv: list[str], env: dict) -> bytes:
    import pty

    master, slave = pty.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    proc.wait()
    os.close(master)
    return out


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_no_color_gives_plain_text_on_a_terminal(tmp_path):
    db = tmp_path / "d.db"
    assert run(["demo"], tmp_path, LOYALTYCTL_DB=str(db)).returncode == 0
    for args in (["member", "show", "D0002"], ["--help"], ["report", "balances", "--limit", "x"]):
        styled = _on_terminal([EXE, *args], env_without_config(tmp_path, LOYALTYCTL_DB=str(db), TERM="xterm"))
        assert b"\x1b[" in styled, args  # a terminal gets styles...
        plain = _on_terminal([EXE, *args], env_without_config(tmp_path, LOYALTYCTL_DB=str(db), TERM="xterm",
                                                                NO_COLOR="1"))
        assert b"\x1b" not in plain, args
        assert any(word in plain for word in (b"Usage", b"D0002")), plain[:300]


# --- start-up -------------------------------------------------------------------------


HEAVY = ("pydantic", "yaml", "csv", "sqlite_utils", "rich", "psycopg")


def loaded_modules(args: list[str], env: dict) -> tuple[set[str], str]:
    code = ("import runpy, sys\n"
            f"sys.argv = ['loyaltyctl', *{args!r}]\n"
            "try:\n    runpy.run_module('loyaltyctl', run_name='__main__')\n"
            "except SystemExit as exc:\n    assert not exc.code, exc.code\n"
            "print('MODULES', *sorted({m.split('.')[0] for m in sys.modules}))\n"
            "print('SUBMODULES', *sorted(m for m in sys.modules if '.' in m))\n")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    line = [x for x in out.stdout.splitlines() if x.startswith("MODULES ")][-1]
    return set(line.split()[1:]), out.stdout


def test_everyday_commands_do_not_import_heavy_modules(tmp_path):
    env = env_without_config(tmp_path, LOYALTYCTL_DB=str(tmp_path / "d.db"))
    assert run(["demo"], tmp_path, LOYALTYCTL_DB=str(tmp_path / "d.db")).returncode == 0
    for args in (["member", "show", "D0002", "--format", "json"], ["earn", "D0002", "--amount", "5"],
                 ["--version"]):
        modules, stdout = loaded_modules(args, env)
        assert not modules & set(HEAVY), (args, sorted(modules & set(HEAVY)))
    modules, stdout = loaded_modules(["member", "show", "D0002", "--format", "json"], env)
    assert '"member_id": "D0002"' in stdout
    # the table is plain text (issue 19): not even Rich
    modules, _ = loaded_modules(["member", "show", "D0002"], env)
    assert not modules & set(HEAVY), sorted(modules & set(HEAVY))


def test_help_pages_skip_typers_rich_utils_and_markdown(tmp_path):
    env = env_without_config(tmp_path, LOYALTYCTL_DB=str(tmp_path / "d.db"))
    for args in (["--help"], ["member", "show", "--help"]):
        _, stdout = loaded_modules(args, env)
        submodules = set([x for x in stdout.splitlines() if x.startswith("SUBMODULES ")][-1].split()[1:])
        assert "Usage" in stdout and "rich.table" in submodules, args
        assert not submodules & {"typer.rich_utils", "rich.markdown", "rich.traceback"}, args


def test_fast_path_runs_the_same_commands_as_the_full_app(tmp_path):
    """main() builds only the named command group; options before it and odd spellings still work."""
    db = tmp_path / "d.db"
    assert run(["--db", db, "init"], tmp_path).returncode == 0
    assert run([f"--db={db}", "program", "apply", PROGRAMS / "coffee.yaml", "--yes"], tmp_path).returncode == 0
    assert run(["--db", db, "member", "enroll", "M1", "-p", "coffee"], tmp_path).returncode == 0
    out = run(["--db", db, "earn", "M1", "--amount", "12.50", "--format", "json"], tmp_path)
    assert json.loads(out.stdout)["points"] == 12
    assert run(["--version"], tmp_path).stdout == "loyaltyctl 0.1.0\n"
    assert "member" in run(["-h"], tmp_path).stdout and "report" in run(["--db", db, "--help"], tmp_path).stdout


# --- configuration ----------------------------------------------------------------------


def test_narrowed_app_gives_the_full_apps_help_and_usage_errors():
    """main() builds only the command (or group subcommand) named; every help page and
    usage error it prints must be the full app's, word for word."""
    from loyaltyctl import cli

    runner = CliRunner()
    argvs = [["--help"], ["-h"], ["--db", "x.db", "--help"], ["member", "shw", "M1"], ["member", "show"],
             ["member", "show", "M1", "--bogus"], ["earn", "--amount", "x"], ["db", "--help"], ["nope"]]
    argvs += [[*path.split(), "--help"] for path, _ in leaves()]
    argvs += [[group, "--help"] for group in ("member", "program", "report", "nps", "tiers", "import", "db")]
    for argv in argvs:
        narrowed = cli._only(app, argv)
        whole = runner.invoke(app, argv, terminal_width=80)
        part = runner.invoke(narrowed, argv, terminal_width=80)
        assert (part.exit_code, part.output) == (whole.exit_code, whole.output), argv
    assert len(typer.main.get_command(cli._only(app, ["member", "show", "M1"])).commands["member"].commands) == 1


def test_database_flag_beats_environment_beats_file(tmp_path):
    (tmp_path / "loyaltyctl.toml").write_text('db = "from-file.db"\n')
    assert run(["init"], tmp_path).returncode == 0
    assert (tmp_path / "from-file.db").exists()
    assert run(["init"], tmp_path, LOYALTYCTL_DB="from-env.db").returncode == 0
    assert (tmp_path / "from-env.db").exists()
    assert run(["--db", "from-flag.db", "init"], tmp_path, LOYALTYCTL_DB="from-env.db").returncode == 0
    assert (tmp_path / "from-flag.db").exists()
    assert not (tmp_path / "loyalty.db").exists()


def test_user_config_file_under_xdg_config_home(tmp_path):
    (tmp_path / "xdg" / "loyaltyctl").mkdir(parents=True)
    (tmp_path / "xdg" / "loyaltyctl" / "loyaltyctl.toml").write_text(f'db = "{tmp_path / "user.db"}"\n')
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run([EXE, "init"], cwd=work, env=env_without_config(tmp_path), capture_output=True, text=True)
    assert result.returncode == 0 and (tmp_path / "user.db").exists()
    # a loyaltyctl.toml in the current directory wins over the user's
    (work / "loyaltyctl.toml").write_text('db = "local.db"\n')
    subprocess.run([EXE, "init"], cwd=work, env=env_without_config(tmp_path), check=True, capture_output=True)
    assert (work / "local.db").exists()


def test_default_program_flag_beats_environment_beats_file(tmp_path):
    (tmp_path / "loyaltyctl.toml").write_text('db = "l.db"\nprogram = "books"\n')
    assert run(["init"], tmp_path).returncode == 0
    assert run(["program", "apply", PROGRAMS, "--yes"], tmp_path).returncode == 0

    def enrolled(member, *flags, **env):
        result = run(["member", "enroll", member, *flags, "--format", "json"], tmp_path, **env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)["program"]

    assert enrolled("M1") == "books"
    assert enrolled("M2", LOYALTYCTL_PROGRAM="coffee") == "coffee"
    assert enrolled("M3", "--program", "club", LOYALTYCTL_PROGRAM="coffee") == "club"


@pytest.mark.parametrize("content, message", [
    ('db = "unterminated\n', "loyaltyctl.toml: "),
    ('database = "x.db"\n', "loyaltyctl.toml: unknown setting(s) database (known: db, program)"),
    ("db = 5\n", "loyaltyctl.toml: db: must be a string"),
])
def test_bad_config_file_is_one_line_error(tmp_path, content, message):
    (tmp_path / "loyaltyctl.toml").write_text(content)
    result = run(["member", "list"], tmp_path)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: " + message) and result.stderr.count("\n") == 1, result.stderr
    assert not any(tmp_path.glob("*.db"))


# --- JSON agrees with CSV for every data command ------------------------------------------


def _rows(data):
    return data if isinstance(data, list) else [data]


def _plan_rows(data):
    return [dict(code=p["code"], **c) for p in data for c in p["changes"]]


def _summary(data):
    return [{k: v for k, v in data.items() if k not in ("rejects", "effects")}]


AT = ["--at", "2026-03-01T10:00:00Z"]
# command -> (arguments, JSON -> rows the CSV must carry, keys allowed to differ between two runs,
#             whether CSV may show a subset of the JSON keys)
CASES = {
    "history": (["history", "M1"], _rows, (), False),
    "explain": (["explain", "T1"], _rows, (), False),
    "earn": (["earn", "M1", "--amount", "12.50", "--txn", "T9", *AT], _rows, (), False),
    "redeem": (["redeem", "M1", "--points", "5", "--txn", "R9", *AT], _rows, (), False),
    "refund": (["refund", "T1", "--amount", "10", "--txn", "F9", *AT], _rows, (), False),
    "adjust": (["adjust", "M1", "--points", "7", "--reason", "goodwill", "--txn", "A9", *AT], _rows, (), False),
    "export": (["export", "ledger"], _rows, (), False),
    "verify": (["verify"], _rows, ("path",), False),  # the twins live in two files
    "db copy": (["db", "copy", "TWIN", "COPY"], _rows, ("target",), False),  # each run copies to a file of its own
    "member enroll": (["member", "enroll", "M9", "-p", "coffee", "--name", "Ada", *AT], _rows, (), False),
    "member show": (["member", "show", "M1", "--as-of", "2026-06-01"], _rows, (), False),
    "member list": (["member", "list", "--as-of", "2026-06-01"], _rows, (), False),
    "member find": (["member", "find", "m"], _rows, (), False),
    "member erase": (["member", "erase", "M2"], _rows, ("erased_at",), False),
    "member update": (["member", "update", "M1", "--email", "m1@example.com"], _rows, (), False),
    "program validate": (["program", "validate", str(PROGRAMS)], _rows, (), False),
    "program apply": (["program", "apply", str(PROGRAMS), "--yes"], _rows, (), False),
    "program plan": (["program", "plan", "PLAN"], _plan_rows, (), False),
    "program list": (["program", "list"], _rows, (), False),
    "program show": (["program", "show", "coffee"], lambda d: d["earn"], (), True),
    "import transactions": (["import", "transactions", "TXNS"], _summary, (), False),
    "import members": (["import", "members", "MEMBERS"], _summary, (), False),
    "tiers set": (["tiers", "set", "M1", "--tier", "Gold", "--reason", "vip", *AT], _rows, (), False),
    "report expiring": (["report", "expiring", "--as-of", "2027-01-01", "--within", "60"], _rows, (), False),
    "report balances": (["report", "balances", "--as-of", "2026-06-01"], _rows, (), False),
    "report milestones": (["report", "milestones", "--since", "2026-01-01", "--until", "2026-07-01"], _rows, (), False),
    "report tiers": (["report", "tiers", "--as-of", "2026-06-01"], _rows, (), False),
    "nps record": (["nps", "record", "M1", "--score", "9", "--comment", "=great", "--response-id", "N9", *AT],
                   _rows, (), False),
    "import nps": (["import", "nps", "NPS"], _summary, (), False),
    "nps summary": (["nps", "summary", "--by", "tier"], _rows, (), False),
    "nps comments": (["nps", "comments"], _rows, (), False),
    "report liability": (["report", "liability", "--as-of", "2026-06-01"], _rows, (), False),
    "report roi": (["report", "roi", "--since", "2026-01-01", "--until", "2026-07-01"], _rows, (), False),
    "report churn": (["report", "churn", "--since", "2026-01-01", "--until", "2026-04-01"], _rows, (), False),
    "report at-risk": (["report", "at-risk", "--as-of", "2026-12-20"], _rows, (), False),
    "report ticket": (["report", "ticket", "--until", "2026-07-01"], _rows, (), False),
    "expire": (["expire", "--as-of", "2028-01-01"], _rows, (), False),
    "tiers review": (["tiers", "review", "--as-of", "2027-02-01"], _rows, (), False),
}


def test_every_data_command_has_a_round_trip_case():
    data_commands = {name for name, _ in leaves() if name not in ACTIONS}
    missing = sorted(data_commands - set(CASES))
    assert not missing, f"add a JSON/CSV round-trip case to CASES in tests/test_cli_ux.py for: {missing}"


def _cell(value) -> str:
    """What a CSV cell holds for a JSON value: lists of plain values joined with ';', nested
    objects (and lists of them) as their JSON text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) or isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, list):
        return ";".join(map(str, value))
    return str(value)


@pytest.fixture(scope="module")
def twins(tmp_path_factory):
    """Two identical ledgers: JSON runs on one, CSV on the other, so commands that write see the same state."""
    tmp = tmp_path_factory.mktemp("twins")
    a = Cli(tmp / "a.db")
    a("init")
    a("program", "apply", str(PROGRAMS))
    for m, p in (("M1", "coffee"), ("M2", "coffee"), ("M3", "books")):
        a("member", "enroll", m, "-p", p, "--name", f"Name {m}", "--email", f"{m.lower()}@example.com",
          "--at", "2026-01-01T09:00:00Z")
    a("earn", "M1", "--amount", "120.00", "--txn", "T1", "--at", "2026-01-05T10:00:00Z")
    a("earn", "M2", "--amount", "=SUM(1)", "--txn", "BAD", ok=False)
    a("earn", "M3", "--amount", "30", "--txn", "T2", "--at", "2026-01-06T10:00:00Z")
    a("redeem", "M1", "--points", "20", "--txn", "R1", "--at", "2026-02-01T10:00:00Z")
    files = {
        "TXNS": "txn_id,member_id,kind,occurred_at,amount,points,reason\n"
                "I1,M2,purchase,2026-02-02T10:00:00Z,40,,\nI2,M2,adjust,2026-02-03T10:00:00Z,,-3,\"-fix\"\n",
        "MEMBERS": "member_id,program,name,email\nN1,coffee,=Eve,e@x.org\nN2,books,Bob,\n",
        "NPS": "response_id,member_id,account,score,comment,answered_at\nP1,M2,,3,-slow,2026-02-04T10:00:00Z\n"
               "P2,,Acme,10,,2026-02-05T10:00:00Z\n",
        "PLAN": (PROGRAMS / "coffee.yaml").read_text().replace("points_per_unit: 1", "points_per_unit: 2", 1),
    }
    paths = {}
    for key, text in files.items():
        paths[key] = tmp / (key.lower() + (".yaml" if key == "PLAN" else ".csv"))
        paths[key].write_text(text)
    paths["TWIN"], paths["COPY"] = a.db, (tmp / "copy-json.db", tmp / "copy-csv.db")
    b = Cli(tmp / "b.db")
    src, dst = sqlite3.connect(a.db), sqlite3.connect(b.db)
    src.backup(dst)
    src.close()
    dst.close()
    return a, b, paths


@pytest.mark.parametrize("name", list(CASES))  # in order: the jobs that expire or move tiers run last
def test_json_output_agrees_with_csv_output(twins, name):
    a, b, paths = twins
    args, extract, volatile, subset = CASES[name]
    # a path given as a pair: the JSON run's, then the CSV run's
    json_args, csv_args = ([str(v[i] if isinstance(v, tuple) else v) for v in (paths.get(x, x) for x in args)]
                           for i in (0, 1))
    as_json = a(*json_args, "--format", "json")
    as_csv = b(*csv_args, "--format", "csv")
    rows = extract(json.loads(as_json.stdout))
    table = list(csv.reader(io.StringIO(as_csv.stdout)))
    header, body = table[0], table[1:]
    assert len(body) == len(rows), (name, as_json.stdout, as_csv.stdout)
    assert len(set(header)) == len(header)
    for j, c in zip(rows, body):
        c = dict(zip(header, c))
        if subset:
            keys = set(c) & set(j)
            assert keys, name
        else:
            assert set(j) == set(c), (name, sorted(set(j) ^ set(c)))
            keys = set(j)
        for k in keys - set(volatile):
            want = _cell(j[k])
            # CSV neutralises spreadsheet formulas with a leading ' ; JSON carries the value as is
            assert c[k] == want or (c[k] == "'" + want and want[:1] in "=+-@"), (name, k, c[k], want)
    # both runs wrote the same: the ledgers are still twins (but for the moments they were recorded)
    assert _unstamped(a.dump()) == _unstamped(b.dump()) or volatile


def _unstamped(dump: str) -> str:
    import re

    from conftest import NOW

    return re.sub(NOW[:10] + r"T\d\d:\d\d:\d\dZ", "<now>", dump)


@pytest.mark.parametrize("width,colour", [("60", False), ("100", True)])
def test_help_pages_are_typers_pages_without_its_imports(monkeypatch, width, colour):
    """cli/helptext draws every help page as typer.rich_utils would, character for character
    (it exists to skip rich_utils' Markdown and traceback imports at start-up), but for one
    choice: a paragraph's single line breaks are joined (helptext.rewrap), so Typer is given
    the rewrapped text."""
    import contextlib

    import typer.rich_utils

    from loyaltyctl.cli.helptext import page, rewrap

    monkeypatch.setenv("COLUMNS", width)
    if colour:  # styles too: both draw for a terminal
        monkeypatch.setenv("FORCE_COLOR", "1")
        monkeypatch.setattr(typer.rich_utils, "FORCE_TERMINAL", True)
    root = typer.main.get_command(app)

    def pages(cmd, path):
        yield path, cmd
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from pages(sub, (*path, name))

    def drawn(draw, cmd, path) -> str:
        ctx = cmd.make_context(" ".join(("loyaltyctl", *path)), [], resilient_parsing=True)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            draw(cmd, ctx)
        return out.getvalue()

    seen = 0
    for path, cmd in pages(root, ()):
        ours = drawn(page, cmd, path)
        original = cmd.help
        cmd.help = rewrap(original) if original else original
        try:
            typers = drawn(lambda c, ctx: typer.rich_utils.rich_format_help(obj=c, ctx=ctx, markup_mode="rich"), cmd,
                           path)
        finally:
            cmd.help = original
        assert ours == typers, path
        assert "Usage:" in ours and "loyaltyctl" in ours and ("\x1b[" in ours) is colour
        seen += 1
    assert seen > 40


def test_help_text_paragraphs_wrap_at_the_terminal_and_lists_keep_their_lines(tmp_path):
    from loyaltyctl.cli.helptext import rewrap

    assert rewrap("First line\n    goes on.\n\n    Second paragraph,\n    one line.") == (
        "First line goes on.\n\nSecond paragraph, one line.")
    assert rewrap("Title.\n\n\b\na = 1;\nb = 2;\n\nTail\nend.") == "Title.\n\na = 1;\nb = 2;\n\nTail end."
    page = run(["report", "roi", "--help"], tmp_path, COLUMNS="80").stdout
    assert "\n repeat revenue = those made after" in page  # the list keeps its lines
    page = run(["import", "transactions", "--help"], tmp_path, COLUMNS="80").stdout
    assert "member_id on a purchase is an anonymous sale" in page  # no stub line where the docstring broke
