"""CSV files as they come (issue 14): other delimiters (--delimiter, and a hint when a file
looks semicolon- or tab-separated), other encodings (--encoding), a rejects file that keeps
the bytes of a line it could not decode, and import messages in the words of CSV columns,
never of command-line options or Python."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from loyaltyctl.io.csv import NPS_COLUMNS, TXN_COLUMNS

AT = "2026-02-01T10:00:00Z"


@pytest.fixture
def shop(coffee, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", "2026-01-01T00:00:00Z")
    return coffee


def _json(result) -> dict:
    assert "Traceback" not in result.stderr
    return json.loads(result.stdout)


def test_a_semicolon_file_gets_a_hint_then_imports_with_delimiter(shop, tmp_path):
    path = tmp_path / "excel-fr.csv"
    path.write_text(f"txn_id;member_id;kind;occurred_at;amount\nT1;M1;purchase;{AT};12,50\nT2;M1;purchase;{AT};12.50\n")
    dump = shop.dump()
    err = shop.fail("import", "transactions", str(path))
    assert err.endswith("the file looks semicolon-separated: import it with --delimiter ';'"), err
    assert shop.dump() == dump
    rejects = tmp_path / "rejects.csv"
    r = shop("import", "transactions", str(path), "--delimiter", ";", "--rejects", str(rejects), "--format", "json",
             ok=False)
    assert (_json(r)["applied"], _json(r)["rejected"]) == (1, 1)
    lines = rejects.read_text().splitlines()  # same delimiter: corrected, it imports with the same command
    assert lines[0] == "txn_id;member_id;kind;occurred_at;amount;line;error"
    assert lines[1].startswith(f"T1;M1;purchase;{AT};12,50;2;amount: ")
    rejects.write_text(rejects.read_text().replace("12,50", "12.40"))
    assert shop.json("import", "transactions", str(rejects), "--delimiter", ";")["applied"] == 1


def test_a_tab_separated_file_gets_a_hint_then_imports_with_delimiter_tab(shop, tmp_path):
    path = tmp_path / "export.tsv"
    path.write_text("member_id\tprogram\tname\nN1\tcoffee\tNora\n")
    assert "looks tab-separated: import it with --delimiter '\\t'" in shop.fail("import", "members", str(path))
    for spelling in ("\t", "\\t", "tab"):
        r = shop("import", "members", str(path), "--delimiter", spelling, "--format", "json")
        assert _json(r)["rejected"] == 0
    assert shop.json("member", "show", "N1")["name"] == "Nora"
    assert "'--delimiter'" in shop.usage("import", "members", str(path), "--delimiter", "x")


def test_an_undecodable_line_is_rejected_and_kept_byte_for_byte_then_encoding_imports_it(shop, tmp_path):
    path = tmp_path / "till.csv"
    original = (b"txn_id,member_id,kind,occurred_at,points,reason\n"
                b"A1,M1,adjust," + AT.encode() + b",5,caf\xe9 cr\xe8me \x80 offert\n"
                b"A2,M1,adjust," + AT.encode() + b",5,plain\n")
    path.write_bytes(original)
    rejects = tmp_path / "rejects.csv"
    r = shop("import", "transactions", str(path), "--rejects", str(rejects), "--format", "json", ok=False)
    data = _json(r)
    assert data["applied"] == 1
    [row] = data["rejects"]
    assert row["error"] == ("not UTF-8 text (byte 0xE9); for a file in another encoding, import it with "
                            "--encoding (e.g. cp1252)")
    assert row["reason"] == "caf\ufffd cr\ufffdme \ufffd offert"  # JSON shows what it could not read as U+FFFD
    assert "till.csv:2: not UTF-8 text (byte 0xE9)" in r.stderr
    kept = rejects.read_bytes().split(b"\n")[1]
    assert kept.startswith(b"A1,M1,adjust," + AT.encode() + b",5,caf\xe9 cr\xe8me \x80 offert,2,")  # the bytes as read
    r = shop("import", "transactions", str(rejects), "--encoding", "cp1252", "--format", "json")
    assert _json(r)["applied"] == 1
    assert shop.json("explain", "A1")["explanation"][0] == "manual adjustment: café crème € offert"
    err = shop.usage("import", "transactions", str(path), "--encoding", "utf-16")
    assert "'--encoding'" in err and "not a supported encoding" in err
    assert "unknown text encoding" in shop.usage("import", "transactions", str(path), "--encoding", "klingon")


def test_a_latin1_members_file_imports_with_its_encoding(shop, tmp_path):
    path = tmp_path / "crm.csv"
    path.write_bytes("member_id,program,name\nN2,coffee,Zoë Ångström\n".encode("latin-1"))
    shop("import", "members", str(path), ok=False)
    assert shop.json("import", "members", str(path), "--encoding", "latin-1")["applied"] == 1
    assert shop.json("member", "show", "N2")["name"] == "Zoë Ångström"


def _options_of(columns: list[str]) -> re.Pattern:
    """A column spelled as the command line's option (--amount, --txn-id, --at, --txn)."""
    return re.compile(r"--(" + "|".join(c.replace("_", "[-_]") for c in {*columns, "at", "txn"}) + r")\b")


def test_import_messages_speak_of_columns_never_of_options_or_python(shop, tmp_path):
    shop("program", "apply", str(Path(__file__).resolve().parent.parent / "loyaltyctl" / "programs" / "books.yaml"))
    shop("member", "enroll", "M2", "-p", "coffee", "--at", "2026-01-01T00:00:00Z")
    shop("member", "enroll", "M2", "-p", "books", "--at", "2026-01-01T00:00:00Z")
    rows = [
        f"b1,M1,purchase,{AT},,,,,,,", f"b2,M1,purchase,{AT},abc,,,,,,", f"b3,M1,event,{AT},,,,,,,",
        f"b4,M1,redeem,{AT},,,,,,,", f"b5,M1,refund,{AT},,,,,,,", f"b6,M1,adjust,{AT},,,5,,,,",
        f"b7,M1,opening,{AT},,,,,,,", f"b8,M1,gift,{AT},,,,,,,", f"b9,,redeem,{AT},,,5,,,,",
        "b10,M1,purchase,2026-02-30T10:00:00Z,5,,,,,,", f"b11,M1,purchase,{AT},5,nowhere,,,,,",
        f"b12,M2,purchase,{AT},5,,,,,,",  # in two programs, the file has no program column
        f",M1,purchase,{AT},5,,,,,,", f"b13,M1,purchase,{AT},5\rx,,,,,,", f"b14,M1,redeem,{AT},,,5,free_coffee,,,",
        f"b15,M1,event,{AT},,,,,,nope,", f"b16,M1,purchase,{AT},1.234,,,,,,", f"b17,M1,redeem,{AT},,,-5,,,,",
        f"b18,M1,adjust,{AT},,,5,,,,\x1b[31mred", f"b19,M1,refund,{AT},,,,,b1,,", f"b20,,purchase,{AT},5,,,,,,",
    ]
    path = tmp_path / "bad.csv"
    path.write_text("txn_id,member_id,kind,occurred_at,amount,partner,points,reward,ref_txn_id,event,reason\n"
                    + "\n".join(rows) + "\n")
    rejects = tmp_path / "rejects.csv"
    r = shop("import", "transactions", str(path), "--rejects", str(rejects), ok=False)
    errors = [x["error"] for x in csv.DictReader(io.StringIO(rejects.read_text()))]
    assert len(errors) == len(rows)
    for error in errors + r.stderr.splitlines() + r.stdout.splitlines():
        assert not _options_of(TXN_COLUMNS).search(error), error
        assert "universal" not in error and "newline mode" not in error and "Python" not in error, error
    assert "b12" in path.read_text() and any("several programs" in e and "--program" in e for e in errors)
    assert any(e.startswith("not valid CSV: a carriage return inside an unquoted cell") for e in errors)
    nps = tmp_path / "nps.csv"
    nps.write_text(f"response_id,member_id,account,score,comment,answered_at\nR1,,,9,x,{AT}\nR2,M1,,eleven,,{AT}\n")
    r = shop("import", "nps", str(nps), "--format", "json", ok=False)
    assert not _options_of(NPS_COLUMNS).search(r.stdout + r.stderr)
    assert [x["error"] for x in _json(r)["rejects"]] == [
        "a response needs a member_id or an account", "score: 'eleven' is not a whole number from 0 to 10"]


def test_the_rejects_file_of_a_resumed_semicolon_import_keeps_its_format(shop, tmp_path):
    """The kept rows of a killed run are read back with the import's own delimiter and encoding."""
    from loyaltyctl.io.csv import CsvFormat
    from loyaltyctl.io.rejects import RejectsWriter

    fmt = CsvFormat(";", "cp1252")
    path = tmp_path / "rejects.csv"
    with RejectsWriter(str(path), ["txn_id", "reason"], fmt=fmt) as w:
        w({"txn_id": "T1", "reason": "café", "line": 2, "error": "bad → worse"})
        w({"txn_id": "T9", "reason": "later", "line": 9, "error": "x"})
    assert path.read_bytes() == "txn_id;reason;line;error\nT1;café;2;bad ? worse\nT9;later;9;x\n".encode("cp1252")
    with RejectsWriter(str(path), ["txn_id", "reason"], keep_upto=5, fmt=fmt):
        pass
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("cp1252")), delimiter=";"))
    assert rows == [["txn_id", "reason", "line", "error"], ["T1", "café", "2", "bad ? worse"]]
