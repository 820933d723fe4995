"""Property tests of the ledger core against a simple in-memory model.

The model knows, per member, its lots (FIFO by expiry), its debt (claw-backs not
covered by lots) and each purchase and redemption; from the operations that
succeeded it predicts every balance, every lot's remainder and which
redemptions must be refused. After every step the real ledger must agree and
`verify` must pass."""

from __future__ import annotations

import itertools
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from loyaltyctl.app import admin as maintenance
from loyaltyctl.app import batch as imports
from loyaltyctl.app import jobs
from loyaltyctl.app import ledger as service
from loyaltyctl.app import programs
from loyaltyctl.errors import Conflict
from loyaltyctl.store import members as store
from loyaltyctl.store import readers
from loyaltyctl.store.connection import open_db

PROGRAM = """\
code: sm
name: State machine
currency: GBP
point_value: "0.01"
earn:
  - rule: spend
    points_per_unit: 1
expiry:
  after_days: 40
tiers:
  basis: spend
  window_days: 60
  levels:
    - {name: Bronze, threshold: 0, multiplier: 1}
    - {name: Silver, threshold: 200, multiplier: 2}
rewards:
  - {code: r50, name: Fifty, points: 50}
"""
EXPIRY = timedelta(days=40)
START = datetime(2025, 1, 1, tzinfo=timezone.utc)


def ts(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def floor(x: Decimal) -> int:
    return int(x.to_integral_value(rounding=ROUND_FLOOR))


@dataclass
class Lot:
    txn: str
    points: int
    remaining: int
    expires: datetime
    recorded: bool = False  # the expire job wrote its expiry
    expired: int = 0  # the points it expired then


@dataclass
class Member:
    lots: list[Lot] = field(default_factory=list)
    debt: int = 0  # <= 0
    purchases: dict = field(default_factory=dict)  # txn -> [amount, points, multiplier, refunded, clawed]
    redemptions: dict = field(default_factory=dict)  # txn -> [(lot, taken)], or None once cancelled

    def live(self, t: datetime, first: Lot | None = None) -> list[Lot]:
        lots = [lot for lot in self.lots if lot.remaining > 0 and lot.expires > t]
        lots.sort(key=lambda lot: (lot is not first, lot.expires, self.lots.index(lot)))
        return lots

    def balance(self, t: datetime) -> int:
        return sum(lot.remaining for lot in self.lots if lot.expires > t) + self.debt

    def take(self, points: int, t: datetime, first: Lot | None = None) -> tuple[list, int]:
        taken, rest = [], points
        for lot in self.live(t, first):
            if rest == 0:
                break
            n = min(lot.remaining, rest)
            lot.remaining -= n
            rest -= n
            taken.append((lot, n))
        return taken, rest

    def credit(self, txn: str, points: int, t: datetime) -> None:
        if points <= 0:
            return
        repay = min(-self.debt, points)
        self.debt += repay
        self.lots.append(Lot(txn, points, points - repay, t + EXPIRY))


class Ledger:
    """A fresh database with the test program, in a temp directory."""

    def __init__(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "sm.db")
        self.db = open_db(self.path, create=True)
        prog = Path(self.dir.name) / "sm.yaml"
        prog.write_text(PROGRAM)
        programs.apply(self.db, [str(prog)])

    def close(self):
        self.db.close()
        self.dir.cleanup()


def check_ledger(db, model: dict[str, Member], t: datetime) -> None:
    report = maintenance.verify(db)
    assert report["ok"], report["violations"][:3]
    for member_id, m in model.items():
        enr = store.enrollment(db, member_id, "sm")
        assert store.balance_at(db, enr.id, ts(t)) == m.balance(t), member_id
        # the cached total is the sum of the entries: it still holds remainders of lots past
        # expiry until the expire job records them, and equals the balance once it has
        pending = sum(lot.remaining for lot in m.lots if lot.expires <= t and not lot.recorded)
        ledger_sum = db.scalar("SELECT COALESCE(SUM(points), 0) FROM entries WHERE enrollment_id = ?", (enr.id,))
        points_total, uncovered = store.cached_totals(db, enr.id)
        assert points_total == ledger_sum == m.balance(t) + pending
        assert uncovered == m.debt
        lots = db.all("""SELECT e.txn_id, l.points, l.remaining, l.expires_at FROM lots l
                         JOIN entries e ON e.id = l.entry_id WHERE l.enrollment_id = ? ORDER BY l.id""", (enr.id,))
        assert [tuple(r) for r in lots] == [(lot.txn, lot.points, lot.remaining, ts(lot.expires)) for lot in m.lots]
        assert all(0 <= r[2] <= r[1] for r in lots)


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.ledger = Ledger()
        self.db = self.ledger.db
        self.model: dict[str, Member] = {}
        self.t = START
        self.n = itertools.count()

    def teardown(self):
        self.ledger.close()

    def txn(self) -> str:
        return f"t{next(self.n)}"

    @initialize()
    def enroll_two(self):
        for member in ("A", "B"):
            service.enroll(self.db, member, "sm", at=ts(self.t))
            self.model[member] = Member()

    @rule(days=st.integers(0, 25), hours=st.integers(0, 23))
    def time_passes(self, days, hours):
        self.t += timedelta(days=days, hours=hours)

    @precondition(lambda self: len(self.model) < 4)
    @rule()
    def enroll(self):
        member = "CD"[len(self.model) - 2]
        service.enroll(self.db, member, "sm", at=ts(self.t))
        self.model[member] = Member()

    def _members(self):
        return st.sampled_from(sorted(self.model))

    @rule(data=st.data(), amount=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("250"), places=2))
    def earn(self, data, amount):
        member = data.draw(st.sampled_from(sorted(self.model)))
        txn = self.txn()
        r = service.earn(self.db, member, program_code="sm", amount=amount, txn=txn, at=ts(self.t))
        self._record_purchase(member, txn, amount, r.points)

    def _record_purchase(self, member: str, txn: str, amount: Decimal, points: int) -> None:
        entry = readers.entry_by_txn(self.db, txn)
        mult = Decimal(entry.multiplier)
        assert mult in (1, 2)
        assert points == entry.points == floor(amount * mult)  # 1 point per unit x tier multiplier, floored
        m = self.model[member]
        m.credit(txn, points, self.t)
        m.purchases[txn] = [amount, points, mult, Decimal(0), 0]

    @rule(data=st.data(), points=st.integers(1, 400))
    def redeem(self, data, points):
        member = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[member]
        have = m.balance(self.t)
        txn = self.txn()
        if have < points:
            with pytest.raises(Conflict, match="insufficient points"):
                service.redeem(self.db, member, program_code="sm", points=points, txn=txn, at=ts(self.t))
            return
        r = service.redeem(self.db, member, program_code="sm", points=points, txn=txn, at=ts(self.t))
        assert r.points == -points  # (r["balance"] is as of now, when a debt may outlive expired lots)
        taken, rest = m.take(points, self.t)
        assert rest == 0
        m.redemptions[txn] = taken

    @rule(data=st.data(), part=st.integers(0, 100))
    def refund_purchase(self, data, part):
        candidates = [(mid, txn) for mid, m in sorted(self.model.items()) for txn in m.purchases]
        if not candidates:
            return
        member, ref = data.draw(st.sampled_from(candidates))
        m = self.model[member]
        amount, points, mult, refunded, clawed = m.purchases[ref]
        left = amount - refunded
        if left <= 0:
            with pytest.raises(Conflict, match="already fully refunded"):
                service.refund(self.db, ref, txn=self.txn(), at=ts(self.t))
            return
        refund = None if part == 0 else (left * part / 100).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
        if refund == 0:
            return
        value = left if refund is None else refund
        r = service.refund(self.db, ref, amount=refund, txn=self.txn(), at=ts(self.t))
        target = floor((amount - refunded - value) * mult)
        claw = max(0, points - clawed - target)
        own = next(lot for lot in m.lots if lot.txn == ref) if points > 0 else None
        # points of the purchase that expired are not charged again
        expired = 0 if own is None or own.expires > self.t else (own.expired if own.recorded else own.remaining)
        claw = min(claw, max(0, points - expired - clawed))
        assert r.points == -claw
        _, rest = m.take(claw, self.t, first=own)
        m.debt -= rest
        m.purchases[ref] = [amount, points, mult, refunded + value, clawed + claw]

    @rule(data=st.data())
    def cancel_redemption(self, data):
        candidates = [(mid, txn) for mid, m in sorted(self.model.items()) for txn, moves in m.redemptions.items()
                      if moves is not None]
        if not candidates:
            return
        member, ref = data.draw(st.sampled_from(candidates))
        m = self.model[member]
        r = service.refund(self.db, ref, txn=self.txn(), at=ts(self.t))
        back = 0
        for lot, n in m.redemptions[ref]:
            if lot.expires > self.t:  # points of lots that expired meanwhile stay expired
                lot.remaining += n
                back += n
        assert r.points == back
        m.redemptions[ref] = None

    @rule(data=st.data(), points=st.integers(-300, 300).filter(bool))
    def adjust(self, data, points):
        member = data.draw(st.sampled_from(sorted(self.model)))
        m = self.model[member]
        txn = self.txn()
        service.adjust(self.db, member, points=points, reason="goodwill", program_code="sm", txn=txn, at=ts(self.t))
        if points > 0:
            m.credit(txn, points, self.t)
        else:
            _, rest = m.take(-points, self.t)
            m.debt -= rest

    @rule()
    def expire(self):
        summary = jobs.expire(self.db, as_of=ts(self.t))
        due = [lot for m in self.model.values() for lot in m.lots
               if lot.expires <= self.t and lot.remaining > 0 and not lot.recorded]
        assert (summary["lots"], summary["points"]) == (len(due), sum(lot.remaining for lot in due))
        for lot in due:
            lot.recorded, lot.expired, lot.remaining = True, lot.remaining, 0
        assert jobs.expire(self.db, as_of=ts(self.t))["lots"] == 0  # twice changes nothing

    @rule()
    def tier_review(self):
        jobs.review(self.db, as_of=ts(self.t))  # tiers move; balances must not

    @rule(data=st.data(), n=st.integers(1, 3))
    def import_purchases(self, data, n):
        rows = []
        for _ in range(n):
            member = data.draw(st.sampled_from(sorted(self.model)))
            amount = data.draw(st.decimals(min_value=Decimal("0.01"), max_value=Decimal("250"), places=2))
            rows.append((self.txn(), member, amount))
        path = Path(self.ledger.dir.name) / "batch.csv"
        path.write_text("txn_id,member_id,kind,occurred_at,amount\n"
                        + "".join(f"{txn},{member},purchase,{ts(self.t)},{amount}\n" for txn, member, amount in rows))
        summary = imports.import_transactions(self.db, str(path), program="sm")
        assert (summary.applied, summary.rejected) == (n, 0)
        for txn, member, amount in rows:
            self._record_purchase(member, txn, amount, readers.entry_by_txn(self.db, txn).points)
        again = imports.import_transactions(self.db, str(path), program="sm")  # re-import credits nothing
        assert again.applied == 0 and again.rejected == 0

    @invariant()
    def ledger_matches_model(self):
        if self.model:
            check_ledger(self.db, self.model, self.t)


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                      suppress_health_check=[HealthCheck.too_slow])


# --- plain property: random op sequences on one member --------------------------------

OPS = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 30000)),  # amount in pennies
        st.tuples(st.just("redeem"), st.integers(1, 300)),
        st.tuples(st.just("refund"), st.integers(0, 100)),
        st.tuples(st.just("adjust"), st.integers(-200, 200).filter(bool)),
        st.tuples(st.just("wait"), st.integers(1, 30)),
    ),
    max_size=25,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_random_sequences_keep_the_core_invariants(ops):
    """Balance == sum of entries (once expiries are recorded), no lot remainder negative
    or above its original, and no redemption takes more than the balance just before it."""
    ledger = Ledger()
    db = ledger.db
    try:
        t = START
        service.enroll(db, "M", "sm", at=ts(t))
        purchases = []
        for i, (op, v) in enumerate(ops):
            at = ts(t)
            enr = store.enrollment(db, "M", "sm")
            before = store.balance_at(db, enr.id, at)
            if op == "earn":
                service.earn(db, "M", amount=Decimal(v) / 100, txn=f"p{i}", at=at)
                purchases.append(f"p{i}")
            elif op == "redeem":
                try:
                    service.redeem(db, "M", points=v, txn=f"r{i}", at=at)
                    assert before >= v
                except Conflict:
                    assert before < v
            elif op == "refund" and purchases:
                try:
                    service.refund(db, purchases[v % len(purchases)], txn=f"f{i}", at=at)
                except Conflict as exc:
                    assert "already fully refunded" in str(exc)
            elif op == "adjust":
                service.adjust(db, "M", points=v, reason="fix", txn=f"a{i}", at=at)
            elif op == "wait":
                t += timedelta(days=v)
            lots = db.all("SELECT points, remaining FROM lots")
            assert all(0 <= r["remaining"] <= r["points"] for r in lots)
        jobs.expire(db, as_of=ts(t))
        enr = store.enrollment(db, "M", "sm")
        total = db.scalar("SELECT COALESCE(SUM(points), 0) FROM entries")
        assert store.balance_at(db, enr.id, ts(t)) == total == store.cached_totals(db, enr.id)[0]
        assert db.scalar("SELECT count(*) FROM entries WHERE kind = 'redeem' AND uncovered <> 0") == 0
        assert maintenance.verify(db)["ok"]
    finally:
        ledger.close()
