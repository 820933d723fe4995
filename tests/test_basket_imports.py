"""Baskets in imports: a `lines` JSON column or a purchase_lines file beside the transactions
file, `discount` and `paid_points` columns, refunds naming lines; and a differential test:
importing a file of random baskets gives exactly the ledger single commands give."""

from __future__ import annotations

import csv
import json
import random
import sqlite3
from decimal import Decimal

import pytest

from conftest import PROGRAMS
from test_imports import ledger_state

SKUS = {"LATTE": "3.40", "ESPRESSO": "2.20", "CROISSANT": "2.60", "CAKE": "4.50", "BEANS-250G": "7.99"}
COLUMNS = ["txn_id", "member_id", "kind", "occurred_at", "amount", "points", "ref_txn_id", "lines", "discount",
           "paid_points"]
LINE_COLUMNS = ["txn_id", "sku", "category", "quantity", "unit_price", "discount"]


def test_import_with_a_lines_column_and_a_purchase_lines_file(coffee, tmp_path):
    # I1 (JSON): LATTE 2 x 3.40 + CROISSANT 2.60 x 2 = 6.8 + 5.2 -> 12 points for 9.40;
    # I2 (file): CAKE 4.50 less 0.50 = 4.00 x 2 = 8 points; I3 refunds I1's croissant (-5).
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", "2029-06-01T00:00:00Z")
    lines = json.dumps([{"sku": "LATTE", "quantity": 2, "unit_price": "3.40"},
                        {"sku": "CROISSANT", "quantity": 1, "unit_price": "2.60"}])
    (tmp_path / "t.csv").write_text(
        "txn_id,member_id,kind,occurred_at,amount,ref_txn_id,lines\n"
        f"I1,M1,purchase,2029-06-02T00:00:00Z,,,\"{lines.replace(chr(34), chr(34) * 2)}\"\n"
        "I2,M1,purchase,2029-06-02T01:00:00Z,,,\n"
        "I3,M1,refund,2029-06-03T00:00:00Z,,I1,\"[{\"\"sku\"\": \"\"CROISSANT\"\"}]\"\n")
    (tmp_path / "l.csv").write_text("txn_id,sku,quantity,unit_price,discount\nI2,CAKE,1,4.50,0.50\nGHOST,CAKE,1,1,\n")
    r = coffee("import", "transactions", str(tmp_path / "t.csv"), "--lines", str(tmp_path / "l.csv"))
    assert r.stdout.startswith(f"{tmp_path / 't.csv'}: applied 3, duplicates 0, rejected 0")
    assert "1 txn_id(s) no row of" in r.stderr and "GHOST" in r.stderr
    points = {h["txn_id"]: (h["amount"], h["points"])
              for h in coffee.json("history", "M1", "--as-of", "2029-07-01T00:00:00Z") if h["txn_id"]}
    assert points == {"I1": ("9.40", 12), "I2": ("4.00", 8), "I3": ("2.60", -5)}
    # Again: nothing twice.
    again = coffee.json("import", "transactions", str(tmp_path / "t.csv"), "--lines", str(tmp_path / "l.csv"))
    assert (again["applied"], again["duplicates"]) == (0, 3)


def test_bad_lines_reject_their_row_naming_the_column(coffee, tmp_path):
    coffee("member", "enroll", "M1", "-p", "coffee", "--at", "2029-06-01T00:00:00Z")
    (tmp_path / "t.csv").write_text("txn_id,member_id,kind,occurred_at,lines,paid_points\n"
                                    "B1,M1,purchase,2029-06-02T00:00:00Z,,\n"
                                    "B2,M1,purchase,2029-06-02T00:00:00Z,[],\n"
                                    "B3,M1,purchase,2029-06-02T00:00:00Z,,5\n")
    (tmp_path / "l.csv").write_text("txn_id,sku,quantity,unit_price\nB1,MOCHA,1,3.00\nB3,LATTE,x,3.00\n")
    r = coffee("import", "transactions", str(tmp_path / "t.csv"), "--lines", str(tmp_path / "l.csv"), "-f", "json",
               ok=False)
    errors = [row["error"] for row in json.loads(r.stdout)["rejects"]]
    assert errors == [
        "lines: line 1 (MOCHA): sku 'MOCHA' is not in the catalogue of 'coffee'; give its category",
        "lines: a basket needs at least one line",
        f"lines: {tmp_path / 'l.csv'}:3: quantity 'x' is not a whole number of items (1 or more)"]


# --- differential: import == single commands ---------------------------------------------------


def _basket(rng: random.Random) -> list[dict]:
    return [{"sku": sku, "quantity": rng.randrange(1, 4), "unit_price": SKUS[sku],
             **({"discount": "0.20"} if rng.random() < 0.2 else {})}
            for sku in rng.sample(sorted(SKUS), rng.randrange(1, 4))]


def _rows(rng: random.Random, n: int) -> tuple[list[dict], dict[str, list[dict]]]:
    rows, baskets, in_file = [], {}, {}
    for i in range(n):
        at = f"2029-{1 + i * 10 // n + 1:02d}-{1 + i % 27:02d}T{i % 24:02d}:00:00Z"
        member = rng.choice(["D0", "D1", "D2"])
        row = {"txn_id": f"x{i}", "member_id": member, "occurred_at": at}
        roll = rng.random()
        if roll < 0.5:
            basket = _basket(rng)
            row |= {"kind": "purchase", "discount": rng.choice(["", "", "1.00", "pastry:0.50"]),
                    "paid_points": rng.choice(["", "", "", "50", "5000"])}
            if rng.random() < 0.5:
                row["lines"] = json.dumps(basket)
            else:
                in_file[row["txn_id"]] = basket
            baskets[row["txn_id"]] = (member, basket)
        elif roll < 0.6:
            row |= {"kind": "purchase", "amount": rng.choice(["12.00", "80", "3.33"]),
                    "paid_points": rng.choice(["", "30"])}
            baskets[row["txn_id"]] = (member, None)
        elif roll < 0.8 and baskets:
            ref = rng.choice(sorted(baskets))
            owner, basket = baskets[ref]
            row |= {"kind": "refund", "member_id": owner, "ref_txn_id": ref}
            if basket and rng.random() < 0.7:
                row["lines"] = json.dumps([{"sku": rng.choice(basket)["sku"], "quantity": rng.randrange(1, 3)}])
        elif roll < 0.9:
            row |= {"kind": "redeem", "points": str(rng.randrange(1, 60))}
        elif rows:
            row = dict(rng.choice(rows))  # a duplicate, or a conflict
            if rng.random() < 0.5 and row.get("lines") and row["kind"] == "purchase":
                row["lines"] = json.dumps(_basket(rng))
        rows.append(row)
    return rows, in_file


def _apply_single(db, row: dict, in_file: dict) -> None:
    from loyaltyctl.app import ledger as service
    from loyaltyctl.io import baskets
    from loyaltyctl.core.values import parse_amount, parse_points

    kind, member, txn, at = row["kind"], row["member_id"], row["txn_id"], row["occurred_at"]
    text = row.get("lines") or (json.dumps(in_file[txn]) if txn in in_file else "")
    if kind == "purchase":
        basket = baskets.basket_json(text) if text else None
        discounts = tuple(baskets.parse_discount(d) for d in row.get("discount", "").split(";") if d)
        order = service.Order(basket.lines if basket else (), None, discounts,
                              int(row["paid_points"]) if row.get("paid_points") else None)
        amount = parse_amount(row["amount"]) if row.get("amount") else None
        service.earn(db, member, program_code="coffee", amount=amount, txn=txn, at=at, order=order)
    elif kind == "refund":
        lines = baskets.refund_json(text) if text else ()
        service.refund(db, row["ref_txn_id"], txn=txn, at=at, member_id=member, lines=lines)
    else:
        service.redeem(db, member, program_code="coffee", points=parse_points(row["points"]), txn=txn, at=at)


def _lines_of(path) -> list:
    conn = sqlite3.connect(path)
    try:
        return sorted(conn.execute("""SELECT e.txn_id, l.line_no, l.sku, l.category, l.quantity, l.unit_price_e4,
                                             l.discount_e4, l.order_discount_e4, l.points
                                      FROM purchase_lines l JOIN entries e ON e.id = l.entry_id"""))
    finally:
        conn.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_importing_baskets_gives_exactly_the_ledger_of_single_commands(tmp_path, seed, monkeypatch):
    from loyaltyctl.app import batch as imports
    from loyaltyctl.app import ledger as service
    from loyaltyctl.app import programs
    from loyaltyctl.errors import LoyaltyError
    from loyaltyctl.store.connection import open_db

    monkeypatch.setattr(imports, "BATCH", 7)  # many batch boundaries
    rows, in_file = _rows(random.Random(seed), 240)
    with open(tmp_path / "rows.csv", "w", newline="") as f:
        w = csv.DictWriter(f, COLUMNS, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    with open(tmp_path / "lines.csv", "w", newline="") as f:
        w = csv.DictWriter(f, LINE_COLUMNS, lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        w.writerows({"txn_id": txn, **line} for txn, basket in in_file.items() for line in basket)
    dbs = []
    for name in ("batch.db", "single.db"):
        db = open_db(str(tmp_path / name), create=True)
        programs.apply(db, [str(PROGRAMS / "coffee.yaml")])
        for i in range(3):
            service.enroll(db, f"D{i}", "coffee", at="2029-01-01T00:00:00Z")
            service.adjust(db, f"D{i}", points=300, reason="start", program_code="coffee", txn=f"start{i}",
                           at="2029-01-01T00:00:00Z")
        dbs.append(db)
    summary = imports.import_transactions(dbs[0], str(tmp_path / "rows.csv"), program="coffee",
                                          lines=str(tmp_path / "lines.csv"))
    ok = rejected = 0
    for row in rows:
        try:
            _apply_single(dbs[1], row, in_file)
            ok += 1
        except LoyaltyError:
            rejected += 1
    for db in dbs:
        db.close()
    assert summary.rejected == rejected and summary.applied + summary.duplicates == ok
    assert summary.applied > 80 and summary.rejected > 5
    batch, single = ledger_state(tmp_path / "batch.db"), ledger_state(tmp_path / "single.db")
    assert any(e[0].endswith("/points") for e in batch["entries"])  # payments with points and their return
    assert any(e[3] == "refund" for e in batch["entries"])
    assert batch == single
    lines = _lines_of(tmp_path / "batch.db")
    assert any(q < 0 for *_, q, _p, _d, _o, _pts in lines)  # refunded lines
    assert lines == _lines_of(tmp_path / "single.db")
    assert sum(Decimal(line[5]) for line in lines) != 0
