"""NPS: recording answers (single and imported), scores per group, comments."""

from __future__ import annotations

import csv
import io

import pytest

from conftest import PROGRAMS


@pytest.fixture
def survey(cli):
    cli("program", "apply", str(PROGRAMS / "coffee.yaml"), str(PROGRAMS / "books.yaml"))
    cli("member", "enroll", "A", "-p", "coffee", "--account", "Acme", "--at", "2026-01-01")
    cli("member", "enroll", "B", "-p", "coffee", "--account", "Bolt", "--at", "2026-01-01")
    cli("member", "enroll", "C", "-p", "books", "--at", "2026-01-01")
    return cli


def answer(cli, *args):
    return cli.json("nps", "record", *args)


def scores(rows):
    return [(r["responses"], r["promoters"], r["passives"], r["detractors"], r["nps"]) for r in rows]


def test_empty_ledger_has_no_score(survey):
    [row] = survey.json("nps", "summary")
    assert row == {"responses": 0, "promoters": 0, "passives": 0, "detractors": 0, "promoters_pct": None,
                   "passives_pct": None, "detractors_pct": None, "nps": None}
    assert survey.json("nps", "comments") == []
    assert "no comments" in survey("nps", "comments").stdout


def test_record_takes_the_members_program_and_account_and_is_idempotent(survey):
    r = answer(survey, "A", "--score", "9", "--comment", "great beans", "--at", "2026-02-01", "--response-id", "R1")
    assert r == {"status": "recorded", "response_id": "R1", "member_id": "A", "program": "coffee", "account": "Acme",
                 "score": 9, "group": "promoter", "comment": "great beans", "answered_at": "2026-02-01T00:00:00Z"}
    before = survey.dump()
    again = answer(survey, "A", "--score", "9", "--comment", "great beans", "--response-id", "R1")
    assert again["status"] == "duplicate" and survey.dump() == before
    assert "different content" in survey.fail("nps", "record", "A", "--score", "8", "--response-id", "R1")
    assert survey.dump() == before
    # An account on the response overrides the member's; an account alone is enough.
    assert answer(survey, "B", "--score", "6", "--account", "Other")["account"] == "Other"
    r = answer(survey, "--account", "Zeta", "--score", "0")
    assert (r["member_id"], r["program"], r["account"], r["group"]) == (None, None, "Zeta", "detractor")
    assert survey("nps", "record", "A", "--score", "7").stdout.endswith("A scored 7 (passive)\n")


@pytest.mark.parametrize("args, message, usage", [
    (["--score", "9"], "MEMBER_ID or --account", True),
    (["A", "--score", "11"], "0 to 10", True),
    (["A", "--score", "-1"], "0 to 10", True),
    (["A", "--score", "7.5"], "0 to 10", True),
    (["Z", "--score", "5"], "unknown member 'Z'", False),
    (["A", "--score", "5", "--program", "books"], "not enrolled in program 'books'", False),
    (["A", "--score", "5", "--at", "yesterday"], "ISO-8601", True),
    (["A", "--score", "5", "--response-id", " "], "--response-id", False),
])
def test_record_errors_write_nothing(survey, args, message, usage):
    before = survey.dump()
    assert message in (survey.usage if usage else survey.fail)("nps", "record", *args)
    assert survey.dump() == before


def test_shares_and_rounding(survey):
    for score in (10, 8, 3):  # a third each: 33.3 %, NPS 0.0
        answer(survey, "A", "--score", str(score), "--at", "2026-01-10")
    [row] = survey.json("nps", "summary")
    assert row == {"responses": 3, "promoters": 1, "passives": 1, "detractors": 1, "promoters_pct": "33.3",
                   "passives_pct": "33.3", "detractors_pct": "33.3", "nps": "0.0"}
    answer(survey, "A", "--score", "9", "--at", "2026-01-11")  # 2/4 - 1/4 = 25.0
    assert survey.json("nps", "summary")[0]["nps"] == "25.0"
    answer(survey, "B", "--score", "10", "--at", "2026-03-01")
    answer(survey, "B", "--score", "9", "--at", "2026-03-02")
    answer(survey, "B", "--score", "7", "--at", "2026-03-03")
    # 2 promoters of 3: 66.666... -> 66.7 (from the exact shares, not from the rounded ones)
    row = survey.json("nps", "summary", "--since", "2026-03-01", "--until", "2026-04-01")[0]
    assert (row["nps"], row["promoters_pct"], row["passives_pct"]) == ("66.7", "66.7", "33.3")
    assert survey.json("nps", "summary", "--since", "2026-01-10", "--until", "2026-01-11")[0]["nps"] == "0.0"


def test_half_up_rounding_both_signs(survey):
    # 1 promoter and 15 passives: 6.25 -> 6.3; 1 detractor and 15 passives: -6.25 -> -6.3
    answer(survey, "--account", "Up", "--score", "10")
    answer(survey, "--account", "Down", "--score", "0")
    for _ in range(15):
        answer(survey, "--account", "Up", "--score", "7")
        answer(survey, "--account", "Down", "--score", "8")
    rows = {r["account"]: r for r in survey.json("nps", "summary", "--by", "account")}
    assert (rows["Up"]["nps"], rows["Up"]["promoters_pct"], rows["Up"]["passives_pct"]) == ("6.3", "6.3", "93.8")
    assert (rows["Down"]["nps"], rows["Down"]["detractors_pct"]) == ("-6.3", "6.3")
    # Accounts of members without answers are listed, with no score.
    assert scores([rows["Acme"], rows["Bolt"]]) == [(0, 0, 0, 0, None)] * 2


def test_by_program_single_response_and_all_detractors(survey):
    answer(survey, "A", "--score", "10")
    answer(survey, "C", "--score", "2")
    answer(survey, "C", "--score", "6")
    rows = {r["program"]: r for r in survey.json("nps", "summary", "--by", "program")}
    assert scores([rows["coffee"]]) == [(1, 1, 0, 0, "100.0")]
    assert scores([rows["books"]]) == [(2, 0, 0, 2, "-100.0")]
    assert list(rows) == ["books", "coffee"]
    assert survey.json("nps", "summary", "--by", "program", "--program", "coffee")[0]["nps"] == "100.0"


def test_by_tier_uses_the_tier_at_answer_time(survey):
    answer(survey, "A", "--score", "3", "--at", "2026-01-15")       # A is Bronze
    survey("earn", "A", "--amount", "600", "--at", "2026-02-01")   # upgraded to Silver
    answer(survey, "A", "--score", "10", "--at", "2026-02-15")
    answer(survey, "B", "--score", "9", "--at", "2026-02-15")       # B still Bronze
    answer(survey, "C", "--score", "8", "--at", "2026-02-15")       # books has no tiers
    rows = {(r["program"], r["tier"]): r for r in survey.json("nps", "summary", "--by", "tier")}
    assert scores([rows[("coffee", "Bronze")]]) == [(2, 1, 0, 1, "0.0")]
    assert scores([rows[("coffee", "Silver")]]) == [(1, 1, 0, 0, "100.0")]
    assert scores([rows[("coffee", "Gold")]]) == [(0, 0, 0, 0, None)]
    assert scores([rows[("books", None)]]) == [(1, 0, 1, 0, "0.0")]


def test_by_month_fills_gaps_and_charts(survey):
    answer(survey, "A", "--score", "10", "--at", "2026-01-31T23:59:59Z")
    answer(survey, "B", "--score", "4", "--at", "2026-03-01")
    rows = survey.json("nps", "summary", "--by", "month", "--since", "2025-12-01", "--until", "2026-04-01")
    assert [(r["month"], r["responses"], r["nps"]) for r in rows] == [
        ("2025-12", 0, None), ("2026-01", 1, "100.0"), ("2026-02", 0, None), ("2026-03", 1, "-100.0")]
    out = survey("nps", "summary", "--by", "month").stdout
    assert "NPS per month" in out and "-" + "█" * 40 in out
    text = survey("nps", "summary", "--by", "month", "--format", "csv").stdout
    assert list(csv.reader(io.StringIO(text)))[1:] == [
        ["2026-01", "1", "1", "0", "0", "100.0", "0.0", "0.0", "100.0"],
        ["2026-02", "0", "0", "0", "0", "", "", "", ""],
        ["2026-03", "1", "0", "0", "1", "0.0", "0.0", "100.0", "-100.0"]]
    assert "--until" in survey.fail("nps", "summary", "--since", "2026-02-01", "--until", "2026-01-01")


def test_comments_filters(survey):
    answer(survey, "A", "--score", "2", "--comment", "cold coffee", "--at", "2026-01-01")
    answer(survey, "A", "--score", "10", "--comment", "love it", "--at", "2026-01-02")
    answer(survey, "B", "--score", "5", "--comment", "=slow", "--at", "2026-01-03")
    answer(survey, "B", "--score", "1", "--at", "2026-01-04")  # no comment: nothing to read
    assert [r["comment"] for r in survey.json("nps", "comments")] == ["=slow", "love it", "cold coffee"]
    assert [r["comment"] for r in survey.json("nps", "comments", "--detractors")] == ["=slow", "cold coffee"]
    assert [r["comment"] for r in survey.json("nps", "comments", "--promoters")] == ["love it"]
    assert [r["comment"] for r in survey.json("nps", "comments", "--detractors", "--account", "Acme")] == ["cold coffee"]
    assert "'=slow" in survey("nps", "comments", "--format", "csv").stdout  # formula neutralised
    assert "at most one" in survey.usage("nps", "comments", "--detractors", "--promoters")


def test_import_nps_rejects_and_reimport(survey, tmp_path):
    f = tmp_path / "nps.csv"
    f.write_text("response_id,member_id,account,score,comment,answered_at\n"
                 "S1,A,,9,fast,2026-02-01\n"
                 "S2,,Acme,4,\"too dear\",2026-02-02\n"
                 "S3,B,,11,,2026-02-03\n"
                 "S4,,,5,,2026-02-03\n"
                 "S5,Z,,5,,2026-02-03\n"
                 "S6,B,,7,,\n")
    rejects = tmp_path / "rejects.csv"
    result = survey("import", "nps", str(f), "--rejects", str(rejects), "--format", "json", ok=False)
    assert result.exit_code == 1
    import json

    summary = json.loads(result.stdout)
    assert (summary["applied"], summary["duplicates"], summary["rejected"]) == (2, 0, 4)
    lines = list(csv.DictReader(rejects.open()))
    assert [(r["response_id"], r["line"]) for r in lines] == [("S3", "4"), ("S4", "5"), ("S5", "6"), ("S6", "7")]
    assert "0 to 10" in lines[0]["error"] and "unknown member" in lines[2]["error"]
    [row] = survey.json("nps", "summary")
    assert scores([row]) == [(2, 1, 0, 1, "0.0")]
    # Re-importing records nothing twice; an edited row with a reused id is rejected.
    again = json.loads(survey("import", "nps", str(f), "--format", "json", ok=False).stdout)
    assert (again["applied"], again["duplicates"], again["rejected"]) == (0, 2, 4)
    f.write_text("response_id,member_id,account,score,comment,answered_at\nS1,A,,3,fast,2026-02-01\n")
    assert "different content" in survey("import", "nps", str(f), ok=False).stderr
    f.write_text("response_id,answered_at\nS9,2026-02-01\n")
    assert "missing column(s) score" in survey.fail("import", "nps", str(f))
