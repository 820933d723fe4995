"""Every loyaltyctl command, called three ways, for the tests that go over the whole CLI
(exit codes, refused files, fuzzing). `ledger` builds the database the calls expect.

Placeholders in the arguments: {db} the ledger, {dir} a scratch directory holding
txns.csv, members.csv, nps.csv and bad.yaml, {programs} the example programs,
{coffee} their coffee.yaml, {foreign} another program's SQLite file.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import typer.main

from conftest import PROGRAMS, Cli
from loyaltyctl.cli import app

AT = "2026-03-01T10:00:00Z"

# name -> (a valid call, a usage error: exit 2, a business error: exit 1)
CASES: dict[str, tuple[list[str], list[str], list[str]]] = {
    "member enroll": (["member", "enroll", "M9", "-p", "coffee", "--at", AT],
                      ["member", "enroll", "M9"],  # no --program, none configured
                      ["member", "enroll", "M1", "-p", "coffee"]),  # already enrolled
    "member show": (["member", "show", "M1"], ["member", "show", "M1", "--as-of", "soon"],
                    ["member", "show", "NOBODY"]),
    "member list": (["member", "list"], ["member", "list", "--as-of", "9999-12-31T23:59:59Z"],
                    ["member", "list", "--program", "nope"]),
    "member find": (["member", "find", "m1"], ["member", "find", "m1", "--limit", "0"],
                    ["member", "find", "--", "--"]),  # no word to look for
    "member erase": (["member", "erase", "M2", "--yes"], ["member", "erase"], ["member", "erase", "NOBODY", "--yes"]),
    "member update": (["member", "update", "M1", "--email", "m1@example.com"], ["member", "update"],
                      ["member", "update", "NOBODY", "--name", "x"]),
    "history": (["history", "M1"], ["history", "M1", "--format", "xml"], ["history", "NOBODY"]),
    "earn": (["earn", "M1", "--amount", "5", "--at", AT], ["earn", "M1", "--amount", "abc"],
             ["earn", "NOBODY", "--amount", "5"]),
    "redeem": (["redeem", "M1", "--points", "5", "--at", AT], ["redeem", "M1", "--points", "abc"],
               ["redeem", "M1", "--points", "99999"]),
    "refund": (["refund", "P1", "--amount", "1", "--at", AT], ["refund", "P1", "--amount", "-1"],
               ["refund", "NOTX"]),
    "adjust": (["adjust", "M1", "--points=-5", "--reason", "fix", "--at", AT], ["adjust", "M1", "--points", "5"],
               ["adjust", "NOBODY", "--points", "5", "--reason", "x"]),
    "explain": (["explain", "P1"], ["explain"], ["explain", "NOTX"]),
    "program validate": (["program", "validate", "{programs}"], ["program", "validate"],
                         ["program", "validate", "{dir}/bad.yaml"]),
    "program plan": (["program", "plan", "{coffee}"], ["program", "plan", "{coffee}", "--as-of", "soon"],
                     ["program", "plan", "{dir}/missing.yaml"]),
    "program apply": (["program", "apply", "{coffee}", "--yes"], ["program", "apply"],
                      ["program", "apply", "{dir}/bad.yaml", "--yes"]),
    "program list": (["program", "list"], ["program", "list", "--format", "xml"],
                     ["--db", "{foreign}", "program", "list"]),
    "program show": (["program", "show", "coffee"], ["program", "show"], ["program", "show", "nope"]),
    "import transactions": (["import", "transactions", "{dir}/txns.csv"], ["import", "transactions"],
                            ["import", "transactions", "{dir}/missing.csv"]),
    "import members": (["import", "members", "{dir}/members.csv"], ["import", "members"],
                       ["import", "members", "{dir}/missing.csv"]),
    "import nps": (["import", "nps", "{dir}/nps.csv"], ["import", "nps"], ["import", "nps", "{dir}/missing.csv"]),
    "export": (["export", "ledger"], ["export", "everything"], ["export", "ledger", "--program", "nope"]),
    "expire": (["expire"], ["expire", "--as-of", "soon"], ["expire", "--program", "nope"]),
    "tiers review": (["tiers", "review"], ["tiers", "review", "--as-of", "soon"],
                     ["tiers", "review", "--program", "books"]),  # books has no tiers
    "tiers set": (["tiers", "set", "M1", "--tier", "Gold", "--reason", "vip", "--at", AT],
                  ["tiers", "set", "M1", "--reason", "vip"], ["tiers", "set", "M1", "--tier", "Platinum", "--reason", "x"]),
    "report expiring": (["report", "expiring"], ["report", "expiring", "--within", "0"],
                        ["report", "expiring", "--program", "nope"]),
    "report milestones": (["report", "milestones", "--since", "2026-01-01"], ["report", "milestones"],
                          ["report", "milestones", "--since", "2026-01-01", "--program", "nope"]),
    "report balances": (["report", "balances"], ["report", "balances", "--limit", "ten"],
                        ["report", "balances", "--program", "nope"]),
    "report tiers": (["report", "tiers"], ["report", "tiers", "--format", "xml"], ["report", "tiers", "--program", "nope"]),
    "report liability": (["report", "liability"], ["report", "liability", "--as-of", "soon"],
                         ["report", "liability", "--program", "nope"]),
    "report roi": (["report", "roi"], ["report", "roi", "--cost", "ten"], ["report", "roi", "--program", "nope"]),
    "report churn": (["report", "churn"], ["report", "churn", "--period", "week"],
                     ["report", "churn", "--program", "nope"]),
    "report at-risk": (["report", "at-risk"], ["report", "at-risk", "--factor", "zero"],
                       ["report", "at-risk", "--program", "nope"]),
    "report ticket": (["report", "ticket"], ["report", "ticket", "--since", "soon"],
                      ["report", "ticket", "--program", "nope"]),
    "nps record": (["nps", "record", "M1", "--score", "9", "--at", AT], ["nps", "record", "M1", "--score", "11"],
                   ["nps", "record", "NOBODY", "--score", "5"]),
    "nps summary": (["nps", "summary"], ["nps", "summary", "--by", "week"], ["nps", "summary", "--program", "nope"]),
    "nps comments": (["nps", "comments"], ["nps", "comments", "--detractors", "--promoters"],
                     ["nps", "comments", "--program", "nope"]),
    "init": (["init"], ["init", "--bogus"], ["--db", "{foreign}", "init"]),
    "demo": (["demo"], ["demo", "--bogus"], ["--db", "{foreign}", "demo"]),
    "verify": (["verify"], ["verify", "--format", "xml"], ["--db", "{foreign}", "verify"]),
    "backup": (["backup", "{dir}/backup.db"], ["backup"], ["backup", "{db}"]),  # onto the live ledger
    "restore": (["restore", "{dir}/backup.db", "--force"], ["restore"], ["restore", "{dir}/missing.db", "--force"]),
    "db copy": (["db", "copy", "{db}", "{dir}/copy.db"], ["db", "copy", "{db}"],  # no TARGET
                ["db", "copy", "{db}", "{db}"]),  # onto itself
}

# Commands that never open the ledger.
NO_LEDGER = {"program validate"}
# Commands that make a ledger where there is none.
CREATORS = {"init", "demo"}


def leaves(cmd=None, path=()):
    cmd = cmd or typer.main.get_command(app)
    subs = getattr(cmd, "commands", None)
    if not subs:
        yield " ".join(path), cmd
        return
    for name, sub in subs.items():
        yield from leaves(sub, (*path, name))


FILES = {
    "txns.csv": "txn_id,member_id,kind,occurred_at,amount\nI1,M1,purchase,2026-02-02T10:00:00Z,40\n",
    "members.csv": "member_id,program,name\nN1,coffee,Nora\n",
    "nps.csv": "response_id,member_id,account,score,comment,answered_at\nR1,M1,,9,great,2026-02-04T10:00:00Z\n",
    "bad.yaml": "code: bad\nname: [unclosed\n",
}


def ledger(directory: Path) -> Cli:
    """Every example program; M1 in coffee with purchase P1 (100.00), M2 in books; the input files."""
    c = Cli(directory / "ledger.db")
    c("init")
    c("program", "apply", str(PROGRAMS))
    c("member", "enroll", "M1", "-p", "coffee", "--name", "Ada", "--at", "2026-01-01T09:00:00Z")
    c("member", "enroll", "M2", "-p", "books", "--name", "Bob", "--at", "2026-01-01T09:00:00Z")
    c("earn", "M1", "--amount", "100", "--txn", "P1", "--at", "2026-01-05T10:00:00Z")
    for name, text in FILES.items():
        (directory / name).write_text(text)
    c("backup", str(directory / "backup.db"))
    settle(c.db)
    return c


def settle(path: Path) -> None:
    """Move everything committed into the ledger file itself (the in-process commands' connections
    may still hold it in the WAL), so a plain copy of the file is the whole ledger."""
    import gc

    gc.collect()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()


def foreign(path: Path, user_version: int = 3) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE notes (body TEXT)")
    conn.execute("INSERT INTO notes VALUES ('not a ledger')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()
    return path


def fill(args: list[str], **places: object) -> list[str]:
    values = {k: str(v) for k, v in places.items()}
    values.setdefault("programs", str(PROGRAMS))
    values.setdefault("coffee", str(PROGRAMS / "coffee.yaml"))
    out = []
    for a in map(str, args):
        for key, value in values.items():
            a = a.replace("{" + key + "}", value)
        out.append(a)
    return out
