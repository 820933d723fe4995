"""`loyaltyctl demo`: a deterministic demo ledger built through the ordinary use cases."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from ..core.commands import Discount
from ..core.values import fmt_ts, now
from ..errors import LoyaltyError
from ..store.connection import Database
from . import jobs, ledger, programs
from .members import listing

PROGRAMS_DIR = Path(__file__).parent.parent / "programs"
MEMBERS = 240


def build(db: Database, members: int = MEMBERS, seed: int = 7) -> dict:
    """Apply the example programs and, once per database, enroll synthetic members
    and record a year of purchases, events, redemptions and refunds."""
    applied = programs.apply(db, [str(PROGRAMS_DIR)])
    if members_exist(db):
        return {"programs": applied, "created": False}
    rng = random.Random(seed)
    today = _last_noon(now())
    start = today - timedelta(days=420)
    names = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken", "Margaret", "Linus", "Radia", "Tim", "Frances",
             "Donald", "Hedy", "Dennis", "Katherine", "John"]
    with db.write():
        for i in range(1, members + 1):
            member = f"D{i:04d}"
            joined = start + timedelta(days=rng.randrange(0, 200), hours=rng.randrange(0, 10))
            name = f"{rng.choice(names)} {chr(65 + i % 26)}."
            program = rng.choices(["coffee", "cashback", "engage", "travel", "books"], [5, 2, 2, 2, 1])[0]
            tags = ["card_member"] if program == "cashback" and rng.random() < 0.4 else []
            referrer = None
            if program == "engage" and i > 10 and rng.random() < 0.3:
                referrer = _enrolled_before(db, rng, "engage", fmt_ts(joined))
            ledger.enroll(db, member, program, name=name, email=f"{member.lower()}@example.com", tags=tags,
                           referred_by=referrer, at=fmt_ts(joined))
            _activity(db, rng, member, program, joined, today)
        for i in range(1, 13):
            ledger.enroll(db, f"C{i:03d}", "club", name=f"{rng.choice(names)} {chr(65 + i)}.",
                           at=fmt_ts(start + timedelta(days=rng.randrange(0, 300))))
        _basket(db, today)
    # the nightly jobs, as cron would have run them
    jobs.expire(db, fmt_ts(today))
    jobs.review(db, fmt_ts(today))
    return {"programs": applied, "created": True}


def _last_noon(moment):
    """The latest 12:00 UTC not after `moment`: the demo's "today", never in the future (the
    jobs refuse a future --as-of), whatever the hour the demo is built."""
    noon = moment.replace(hour=12, minute=0, second=0, microsecond=0)
    return noon if noon <= moment else noon - timedelta(days=1)


BASKET_TXN = "DEMO-BASKET-1"


def _basket(db: Database, today) -> None:
    """A café basket, so `loyaltyctl explain DEMO-BASKET-1` shows points per line: two lattes
    and a croissant (a pastry, double points), with 0.50 off the order."""
    from ..core.commands import Line

    ledger.enroll(db, "B0001", "coffee", name="Barbara B.", email="b0001@example.com",
                  at=fmt_ts(today - timedelta(days=30)))
    lines = (Line("LATTE", 2, Decimal("3.40")), Line("CROISSANT", 1, Decimal("2.60")))
    ledger.earn(db, "B0001", program_code="coffee", txn=BASKET_TXN, at=fmt_ts(today - timedelta(days=2)),
                order=ledger.Order(lines, discounts=(Discount(Decimal("0.50")),)))


def _enrolled_before(db: Database, rng: random.Random, program: str, at: str) -> str | None:
    rows = list(listing(db, program, as_of=at))
    return rng.choice(rows)["member_id"] if rows else None


def _activity(db: Database, rng: random.Random, member: str, program: str, joined, today) -> None:
    heavy = rng.random()
    visits = int(3 + heavy * heavy * 90)
    gaps = (today - joined).days
    when = joined
    for n in range(visits):
        when = when + timedelta(days=rng.expovariate(visits / max(gaps, 1)), minutes=rng.randrange(1, 600))
        if when >= today:
            break
        at = fmt_ts(when)
        amount = Decimal(rng.randrange(250, 6000 if program != "travel" else 40000)) / 100
        txn = f"DEMO-{member}-{n}"
        try:
            if program == "engage" and rng.random() < 0.15:
                ledger.earn(db, member, event=rng.choice(["email_signup", "app_download", "review", "social_connect"]),
                             txn=txn, at=at)
            elif program == "travel" and rng.random() < 0.3:
                ledger.earn(db, member, amount=amount, partner=rng.choice(["hotel", "car_rental"]), txn=txn, at=at)
            else:
                ledger.earn(db, member, amount=amount, txn=txn, at=at)
                if rng.random() < 0.04:
                    ledger.refund(db, txn, amount=(amount / 2).quantize(Decimal("0.01")), at=at)
            if rng.random() < 0.12:
                d = ledger.program(db, program)
                rewards = sorted((r for r in d.rewards.values() if r.get("points")), key=lambda r: r["points"])
                if rewards:
                    ledger.redeem(db, member, reward=rewards[0]["code"], at=at)
        except LoyaltyError:
            continue  # e.g. a once-only event earned already, or too few points: a real day has those too


def members_exist(db: Database) -> bool:
    """Whether the demo members were created already (a demo runs once per database)."""
    from ..store import members as store

    return store.member(db, "D0001") is not None
