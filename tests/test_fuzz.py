"""Fuzzing the inputs an operator feeds in: CSV imports and YAML programs.

Every outcome must be a clean one: exit 0 with a correct import, or exit 1 with
one `Error:` line (or per-row reject lines); never a traceback, never a partial
write (--all-or-nothing leaves the dump unchanged), and the ledger always verifies."""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from conftest import PROGRAMS, Cli

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
REJECT_LINE = re.compile(r"^.+:\d+: .+$|^\.\.\. and \d+ more rejected rows$")


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """coffee and books applied, members M1 (coffee, 600 points) and M2 (books)."""
    path = tmp_path_factory.mktemp("fuzz") / "template.db"
    c = Cli(path)
    c("init")
    c("program", "apply", str(PROGRAMS / "coffee.yaml"), str(PROGRAMS / "books.yaml"))
    c("member", "enroll", "M1", "-p", "coffee", "--name", "One", "--at", "2025-01-01T00:00:00Z")
    c("member", "enroll", "M2", "-p", "books", "--at", "2025-01-01T00:00:00Z")
    c("earn", "M1", "--amount", "600", "--txn", "P1", "--at", "2025-02-01T00:00:00Z")
    return path


class Scratch:
    """A fresh copy of the template for one example."""

    def __init__(self, template: Path):
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "fuzz.db"
        src, dst = sqlite3.connect(template), sqlite3.connect(self.path)
        src.backup(dst)
        src.close()
        dst.close()
        self.cli = Cli(self.path)

    def file(self, name: str, data: bytes | str) -> str:
        p = Path(self.dir.name) / name
        p.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass"))
        return str(p)

    def run(self, *args: str):
        """Run a command (a traceback re-raises in Cli and fails the test); check it ended cleanly."""
        r = self.cli(*args, ok=None)
        assert r.exit_code in (0, 1), (args, r.exit_code, r.stdout, r.stderr)
        err = r.stderr.strip()
        assert "Traceback" not in err
        if r.exit_code == 1:
            lines = err.splitlines()
            assert lines, (args, r.stdout)
            if lines[0].startswith("Error: "):
                assert len(lines) == 1, err
            else:  # an import with rejected rows: one line per reject (file:line: error)
                assert all(REJECT_LINE.match(line) for line in lines), err
        return r

    def verify(self):
        r = self.cli("verify", "--format", "json", ok=None)
        assert r.exit_code == 0 and json.loads(r.stdout)["ok"], r.stdout

    def close(self):
        self.dir.cleanup()


def _check_import(s: Scratch, kind: str, path: str, *extra: str) -> None:
    before = s.cli.dump()
    r = s.run("import", kind, path, "--all-or-nothing", "--format", "json", *extra)
    event(f"all-or-nothing exit {r.exit_code}")
    if r.exit_code == 1:
        assert s.cli.dump() == before, "an --all-or-nothing import that failed wrote something"
    else:
        summary = json.loads(r.stdout)
        assert summary["rejected"] == 0 and summary["applied"] + summary["duplicates"] == summary["rows"]
    s.verify()
    # the same file without --all-or-nothing: good rows apply, bad rows are rejected, counts add up
    r = s.run("import", kind, path, "--format", "json", *extra)
    if r.stdout.strip().startswith("{"):
        summary = json.loads(r.stdout)
        assert summary["applied"] + summary["duplicates"] + summary["rejected"] == summary["rows"]
        assert (summary["rejected"] > 0) == (r.exit_code == 1)
        event(f"applied rows: {'some' if summary['applied'] else 'none'}")
    s.verify()


# --- random bytes ------------------------------------------------------------------------

TXN_HEADER = b"txn_id,member_id,kind,occurred_at,amount,points,reward,ref_txn_id,event,reason\n"
MEMBER_HEADER = b"member_id,program,name,email,tags,referred_by,joined_at\n"


@SETTINGS
@given(data=st.binary(max_size=1500), header=st.sampled_from([b"", TXN_HEADER, MEMBER_HEADER]),
       kind=st.sampled_from(["transactions", "members"]))
def test_random_bytes_into_the_importers(template, data, header, kind):
    s = Scratch(template)
    try:
        path = s.file("random.csv", header + data)
        _check_import(s, kind, path, *(["--program", "coffee"] if kind == "transactions" else []))
    finally:
        s.close()


# --- structured but hostile CSV ------------------------------------------------------------

NASTY = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", " ", "=cmd|' /C calc'!A0", "-60", "1e9", "NaN", "Infinity", "0", "0.00001",
                     "99999999999999999999", "12.50", "100", "-5", "\x00", "\x1b[2J", "a\nb", 'say "hi"',
                     "x" * 10_050, "2025-13-45T00:00:00Z", "2025-03-01", "2025-03-01T10:00:00+05:00",
                     "free_coffee", "five_off", "voucher_5", "P1", "M1", "M2", "M3", "coffee", "books", "gold"]),
)
KINDS = st.sampled_from(["purchase", "redeem", "refund", "event", "adjust", "opening", "PURCHASE", "", "drop"])
TIMES = st.one_of(st.sampled_from(["2025-03-01T10:00:00Z", "2025-02-15", "2024-01-01T00:00:00Z", ""]), NASTY)


def _csv(header: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header)
    for row in rows:
        w.writerow([row.get(c, "") for c in header])
    return out.getvalue()


@st.composite
def transaction_files(draw):
    optional = ["amount", "points", "reward", "ref_txn_id", "event", "reason", "expires_at", "partner"]
    header = ["txn_id", "member_id", "kind", "occurred_at"] + draw(st.one_of(
        st.just(optional), st.lists(st.sampled_from(optional), unique=True)))
    if draw(st.booleans()) and draw(st.booleans()):
        header.append(draw(st.sampled_from(["bogus", "amount", "txn_id "])))
    good = st.one_of(  # rows that should apply, so files mix good and bad rows
        st.fixed_dictionaries({"txn_id": st.sampled_from(["G1", "G2", "G3"]), "member_id": st.just("M1"),
                               "kind": st.just("purchase"), "occurred_at": st.just("2025-03-01T10:00:00Z"),
                               "amount": st.decimals(min_value=1, max_value=900, places=2).map(str)}),
        st.fixed_dictionaries({"txn_id": st.sampled_from(["R1", "R2"]), "member_id": st.just("M1"),
                               "kind": st.just("redeem"), "occurred_at": st.just("2025-03-02T10:00:00Z"),
                               "points": st.integers(1, 900).map(str)}),
        st.fixed_dictionaries({"txn_id": st.sampled_from(["F1", "F2"]), "member_id": st.just("M1"),
                               "kind": st.just("refund"), "occurred_at": st.just("2025-03-03T10:00:00Z"),
                               "ref_txn_id": st.sampled_from(["P1", "G1"]),
                               "amount": st.decimals(min_value=1, max_value=700, places=2).map(str)}),
    )
    rows = draw(st.lists(st.one_of(good, st.fixed_dictionaries({
        "txn_id": st.one_of(st.sampled_from(["T1", "T2", "T3", "P1"]), NASTY),
        "member_id": st.sampled_from(["M1", "M2", "M3", "", "m1", " M1 "]),
        "kind": KINDS, "occurred_at": TIMES,
        "amount": st.one_of(st.decimals(min_value=0, max_value=10_000, places=2).map(str), NASTY),
        "points": st.one_of(st.integers(-1000, 1000).map(str), NASTY),
        "reward": NASTY, "ref_txn_id": NASTY, "event": NASTY, "reason": NASTY,
        "expires_at": TIMES, "partner": NASTY,
    })), max_size=8))
    return _csv(header, rows)


@SETTINGS
@given(text=transaction_files(), program=st.sampled_from([[], ["--program", "coffee"]]))
def test_hostile_transaction_csv(template, text, program):
    s = Scratch(template)
    try:
        _check_import(s, "transactions", s.file("t.csv", text), *program)
    finally:
        s.close()


@st.composite
def member_files(draw):
    header = ["member_id", "program"] + draw(st.lists(
        st.sampled_from(["name", "email", "tags", "referred_by", "joined_at", "account"]), unique=True))
    rows = draw(st.lists(st.fixed_dictionaries({
        "member_id": st.one_of(st.sampled_from(["M1", "M9", "N1", ""]), NASTY),
        "program": st.sampled_from(["coffee", "books", "nope", ""]),
        "name": NASTY, "email": NASTY, "tags": NASTY, "referred_by": st.sampled_from(["", "M1", "M9", "N1"]),
        "joined_at": TIMES, "account": NASTY,
    }), max_size=8))
    return _csv(header, rows)


@SETTINGS
@given(text=member_files())
def test_hostile_member_csv(template, text):
    s = Scratch(template)
    try:
        _check_import(s, "members", s.file("m.csv", text))
    finally:
        s.close()


# --- YAML programs ------------------------------------------------------------------------------

BASE_PROGRAM = yaml.safe_load((PROGRAMS / "coffee.yaml").read_text())
KEYS = sorted(set(BASE_PROGRAM) | {"tiers", "expiry", "earn", "levels", "threshold", "rule", "points_per_unit",
                                    "after_days", "basis", "window_days", "multiplier", "code", "name", "bogus"})
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**20), st.text(max_size=20),
                    st.sampled_from(["NO", "01234", "1.25", "0x1F", ".inf", "~", "spend", "event", "Gold"]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.sampled_from(KEYS), inner, max_size=5)),
                      max_leaves=20)


@st.composite
def program_texts(draw):
    how = draw(st.sampled_from(["mutate", "random", "text"]))
    if how == "text":
        return draw(st.text(max_size=400))
    data = dict(BASE_PROGRAM) if how == "mutate" else {}
    for key in draw(st.lists(st.sampled_from(KEYS), max_size=4)):
        data[key] = draw(VALUES)
    if how == "mutate" and draw(st.booleans()):
        data.pop(draw(st.sampled_from(sorted(data))), None)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if draw(st.booleans()):  # splice in YAML features that must be refused or survived
        extra = draw(st.sampled_from(["x: &a [1, 2]\ny: *a\n", "code: dup\n", "<<: {a: 1}\n", "? [1]\n: 2\n",
                                      "z: !!python/name:os.system\n", "\t- broken\n", "w: !!binary aGk=\n", "---\n"]))
        text = draw(st.sampled_from([text + extra, extra + text]))
    return text


@SETTINGS
@given(text=program_texts())
def test_program_validator_and_apply_on_random_yaml(template, text):
    s = Scratch(template)
    try:
        path = s.file("prog.yaml", text)
        v = s.run("program", "validate", path)
        before = s.cli.dump()
        a = s.run("program", "apply", path)
        assert a.exit_code == v.exit_code  # apply accepts exactly what validate accepts
        event(f"program valid: {a.exit_code == 0}")
        if a.exit_code == 1:
            assert s.cli.dump() == before
            assert a.stderr.startswith(f"Error: {path}") or a.stderr.startswith("Error: ")
        s.verify()
    finally:
        s.close()


@SETTINGS
@given(data=st.binary(max_size=600))
def test_program_validator_on_random_bytes(template, data):
    s = Scratch(template)
    try:
        path = s.file("bytes.yaml", data)
        before = s.cli.dump()
        s.run("program", "validate", path)
        s.run("program", "apply", path)
        if s.cli.dump() != before:  # only a well-formed program may be recorded
            assert s.cli("program", "validate", path, ok=None).exit_code == 0
        s.verify()
    finally:
        s.close()
