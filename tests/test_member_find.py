"""`member find`: operators look members up by id, name or email, best match first."""

from __future__ import annotations

from conftest import PROGRAMS

AT = "2026-01-01T00:00:00Z"


def _ledger(cli):
    cli("program", "apply", str(PROGRAMS / "coffee.yaml"))
    for member, name, email in (("M1", "Ada Lovelace", "ada@example.com"), ("M2", "Adam Smith", None),
                                ("M3", "José Núñez", "jose@shop.es"), ("ADA-9", "Grace Hopper", "grace@navy.mil")):
        cli("member", "enroll", member, "-p", "coffee", "--name", name, *(["--email", email] if email else []),
            "--at", AT)
    return cli


def found(cli, *args) -> list[str]:
    return [r["member_id"] for r in cli.json("member", "find", *args)]


def test_every_word_must_start_a_word_of_id_name_or_email(cli):
    _ledger(cli)
    assert found(cli, "ada") == ["M1", "M2", "ADA-9"]  # name and email, name, id: ranked
    assert found(cli, "love ada") == ["M1"]  # both words, any order
    assert found(cli, "LOVELACE") == ["M1"]  # case does not matter
    assert found(cli, "nunez") == ["M3"]  # nor do accents
    assert found(cli, "example.com") == ["M1"]
    assert found(cli, "navy") == ["ADA-9"]
    assert found(cli, "ada", "--limit", "1") == ["M1"]
    assert found(cli, "zzz") == []
    assert "no member matches 'zzz'" in cli("member", "find", "zzz").stdout


def test_the_best_match_comes_first(cli):
    _ledger(cli)
    cli("member", "enroll", "M5", "-p", "coffee", "--name", "Ada Ada Ada", "--at", AT)
    assert found(cli, "ada")[0] == "M5"  # bm25: the word three times in a short name


def test_an_erased_member_is_never_found(cli):
    _ledger(cli)
    cli("member", "erase", "M1", "--yes")
    assert found(cli, "lovelace") == [] and found(cli, "ada") == ["M2", "ADA-9"]


def test_bad_queries_are_one_line_errors_and_write_nothing(cli):
    _ledger(cli)
    before = cli.dump()
    assert cli.fail("member", "find", '"*') == "Error: TEXT: give a word of a member's id, name or email"
    assert cli.fail("member", "find", "   ") == "Error: TEXT: give a word of a member's id, name or email"
    assert "--limit" in cli.usage("member", "find", "ada", "--limit", "0")
    assert "--limit" in cli.usage("member", "find", "ada", "--limit", "99999999999999999999")
    assert found(cli, 'ada" OR "x') == []  # FTS syntax in the text is searched for, not run
    assert cli.dump() == before


def test_a_table_on_an_empty_ledger(cli):
    assert cli("member", "find", "ada").stdout.strip() == "no member matches 'ada'"
