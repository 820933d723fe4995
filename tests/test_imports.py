"""CSV imports through the CLI: column rules, rejections, idempotency, resume after kill -9,
odd files, progress, and a differential test of the batch path against single commands."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import PROGRAMS, Cli

HEADER = "txn_id,member_id,kind,occurred_at,amount,points,reward,ref_txn_id,event,reason,expires_at"


def enroll(cli, member="M1", program="coffee", at="2026-01-01T00:00:00Z"):
    cli("member", "enroll", member, "--program", program, "--at", at)


def write(tmp_path: Path, text: str, name: str = "in.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def show(cli, member, as_of, program=None):
    args = ["member", "show", member, "--as-of", as_of] + (["--program", program] if program else [])
    data = cli.json(*args)
    return data[0] if isinstance(data, list) else data


def rejects(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def ledger_state(db) -> dict:
    """Everything the ledger says, without ids or recording times: entries, lots with their
    moves (keyed by txn ids), tier changes, enrollments' caches, anonymous sales, purchase gaps."""
    ledger = db if isinstance(db, Cli) else Cli(db)
    q = lambda sql: sorted(ledger.sql(sql))  # noqa: E731
    return {
        "entries": q("""SELECT e.txn_id, n.member_id, n.program_code, e.kind, e.rule_kind, e.rule_index, e.points,
                               e.uncovered, e.amount_e4, e.rate, e.tier, e.multiplier, e.partner, e.event,
                               e.reward, e.reason, r.txn_id, e.content, e.effective_at
                        FROM entries e JOIN enrollments n ON n.id = e.enrollment_id
                        LEFT JOIN entries r ON r.id = e.ref_entry_id"""),
        "lots": q("""SELECT e.txn_id, l.points, l.remaining, l.earned_at, l.expires_at
                     FROM lots l JOIN entries e ON e.id = l.entry_id"""),
        "moves": q("""SELECT e.txn_id, le.txn_id, m.points, m.effective_at FROM lot_moves m
                      JOIN entries e ON e.id = m.entry_id JOIN lots l ON l.id = m.lot_id
                      JOIN entries le ON le.id = l.entry_id"""),
        "tiers": q("""SELECT n.member_id, n.program_code, t.tier, t.previous, t.source, t.reason, t.effective_at
                      FROM tier_changes t JOIN enrollments n ON n.id = t.enrollment_id"""),
        "enrollments": q("SELECT member_id, program_code, tags, joined_at, points_total, uncovered, tier FROM enrollments"),
        "anonymous": q("SELECT txn_id, program_code, amount_e4, effective_at FROM anonymous_sales"),
        "gaps": q("""SELECT e.txn_id, g.gap, g.at_s FROM purchase_gaps g JOIN entries e ON e.id = g.entry_id"""),
    }


# --- every kind and column rule -------------------------------------------------------------


def test_every_kind_applies_in_file_order_with_columns_in_any_order(coffee, tmp_path):
    enroll(coffee, "M1", "coffee")
    enroll(coffee, "M2", "engage")
    # columns shuffled; values as a sales system would send them
    text = """kind,occurred_at,member_id,txn_id,reason,points,amount,reward,ref_txn_id,event,expires_at
purchase,2026-02-01T10:00:00Z,M1,p1,,,600.00,,,,
purchase,2026-02-02T10:00:00Z,M1,p2,,,10.99,,,,
redeem,2026-02-03T10:00:00Z,M1,r1,,,,free_coffee,,,
redeem,2026-02-03T11:00:00Z,M1,r2,,50,,,,,
refund,2026-02-04T10:00:00Z,M1,f1,,,100,,p1,,
adjust,2026-02-04T11:00:00Z,M1,a1,late delivery,-60,,,,,
adjust,2026-02-04T12:00:00Z,M1,a2,goodwill,25,,,,,
opening,2026-02-05T10:00:00Z,M1,o1,,100,,,,,2026-06-01
event,2026-02-05T10:00:00Z,M2,e1,,,,,,email_signup,
"""
    out = coffee.json("import", "transactions", write(tmp_path, text))
    assert (out["applied"], out["duplicates"], out["rejected"]) == (9, 0, 0)
    # 600 at Bronze x1 = 600 and an upgrade to Silver; 10.99 x 1.25 = 13.7375 -> 13;
    # -150 free coffee, -50; refund of 100 of 600 claws back 100; -60 +25; opening +100
    m1 = show(coffee, "M1", "2026-03-01T00:00:00Z")
    assert m1["balance"] == 600 + 13 - 150 - 50 - 100 - 60 + 25 + 100 == 378
    assert m1["tier"] == "Silver"
    # the opening lot expired on 2026-06-01 untouched (redemptions came before it)
    assert show(coffee, "M1", "2026-07-01T00:00:00Z")["balance"] == 278
    assert show(coffee, "M2", "2026-03-01T00:00:00Z")["balance"] == 50
    ledger = {r["txn_id"]: r for r in coffee.json("export", "ledger")}
    assert {t: ledger[t]["points"] for t in ledger} == {
        "p1": 600, "p2": 13, "r1": -150, "r2": -50, "f1": -100, "a1": -60, "a2": 25, "o1": 100, "e1": 50}
    assert ledger["f1"]["ref_txn_id"] == "p1" and ledger["f1"]["amount"] == "-100.00"


def test_rows_give_the_same_figures_as_the_single_commands(coffee, tmp_path):
    """The same purchase through `earn` and through an import gives the same points and tier."""
    enroll(coffee, "A")
    enroll(coffee, "B")
    coffee("earn", "A", "--amount", "600", "--at", "2026-02-01T10:00:00Z", "--txn", "a1")
    coffee("earn", "A", "--amount", "33.33", "--at", "2026-02-02T10:00:00Z", "--txn", "a2")
    coffee("import", "transactions", write(tmp_path, "txn_id,member_id,kind,occurred_at,amount\n"
                                                     "b1,B,purchase,2026-02-01T10:00:00Z,600\n"
                                                     "b2,B,purchase,2026-02-02T10:00:00Z,33.33\n"))
    a, b = show(coffee, "A", "2026-03-01"), show(coffee, "B", "2026-03-01")
    assert a["balance"] == b["balance"] == 600 + 41  # 33.33 x 1.25 = 41.6625 -> 41
    assert a["tier"] == b["tier"] == "Silver"


def test_unknown_and_missing_columns_are_errors_naming_them(coffee, tmp_path):
    enroll(coffee)
    before = coffee.dump()
    err = coffee.fail("import", "transactions", write(tmp_path, "txn_id,member_id,kind,occurred_at,amuont,colour\n"))
    assert "unknown column(s) amuont, colour" in err and ":1:" in err
    err = coffee.fail("import", "transactions", write(tmp_path, "txn_id,member_id,amount\nt1,M1,5\n"))
    assert "missing column(s) kind, occurred_at" in err
    err = coffee.fail("import", "transactions", write(tmp_path, "txn_id,member_id,kind,occurred_at,amount,amount\n"))
    assert "amount appear twice" in err
    assert coffee.dump() == before


# --- rejections and the rejects file ---------------------------------------------------------


BAD = HEADER + """
ok1,M1,purchase,2026-02-01T10:00:00Z,20,,,,,,
bad1,M1,purchase,2026-02-01T10:00:00Z,,,,,,,
bad2,M1,purchase,2026-02-01T10:00:00Z,"12,50",,,,,,
bad3,NOPE,purchase,2026-02-01T10:00:00Z,5,,,,,,
bad4,M1,redeem,2026-02-01T10:00:00Z,,100000,,,,,
bad5,M1,redeem,2026-02-01T10:00:00Z,,,free_cake,,,,
bad6,M1,purchase,yesterday,5,,,,,,
bad7,M1,refund,2026-02-02T10:00:00Z,5,,,nowhere,,,
bad8,M1,adjust,2026-02-02T10:00:00Z,,5,,,,"two
lines",
bad9,M1,gift,2026-02-02T10:00:00Z,5,,,,,,
bad10,M1,adjust,2026-02-02T10:00:00Z,,5,,,,,
bad11,M1,redeem,2026-02-02T10:00:00Z,,,,,,,
bad12,M1,refund,2026-02-02T10:00:00Z,5,,,,,,
bad13,M1,purchase
bad14,M1,opening,2026-02-02T10:00:00Z,,1.5,,,,,
bad15,M1,opening,2026-02-02T10:00:00Z,,10,,,,,2026-01-01
bad16,,redeem,2026-02-02T10:00:00Z,,10,,,,,
ok2,M1,purchase,2026-02-03T10:00:00Z,30,,,,,,
"""


def test_each_bad_row_goes_to_the_rejects_file_and_the_rest_applies(coffee, tmp_path):
    enroll(coffee)
    result = coffee("import", "transactions", write(tmp_path, BAD), "--program", "coffee",
                    "--rejects", tmp_path / "rejects.csv", "--format", "json", ok=False)
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert (summary["applied"], summary["duplicates"], summary["rejected"]) == (2, 0, 16)
    assert show(coffee, "M1", "2026-03-01")["balance"] == 50
    rows = rejects(tmp_path / "rejects.csv")
    assert list(rows[0]) == HEADER.split(",") + ["line", "error"]
    got = {r["txn_id"]: (int(r["line"]), r["error"]) for r in rows}
    expected = {  # physical lines: header = 1; bad8's reason spans lines 10-11
        "bad1": (3, "amount: required"), "bad2": (4, "'12,50' is not a decimal amount"),
        "bad3": (5, "unknown member 'NOPE'"), "bad4": (6, "insufficient points"),
        "bad5": (7, "unknown reward 'free_cake'"), "bad6": (8, "'yesterday' is not an ISO-8601 timestamp"),
        "bad7": (9, "unknown transaction 'nowhere'"),
        "bad8": (10, "reason: contains a control character (U+000A) (a line break inside a quoted cell?)"),
        "bad9": (12, "kind: 'gift' is not one of"), "bad10": (13, "reason: required"),
        "bad11": (14, "exactly one of points or reward"), "bad12": (15, "ref_txn_id: required"),
        "bad13": (16, "has 3 fields, the header has 11"), "bad14": (17, "'1.5' is not a whole number"),
        "bad15": (18, "is not after the opening balance's time"), "bad16": (19, "member_id: required"),
    }
    for txn, (line, error) in expected.items():
        assert got[txn][0] == line, (txn, got[txn])
        assert error in got[txn][1], (txn, got[txn])
    assert "ok1" not in got and "ok2" not in got
    assert rows[0]["amount"] == "" and rows[1]["amount"] == "12,50"  # original cells kept
    assert next(r for r in rows if r["txn_id"] == "bad8")["reason"] == "two\nlines"
    # stderr names file:line for each rejected row
    assert f"{tmp_path / 'in.csv'}:6: insufficient points" in result.stderr


def test_rejects_file_can_be_corrected_and_imported(coffee, tmp_path):
    enroll(coffee)
    coffee("import", "transactions", write(tmp_path, "txn_id,member_id,kind,occurred_at,amount\n"
                                                     "t1,M1,purchase,2026-02-01T10:00:00Z,12;50\n"),
           "--rejects", tmp_path / "r.csv", ok=False)
    fixed = (tmp_path / "r.csv").read_text().replace("12;50", "12.50")
    out = coffee.json("import", "transactions", write(tmp_path, fixed, "fixed.csv"))
    assert out["applied"] == 1 and show(coffee, "M1", "2026-03-01")["balance"] == 12


def test_all_or_nothing_writes_nothing_when_a_row_is_bad(coffee, tmp_path):
    enroll(coffee)
    before = coffee.dump()
    result = coffee("import", "transactions", write(tmp_path, BAD), "--all-or-nothing", ok=False)
    assert result.exit_code == 1 and "nothing written" in result.stdout
    assert coffee.dump() == before
    good = "txn_id,member_id,kind,occurred_at,amount\nt1,M1,purchase,2026-02-01T10:00:00Z,20\n"
    assert coffee.json("import", "transactions", write(tmp_path, good, "good.csv"), "--all-or-nothing")["applied"] == 1


def test_dry_run_reports_and_leaves_the_database_identical(coffee, tmp_path):
    enroll(coffee)
    before = coffee.dump()
    result = coffee("import", "transactions", write(tmp_path, BAD), "--dry-run", ok=False)
    assert "would apply 2, duplicates 0, rejected 16" in result.stdout
    assert coffee.dump() == before


# --- idempotency -------------------------------------------------------------------------------

GOOD = """txn_id,member_id,kind,occurred_at,amount,points,reward
p1,M1,purchase,2026-02-01T10:00:00Z,600,,
p2,M1,purchase,2026-02-02T10:00:00Z,20,,
r1,M1,redeem,2026-02-03T10:00:00Z,,,free_coffee
"""


def test_importing_the_same_file_twice_credits_nothing(coffee, tmp_path):
    enroll(coffee)
    path = write(tmp_path, GOOD)
    assert coffee.json("import", "transactions", path)["applied"] == 3
    state = ledger_state(coffee)
    again = coffee.json("import", "transactions", path)
    assert (again["applied"], again["duplicates"], again["rejected"]) == (0, 3, 0)
    assert ledger_state(coffee) == state
    assert show(coffee, "M1", "2026-03-01")["balance"] == 600 + 25 - 150


def test_same_txn_id_with_changed_content_is_a_rejected_conflict(coffee, tmp_path):
    enroll(coffee)
    coffee("import", "transactions", write(tmp_path, GOOD))
    changed = GOOD.replace("p2,M1,purchase,2026-02-02T10:00:00Z,20", "p2,M1,purchase,2026-02-02T10:00:00Z,21")
    result = coffee("import", "transactions", write(tmp_path, changed, "changed.csv"), "--format", "json", ok=False)
    out = json.loads(result.stdout)
    assert (out["applied"], out["duplicates"], out["rejected"]) == (0, 2, 1)
    assert out["rejects"][0]["line"] == 3 and "different content" in out["rejects"][0]["error"]
    # 20.00 and 20 are the same content: not a conflict
    same = GOOD.replace(",20,", ",20.00,")
    assert coffee.json("import", "transactions", write(tmp_path, same, "same.csv"))["duplicates"] == 3


# --- anonymous sales, stdin, enroll-unknown ------------------------------------------------------


def test_anonymous_purchase_is_stored_and_earns_nothing(coffee, tmp_path):
    enroll(coffee)
    text = "txn_id,member_id,kind,occurred_at,amount\nw1,,purchase,2026-02-01T10:00:00Z,7.80\n"
    out = coffee.json("import", "transactions", write(tmp_path, text), "--program", "coffee")
    assert out["applied"] == 1
    assert coffee("export", "ledger").stdout.count("\n") == 1  # header only: no points anywhere
    assert ledger_state(coffee)["anonymous"] == [("w1", "coffee", 78000, "2026-02-01T10:00:00Z")]
    assert coffee.json("import", "transactions", tmp_path / "in.csv", "--program", "coffee")["duplicates"] == 1
    # several programs and no --program: which program the sale belongs to is unknown
    result = coffee("import", "transactions", write(tmp_path, text.replace("w1", "w2"), "b.csv"), ok=False)
    assert "needs a program: import the file with --program" in result.stderr


def test_stdin(coffee):
    enroll(coffee)
    result = coffee("import", "transactions", "-", "--format", "json", input=GOOD)
    assert json.loads(result.stdout)["applied"] == 3
    bad = "txn_id,member_id,kind,occurred_at,amount\nx,M1,purchase,2026-02-01,abc\n"
    result = coffee("import", "transactions", "-", input=bad, ok=False)
    assert "<stdin>:2: amount: 'abc' is not a decimal amount" in result.stderr


def test_enroll_unknown_enrolls_at_the_first_transaction(coffee, tmp_path):
    text = "txn_id,member_id,kind,occurred_at,amount\nn1,NEW,purchase,2026-03-01T10:00:00Z,40\n"
    path = write(tmp_path, text)
    assert coffee("import", "transactions", path, "--program", "coffee", ok=False).exit_code == 1
    out = coffee.json("import", "transactions", path, "--program", "coffee", "--enroll-unknown")
    assert out["applied"] == 1
    member = show(coffee, "NEW", "2026-03-02")
    assert member["joined_at"] == "2026-03-01T10:00:00Z" and member["balance"] == 40 and member["tier"] == "Bronze"
    dump = coffee.dump()
    err = coffee.usage("import", "transactions", write(tmp_path, text.replace("n1,NEW", "n2,NEW2"), "b.csv"),
                       "--enroll-unknown")
    assert "--enroll-unknown needs --program" in err  # before any row is read
    assert coffee.dump() == dump


# --- members -----------------------------------------------------------------------------------------


def test_import_members(coffee, tmp_path):
    text = """member_id,program,name,email,tags,referred_by,joined_at
A,engage,Ann,ann@example.com,vip;newsletter,,2026-01-05
B,engage,Bob,,,A,2026-01-06T12:00:00Z
C,nosuch,Cy,,,,
D,coffee,Di,,,,not-a-date
"""
    result = coffee("import", "members", write(tmp_path, text), "--rejects", tmp_path / "r.csv",
                    "--format", "json", ok=False)
    out = json.loads(result.stdout)
    assert (out["applied"], out["duplicates"], out["rejected"]) == (2, 0, 2)
    errors = {r["member_id"]: (r["line"], r["error"]) for r in rejects(tmp_path / "r.csv")}
    assert errors["C"][0] == "4" and "unknown program 'nosuch'" in errors["C"][1]
    assert errors["D"][0] == "5" and "joined_at" in errors["D"][1]
    a = show(coffee, "A", "2026-02-01")
    assert a["tags"] == ["vip", "newsletter"] and a["name"] == "Ann" and a["joined_at"] == "2026-01-05T00:00:00Z"
    assert a["balance"] == 200  # referral of B: referrer_points 200
    assert show(coffee, "B", "2026-02-01")["balance"] == 100
    again = coffee("import", "members", tmp_path / "in.csv", "--format", "json", ok=False)
    assert json.loads(again.stdout)["duplicates"] == 2


# --- odd files -----------------------------------------------------------------------------------------


def test_bom_and_windows_line_endings_just_work(coffee, tmp_path):
    enroll(coffee)
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    assert coffee.json("import", "transactions", path)["applied"] == 3
    bad = b"\xef\xbb\xbftxn_id,member_id,kind,occurred_at,amount\r\nq1,M1,purchase,2026-02-01,1\r\nq2,M1,purchase,2026-02-01,x\r\n"
    (tmp_path / "bad.csv").write_bytes(bad)
    result = coffee("import", "transactions", tmp_path / "bad.csv", "--format", "json", ok=False)
    assert json.loads(result.stdout)["rejects"][0]["line"] == 3


@pytest.mark.parametrize("content, message", [
    (b"", "empty file"),
    (b"\n\n", "empty header line"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00", "not UTF-8 text (byte 0x89); is it a CSV file?"),
    (b"PK\x03\x04\x14\x00\x08\x00\x08\x00\xa0\x8e", "not UTF-8 text (byte 0xA0); is it a CSV file?"),
    (b"txn_id\x00member_id,kind\n", "is it a CSV file?"),
])
def test_files_that_are_not_csv_get_a_clear_message(coffee, tmp_path, content, message):
    path = tmp_path / "weird.csv"
    path.write_bytes(content)
    before = coffee.dump()
    assert message in coffee.fail("import", "transactions", path)
    assert coffee.dump() == before


def test_missing_file_and_directory(coffee, tmp_path):
    assert "no such file" in coffee.fail("import", "transactions", tmp_path / "nope.csv")
    assert "is a directory" in coffee.fail("import", "transactions", tmp_path)


# --- progress ------------------------------------------------------------------------------------------


def test_progress_bar_shows_rows_per_second_only_on_a_terminal(monkeypatch, tmp_path):
    from loyaltyctl.cli import batch

    path = write(tmp_path, GOOD)

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", io.StringIO())
    with batch.progress_bar(str(path)) as progress:
        assert progress is None
    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    with batch.progress_bar(str(path)) as progress:
        time.sleep(0.05)
        progress(40, 1234)
        batch_progress = progress
    assert batch_progress is not None
    assert "1,234 rows" in tty.getvalue() and "rows/s" in tty.getvalue()


def _big_file(path: Path, rows: int, members: int) -> None:
    lines = ["txn_id,member_id,kind,occurred_at,amount"]
    lines += [f"G{i},G{i % members},purchase,2026-02-{1 + i % 28:02d}T10:00:00Z,{5 + i % 40}.50" for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")


def _terminal_output(args: list[str], cwd: Path) -> list[tuple[float, str]]:
    """Run loyaltyctl with stderr on a pseudo-terminal (80 columns, NO_COLOR); (seconds, text) read from it."""
    import pty
    import threading

    from conftest import clean_env

    master, slave = pty.openpty()
    env = clean_env(NO_COLOR="1", COLUMNS="80", LINES="24", TERM="xterm")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "loyaltyctl"), *args], cwd=cwd, env=env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    start, chunks = time.monotonic(), []

    def read():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append((time.monotonic() - start, re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", data.decode(errors="replace"))))

    reader = threading.Thread(target=read)
    reader.start()
    assert proc.wait(timeout=300) == 0
    reader.join(timeout=10)
    os.close(master)
    return chunks


@pytest.mark.slow
def test_the_progress_bar_moves_every_second_with_live_rate_and_time_left(coffee, tmp_path):
    members = tmp_path / "members.csv"
    members.write_text("member_id,program,joined_at\n" + "".join(f"G{i},coffee,2026-01-01T00:00:00Z\n" for i in range(300)))
    coffee("import", "members", str(members))
    _big_file(tmp_path / "big.csv", 24_000, 300)
    output = _terminal_output(["--db", str(coffee.db), "import", "transactions", "big.csv"], tmp_path)
    frames = [(t, m) for t, text in output for m in re.findall(r"([\d,]+) rows +([\d,]+) rows/s", text)]
    counts = [(t, int(rows.replace(",", ""))) for t, (rows, _) in frames]
    changes = [t for (t, n), (_, before) in zip(counts[1:], counts) if n != before]
    assert len(changes) >= 5, counts
    gaps = [b - a for a, b in zip(changes, changes[1:])]
    assert max(gaps) <= 1.0, gaps  # rows move at least once a second, not once per chunk of thousands
    assert any(int(rate.replace(",", "")) > 0 for _, (_, rate) in frames)
    assert re.search(r"rows/s +\d+:\d\d:\d\d +\d+:\d\d:\d\d", "".join(text for _, text in output))  # elapsed, left
    assert all(len(line) <= 80 for _, text in output for line in text.split("\r") if "rows/s" in line)


# --- kill -9 and re-run ------------------------------------------------------------------------------------


def _kill_file(path: Path, members: int, rows: int, seed: int) -> None:
    """Purchases, redemptions, partial refunds, adjustments and bad rows whose rejection does
    not depend on what comes later (so a resumed run must not re-evaluate them either)."""
    rng = random.Random(seed)
    purchases = []
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["txn_id", "member_id", "kind", "occurred_at", "amount", "points", "reason", "ref_txn_id"])
        for i in range(rows):
            ts = f"2026-02-{1 + i * 27 // rows:02d}T{i % 24:02d}:{i % 60:02d}:00Z"
            m = f"K{rng.randrange(members)}"
            roll = rng.random()
            if roll < 0.6 or not purchases:
                w.writerow([f"t{i}", m, "purchase", ts, f"{rng.randrange(1, 40000) / 100:.2f}", "", "", ""])
                purchases.append((f"t{i}", m))
            elif roll < 0.75:
                w.writerow([f"t{i}", m, "redeem", ts, "", rng.randrange(1, 30), "", ""])  # may overdraw
            elif roll < 0.82:
                ref, owner = rng.choice(purchases)
                w.writerow([f"t{i}", owner, "refund", ts, "0.50", "", "", ref])
            elif roll < 0.9:
                w.writerow([f"t{i}", m, "adjust", ts, "", rng.choice([-5, 7]), "fix", ""])
            elif roll < 0.95:
                w.writerow([f"t{i}", "GHOST", "purchase", ts, "5", "", "", ""])  # unknown member
            else:
                w.writerow([f"t{i}", m, "purchase", ts, "1e3", "", "", ""])  # bad decimal


def _loyalty(db, *args, **kw):
    return subprocess.run([sys.executable, "-m", "loyaltyctl", "--db", str(db), *map(str, args)],
                          capture_output=True, text=True, **kw)


@pytest.mark.slow
def test_kill_9_mid_import_then_rerun_gives_the_ledger_of_one_clean_run(tmp_path):
    members, rows = 200, 5000
    data = tmp_path / "txns.csv"
    _kill_file(data, members, rows, seed=7)
    people = tmp_path / "members.csv"
    people.write_text("member_id,program,joined_at\n" + "".join(f"K{i},coffee,2026-01-01\n" for i in range(members)))
    env = {k: v for k, v in os.environ.items() if k != "LOYALTYCTL_DB"}

    def fresh(name):
        db = tmp_path / name
        for args in (("init",), ("program", "apply", PROGRAMS / "coffee.yaml"), ("import", "members", people)):
            assert _loyalty(db, *args, env=env).returncode == 0
        return db

    clean = fresh("clean.db")
    started = time.monotonic()
    reference = _loyalty(clean, "import", "transactions", data, "--format", "json", "--rejects", tmp_path / "ref.csv", env=env)
    duration = time.monotonic() - started
    assert reference.returncode == 1  # it has rejected rows
    expected = json.loads(reference.stdout)
    assert expected["rejected"] > 100 and expected["applied"] > 2000
    want = ledger_state(clean)
    want_rejects = (tmp_path / "ref.csv").read_text()

    rng = random.Random(42)
    killed_mid_file = 0
    for trial in range(4):
        db = fresh(f"killed{trial}.db")
        proc = subprocess.Popen([sys.executable, "-m", "loyaltyctl", "--db", str(db), "import", "transactions", data,
                                 "--rejects", tmp_path / f"r{trial}.csv"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        if trial == 0:  # any moment, maybe before the first commit
            time.sleep(rng.uniform(0.1, duration))
        else:  # after a first batch committed, somewhere in the rest of the file
            while not ledger_state(db)["entries"] and proc.poll() is None:
                time.sleep(0.02)
            time.sleep(rng.uniform(0, duration * 0.15))  # early enough to land mid-file on a busy machine
        if proc.poll() is not None:
            continue  # it finished before the kill: re-running is a re-import, not a resume (nothing to check here)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        partial = len(ledger_state(db)["entries"])
        if partial == len(want["entries"]):
            continue  # killed after its last commit: as above, a re-run would be a re-import
        killed_mid_file += partial > 0
        # a run that resumes rewrites its rejects file; one killed before its first commit resumes
        # nothing, so the rejects file it left is replaced only with --force
        again = _loyalty(db, "import", "transactions", data, "--format", "json", "--rejects", tmp_path / f"r{trial}.csv",
                         *([] if partial else ["--force"]), env=env)
        got = json.loads(again.stdout)
        assert {k: got[k] for k in ("rows", "applied", "duplicates", "rejected")} == \
            {k: expected[k] for k in ("rows", "applied", "duplicates", "rejected")}, (trial, partial)
        assert ledger_state(db) == want, (trial, partial)
        assert (tmp_path / f"r{trial}.csv").read_text() == want_rejects
        assert _loyalty(db, "verify", env=env).returncode == 0
    assert killed_mid_file >= 2  # the trials did interrupt the file


# --- differential: batch path == single commands ------------------------------------------------------------


def _random_rows(rng: random.Random, n: int) -> list[dict]:
    members = [f"D{i}" for i in range(6)]
    rows, purchases, redemptions = [], [], []
    for i in range(n):
        ts = f"2026-{1 + i * 11 // n + 1:02d}-{1 + i % 27:02d}T{i % 24:02d}:00:00Z"
        m = rng.choice(members + ["GHOST"])
        roll = rng.random()
        row = {"txn_id": f"x{i}", "member_id": m, "occurred_at": ts}
        if roll < 0.4:
            row |= {"kind": "purchase", "amount": rng.choice(["9.99", "120", "333.33", "0.99", "1,5", "700"])}
            purchases.append(row)
        elif roll < 0.55:
            row |= {"kind": "redeem", **rng.choice([{"points": str(rng.randrange(1, 400))}, {"reward": "free_coffee"},
                                                    {"reward": "nope"}])}
            redemptions.append(row)
        elif roll < 0.65 and purchases:
            ref = rng.choice(purchases)
            row |= {"kind": "refund", "member_id": ref["member_id"], "ref_txn_id": ref["txn_id"],
                    "amount": rng.choice(["1", "50", "100.50", "5000"])}
        elif roll < 0.7 and redemptions:
            ref = rng.choice(redemptions)
            row |= {"kind": "refund", "member_id": ref["member_id"], "ref_txn_id": ref["txn_id"], "amount": "1"}
        elif roll < 0.78:
            row |= {"kind": "adjust", "points": str(rng.choice([-80, -5, 12, 300])), "reason": "ops"}
        elif roll < 0.84:
            row |= {"kind": "opening", "points": str(rng.randrange(1, 500)),
                    "expires_at": rng.choice(["", "2026-08-01T00:00:00Z"])}
        elif roll < 0.9 and rows:
            row = dict(rng.choice(rows))  # a duplicate, or a conflict
            if rng.random() < 0.3 and row.get("amount"):
                row["amount"] = "1.01"
        elif roll < 0.95:
            row |= {"kind": "purchase", "member_id": "", "amount": "4.20"}  # anonymous
        else:
            row |= {"kind": "purchase", "amount": "10", "occurred_at": "2025-12-01T00:00:00Z"}  # before joining
        rows.append(row)
    return rows


def _apply_single(db, row: dict) -> None:
    """What an operator typing one command per row would do (the CLI's service calls)."""
    from decimal import Decimal

    from loyaltyctl.app import ledger as service
    from loyaltyctl.core.values import parse_amount, parse_points

    kind, member, txn, at = row["kind"], row["member_id"], row["txn_id"], row["occurred_at"]
    if kind == "purchase" and not member:
        service.anonymous_sale(db, txn, "coffee", parse_amount(row["amount"]), at)
    elif kind == "purchase":
        service.earn(db, member, program_code="coffee", amount=parse_amount(row["amount"]), txn=txn, at=at)
    elif kind == "redeem":
        points = parse_points(row["points"]) if row.get("points") else None
        service.redeem(db, member, program_code="coffee", points=points, reward=row.get("reward") or None, txn=txn, at=at)
    elif kind == "refund":
        service.refund(db, row["ref_txn_id"], amount=Decimal(row["amount"]), txn=txn, at=at, member_id=member)
    elif kind == "adjust":
        service.adjust(db, member, points=parse_points(row["points"], allow_negative=True), reason=row["reason"],
                       program_code="coffee", txn=txn, at=at)
    else:
        service.opening(db, member, points=parse_points(row["points"]), program_code="coffee",
                        expires_at=row.get("expires_at") or None, txn=txn, at=at)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_batch_import_gives_exactly_the_ledger_of_single_commands(tmp_path, seed, monkeypatch):
    from decimal import InvalidOperation

    from loyaltyctl.app import batch as imports
    from loyaltyctl.errors import LoyaltyError
    from loyaltyctl.store.connection import open_db

    monkeypatch.setattr(imports, "BATCH", 7)  # many batch boundaries
    rows = _random_rows(random.Random(seed), 400)
    columns = ["txn_id", "member_id", "kind", "occurred_at", "amount", "points", "reward", "ref_txn_id", "reason",
               "expires_at"]
    data = tmp_path / "rows.csv"
    with open(data, "w", newline="") as f:
        w = csv.DictWriter(f, columns, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    dbs = []
    for name in ("batch.db", "single.db"):
        db = open_db(str(tmp_path / name), create=True)
        from loyaltyctl.app import ledger as service
        from loyaltyctl.app import programs

        programs.apply(db, [str(PROGRAMS / "coffee.yaml")])
        for i in range(6):
            service.enroll(db, f"D{i}", "coffee", at="2026-01-01T00:00:00Z")
        dbs.append(db)
    summary = imports.import_transactions(dbs[0], str(data), program="coffee")
    ok = rejected = 0
    for row in rows:
        try:
            _apply_single(dbs[1], row)
            ok += 1
        except (LoyaltyError, InvalidOperation):
            rejected += 1
    for db in dbs:
        db.close()
    assert summary.rejected == rejected and summary.applied + summary.duplicates == ok
    assert summary.applied > 100 and summary.duplicates > 5 and summary.rejected > 20
    batch, single = ledger_state(tmp_path / "batch.db"), ledger_state(tmp_path / "single.db")
    assert any(t[2] == "Gold" for t in batch["tiers"])  # upgrades happened
    assert any(e[3] == "refund" for e in batch["entries"]) and any(e[3] == "opening" for e in batch["entries"])
    assert batch == single
