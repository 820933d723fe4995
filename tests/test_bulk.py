"""The batch fast path (loyaltyctl/bulk.py) must give exactly the ledger, summary and
rejects of the row-by-row path, and must really be taken for ordinary POS files."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    from loyaltyctl import service
    from loyaltyctl.ledger.db import open_db

    db = open_db(str(path), create=True)
    service.apply_programs(db, [str(PROGRAMS / f"{code}.yaml") for code in codes])
    members = [f"K{i}" for i in range(8)]
    for m in members:
        service.enroll(db, m, program, at="2025-12-01T00:00:00Z")
    # history before the file: a purchase, a redemption, and a debt from a claw-back
    service.earn(db, "K0", program_code=program, amount=__import__("decimal").Decimal("300"), txn="OLD1",
                 at="2025-12-02T00:00:00Z")
    service.redeem(db, "K0", program_code=program, points=250, txn="OLD2", at="2025-12-03T00:00:00Z")
    service.refund(db, "OLD1", txn="OLD3", at="2025-12-04T00:00:00Z")
    return db, members


# coffee: tiers on spend (alone: no partner rules anywhere, so spend is read from the purchases
# index); travel: tiers on points, partner rates; engage: untiered, expiry rounded to month end
@pytest.mark.parametrize("program, seed, codes", [
    ("coffee", 11, ("coffee", "travel", "engage")), ("coffee", 12, ("coffee",)),
    ("travel", 13, ("coffee", "travel", "engage")), ("engage", 14, ("coffee", "travel", "engage"))])
def test_fast_path_equals_row_by_row(tmp_path, monkeypatch, program, seed, codes):
    from loyaltyctl import bulk, imports

    rows = _rows(random.Random(seed), 1500, [f"K{i}" for i in range(8)])
    data = tmp_path / "pos.csv"
    _write(data, rows)
    taken = []
    real = bulk.apply_batch

    def spy(*args, **kwargs):
        result = real(*args, **kwargs)
        taken.append(result is not None)
        return result

    results = {}
    for mode in ("fast", "slow"):
        db, _ = _setup(tmp_path / f"{mode}.db", program, codes)
        monkeypatch.setattr(bulk, "apply_batch", spy if mode == "fast" else (lambda *a, **k: None))
        monkeypatch.setattr(imports, "BATCH", 400)
        first = imports.import_transactions(db, str(data), program=program, rejects=str(tmp_path / f"{mode}.csv"))
        if mode == "fast":
            first_batches = list(taken)
        # re-importing: rows rejected the first time are back-dated now, so those batches go row by row
        again = imports.import_transactions(db, str(data), program=program)
        db.close()
        results[mode] = (first.as_dict(), again.as_dict(), ledger_state(tmp_path / f"{mode}.db"),
                         (tmp_path / f"{mode}.csv").read_text())
    assert first_batches and all(first_batches)  # every batch of the first import went the fast way
    fast, slow = results["fast"], results["slow"]
    assert fast[0] == slow[0] and fast[1] == slow[1]
    assert fast[2] == slow[2]
    assert fast[3] == slow[3]  # the same rejects, line by line, with the same messages
    summary = fast[0]
    assert summary["applied"] > 500 and summary["duplicates"] > 20 and summary["rejected"] > 50
    assert fast[1]["duplicates"] + fast[1]["rejected"] == len(rows)
    if program == "engage":  # expiry rounded: every lot expires at the first instant of a month
        assert fast[2]["lots"] and all(lot[4].endswith("-01T00:00:00Z") for lot in fast[2]["lots"])
    else:
        assert any(t[4] == "earn" for t in fast[2]["tiers"])  # upgrades happened on the fast path
    assert any(e[7] > 0 for e in fast[2]["entries"])  # K0's debt was repaid by a later purchase


def test_back_dated_rows_take_the_row_by_row_path(tmp_path, monkeypatch):
    from loyaltyctl import bulk, imports

    db, _ = _setup(tmp_path / "b.db", "coffee")
    data = tmp_path / "late.csv"
    _write(data, [{"txn_id": "L1", "member_id": "K0", "kind": "purchase", "occurred_at": "2025-12-02T12:00:00Z",
                   "amount": "10"}])  # before K0's existing claw-back
    taken = []
    real = bulk.apply_batch
    monkeypatch.setattr(bulk, "apply_batch", lambda *a, **k: taken.append(real(*a, **k)) or taken[-1])
    summary = imports.import_transactions(db, str(data), program="coffee")
    assert summary.applied == 1 and taken == [None]


@settings(max_examples=300, deadline=None)
@given(member=st.text(min_size=1, max_size=12), program=st.text(min_size=1, max_size=8),
       partner=st.none() | st.text(max_size=8), reward=st.none() | st.text(max_size=8),
       points=st.none() | st.integers(1, 10**14), cents=st.integers(1, 10**12), places=st.integers(0, 4))
def test_fast_path_content_is_the_service_content(member, program, partner, reward, points, cents, places):
    """The fast path assembles content JSON from memoised pieces; it must be byte for byte the
    service's, or a re-import would call its own rows conflicts."""
    from decimal import Decimal

    from loyaltyctl import bulk, service
    from loyaltyctl.values import parse_amount

    memo = bulk._Memo()
    amount = service._num(parse_amount(str(Decimal(cents).scaleb(-places))))
    assert memo.purchase_content(member, program, amount, partner) == service._content(
        member=member, program=program, kind="purchase", amount=amount, partner=partner, event=None)
    assert memo.redeem_content(member, program, points, reward) == service._content(
        member=member, program=program, kind="redeem", points=points, reward=reward)
    assert memo.anonymous_content(program, amount) == service._content(program=program, kind="anonymous",
                                                                       amount=amount)
