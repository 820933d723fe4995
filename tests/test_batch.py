"""Imports run the same engine as single commands, a chunk at a time: an import must give
exactly the ledger, summary and rejects that typing each row as a command gives, in any
order of rows (back-dated ones included) and across chunk boundaries."""

from __future__ import annotations

import csv
import random
from decimal import Decimal, InvalidOperation
from pathlib import Path

import pytest

from conftest import PROGRAMS
from test_imports import ledger_state

COLUMNS = ["txn_id", "member_id", "kind", "occurred_at", "amount", "partner", "points", "reward"]


def _rows(rng: random.Random, n: int, members: list[str]) -> list[dict]:
    """Purchases (some crossing tier thresholds), redemptions (some overdrawing), anonymous
    sales, duplicates, conflicts and bad rows, in time order, spanning lot expiry dates."""
    from datetime import datetime, timedelta

    rows: list[dict] = []
    good: list[dict] = []
    start = datetime(2026, 1, 1)
    for i in range(n):
        ts = (start + timedelta(minutes=i * 500 * 1440 // n)).strftime("%Y-%m-%dT%H:%M:00Z")  # lots expire mid-file
        row = {"txn_id": f"B{i}", "member_id": rng.choice(members), "occurred_at": ts}
        roll = rng.random()
        if roll < 0.55:
            row |= {"kind": "purchase", "amount": rng.choice(["4.99", "120", "333.33", "0.50", "700", "15"])}
            good.append(row)
        elif roll < 0.62:
            row |= {"kind": "purchase", "partner": rng.choice(["hotel", "spa"]), "amount": "200"}
        elif roll < 0.78:
            row |= {"kind": "redeem"} | rng.choice([{"points": str(rng.randrange(1, 900))}, {"reward": "free_coffee"},
                                                    {"reward": "seat_upgrade"}, {"reward": "nope"}])
        elif roll < 0.84:
            row |= {"kind": "purchase", "member_id": "", "amount": "3.10"}
        elif roll < 0.9 and good:
            row = dict(rng.choice(good))  # a repeat of an applied row (a repeat of a rejected one is back-dated)
            if rng.random() < 0.4 and row.get("amount"):
                row["amount"] = "9.99"  # same id, other content: a conflict
        elif roll < 0.95:
            row |= {"kind": "purchase", "amount": rng.choice(["-3", "abc", "1.23456"])}
            if rng.random() < 0.2:  # a valid row under an id reserved for the expire job
                row |= {"txn_id": f"expire-{i}", "amount": "5"}
        else:
            row |= {"kind": "purchase", "member_id": "GHOST", "amount": "5"}
        rows.append(row)
    return rows


def _write(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def _setup(path: Path, program: str, codes=("coffee", "travel", "engage")):
    from loyaltyctl.app import ledger, programs
    from loyaltyctl.store.connection import open_db

    db = open_db(str(path), create=True)
    programs.apply(db, [str(PROGRAMS / f"{code}.yaml") for code in codes])
    members = [f"K{i}" for i in range(8)]
    for m in members:
        ledger.enroll(db, m, program, at="2025-12-01T00:00:00Z")
    # history before the file: a purchase, a redemption, and a debt from a claw-back
    ledger.earn(db, "K0", program_code=program, amount=Decimal("300"), txn="OLD1", at="2025-12-02T00:00:00Z")
    ledger.redeem(db, "K0", program_code=program, points=250, txn="OLD2", at="2025-12-03T00:00:00Z")
    ledger.refund(db, "OLD1", txn="OLD3", at="2025-12-04T00:00:00Z")
    return db, members


def _single(db, row: dict, program: str) -> str:
    """What an operator typing the row as one command would get: its status, or its error."""
    from loyaltyctl.app import ledger
    from loyaltyctl.core.engine import check_txn
    from loyaltyctl.core.values import parse_amount, parse_points
    from loyaltyctl.errors import LoyaltyError

    txn, member, at = row["txn_id"], row["member_id"], row["occurred_at"]
    try:
        check_txn(txn)
        if not member:
            return ledger.anonymous_sale(db, txn, program, parse_amount(row["amount"], "amount"), at)
        if row["kind"] == "purchase":
            result = ledger.earn(db, member, program_code=program, amount=parse_amount(row["amount"], "amount"),
                                 partner=row.get("partner") or None, txn=txn, at=at)
        else:
            points = parse_points(row["points"], "points") if row.get("points") else None
            result = ledger.redeem(db, member, program_code=program, points=points, reward=row.get("reward") or None,
                                   txn=txn, at=at)
        return result.status
    except LoyaltyError as exc:
        return f"rejected: {exc.message}"
    except InvalidOperation as exc:  # pragma: no cover - parse_amount refuses these first
        return f"rejected: bad number: {exc}"


# coffee: tiers on spend (alone: no partner rules anywhere); travel: tiers on points, partner
# rates; engage: untiered, expiry rounded to month end. Shuffled rows arrive out of time order,
# so purchases are back-dated before others already recorded (tiers must still be right).
@pytest.mark.parametrize("program, seed, codes, shuffle", [
    ("coffee", 11, ("coffee", "travel", "engage"), False), ("coffee", 12, ("coffee",), True),
    ("travel", 13, ("coffee", "travel", "engage"), True), ("engage", 14, ("coffee", "travel", "engage"), False)])
def test_import_equals_single_commands(tmp_path, monkeypatch, program, seed, codes, shuffle):
    from loyaltyctl.app import batch

    rng = random.Random(seed)
    rows = _rows(rng, 900, [f"K{i}" for i in range(8)])
    if shuffle:
        rng.shuffle(rows)
    data = tmp_path / "pos.csv"
    _write(data, rows)
    monkeypatch.setattr(batch, "BATCH", 150)  # many chunks, each posting against the ledger the last one wrote
    db, _ = _setup(tmp_path / "batch.db", program, codes)
    first = batch.import_transactions(db, str(data), program=program, rejects=str(tmp_path / "rejects.csv"))
    again = batch.import_transactions(db, str(data), program=program)
    db.close()
    single, _ = _setup(tmp_path / "single.db", program, codes)
    outcomes = [_single(single, row, program) for row in rows]
    repeat = [_single(single, row, program) for row in rows]
    single.close()
    assert ledger_state(tmp_path / "batch.db") == ledger_state(tmp_path / "single.db")
    assert (first.applied, first.duplicates, first.rejected) == (
        outcomes.count("recorded"), outcomes.count("duplicate"), sum(o.startswith("rejected") for o in outcomes))
    assert (again.applied, again.duplicates, again.rejected) == (
        repeat.count("recorded"), repeat.count("duplicate"), sum(o.startswith("rejected") for o in repeat))
    with open(tmp_path / "rejects.csv", newline="") as f:
        rejected = [r["error"] for r in csv.DictReader(f)]
    assert rejected == [o.removeprefix("rejected: ") for o in outcomes if o.startswith("rejected")]
    assert first.applied > 300 and first.duplicates > 20 and first.rejected > 50
    state = ledger_state(tmp_path / "batch.db")
    if program == "engage":  # expiry rounded: every lot expires at the first instant of a month
        assert state["lots"] and all(lot[4].endswith("-01T00:00:00Z") for lot in state["lots"])
    else:
        assert any(t[4] == "earn" for t in state["tiers"])  # upgrades happened in the import
    assert any(e[7] > 0 for e in state["entries"])  # K0's debt was repaid by a later purchase
