"""Explaining numbers: one transaction's arithmetic and lots (`explain`), and the
effect of a changed program definition before it is applied (`program plan`)."""

from __future__ import annotations

import json
from decimal import ROUND_FLOOR, Decimal

from ..core import rules
from ..core.engine import RESERVED_TXN_PREFIX
from ..core.program import Program
from ..core.values import from_e4, money, now_ts, shift, to_e4, ts_or_now
from ..errors import NotFound
from ..reports.points import outstanding
from ..store import explain as sql
from ..store import members as member_store
from ..store import programs as program_store
from ..store import readers
from ..store.connection import Database
from .jobs import review_moves


def explain(db: Database, txn_id: str) -> dict:
    """How one transaction came about and what later touched it."""
    row = sql.entry(db, txn_id)
    if row is None:
        sale = sql.anonymous_sale(db, txn_id)
        if sale is None:
            return _pending_expiry(db, txn_id)
        return {"txn_id": txn_id, "kind": "anonymous sale", "program": sale["program_code"],
                "amount": money(sale["amount_e4"]), "effective_at": sale["effective_at"],
                "explanation": ["a non-member purchase: stored for analytics, earns no points"]}
    e = row
    enr = member_store.enrollment_by_id(db, e["enrollment_id"])
    number, text = program_store.definition_of_version(db, e["program_version_id"])
    version = {"version": number}
    definition = json.loads(text)
    out: dict = {
        "txn_id": e["txn_id"], "member_id": enr.member_id, "program": enr.program,
        "program_version": version["version"], "kind": e["kind"], "rule": _rule_text(e),
        "rule_definition": definition["earn"][e["rule_index"]] if e["rule_index"] is not None else None,
        "points": e["points"], "effective_at": e["effective_at"], "recorded_at": e["recorded_at"],
        "amount": money(abs(e["amount_e4"])) if e["amount_e4"] is not None else None,
        "rate": e["rate"], "tier": e["tier"], "multiplier": e["multiplier"],
    }
    lines: list[str] = []
    if e["kind"] == "earn" and e["amount_e4"] is not None:
        view = Program(definition, number, e["program_version_id"])
        payment = sql.payment_of(db, e["id"])
        rows = sql.purchase_lines(db, e["id"])
        if rows or payment or e["reason"] or not _rated(e):
            _explain_order(view, enr, e, rows, payment, out, lines)
        else:
            amount = from_e4(e["amount_e4"])
            earned = rules.earn_points(amount, Decimal(e["rate"]), Decimal(e["multiplier"]))
            out["arithmetic"] = earned.arithmetic(amount, Decimal(e["rate"]), Decimal(e["multiplier"]))
            who = f"partner {e['partner']} rule" if e["partner"] else "spend rule"
            tier = f"tier {e['tier']} (multiplier {e['multiplier']})" if e["tier"] else "no tier multiplier"
            lines.append(f"{who} earn[{e['rule_index']}] of {enr.program} v{version['version']}: "
                         f"{e['rate']} points per {definition['currency']}, {tier}, rounded down")
            lines.append(out["arithmetic"])
    elif e["kind"] == "refund" and e["rule_kind"] != "redeem":
        out.update(_clawback(db, e))
        lines.append(out["arithmetic"])
    elif e["kind"] == "earn" and e["rule_kind"] == "event":
        lines.append(f"event rule earn[{e['rule_index']}]: {e['event']} earns {e['points']} points")
    elif e["kind"] == "earn" and e["rule_kind"] == "referral":
        lines.append(f"referral rule earn[{e['rule_index']}]: {e['reason']}")
    elif e["kind"] == "redeem":
        lines.append(f"redeemed {-e['points']} points" + (f" for reward {e['reward']}" if e["reward"] else "")
                     + (f" ({e['reason']})" if e["reason"] else "") + ", taken from the lots that expire soonest")
    elif e["kind"] == "refund":
        ref = readers.entry_by_id(db, e["ref_entry_id"])
        what = f"{e['reason']} ({ref.txn_id}, in the share refunded)" if e["reason"] else f"cancels redemption {ref.txn_id}"
        lines.append(f"{what}: points go back to their lots unless those expired")
    elif e["kind"] == "expire":
        cause = "no earn or redemption for the program's inactivity period" if e["rule_kind"] == "inactivity" \
            else "its expiry date"
        lines.append(f"expiry: the unused remainder of a lot when it expired ({cause})")
    elif e["kind"] == "adjust":
        lines.append(f"manual adjustment: {e['reason']}")
    elif e["kind"] == "opening":
        lines.append("opening balance migrated from another system")
    if e["uncovered"] < 0:
        lines.append(f"{-e['uncovered']} points were not covered by any lot: the member owes them (negative balance)")
    elif e["uncovered"] > 0:
        lines.append(f"{e['uncovered']} points of it repaid points the member owed")
    lot = sql.lot_of_entry(db, e["id"])
    if lot:
        out["lot"] = {"lot": lot["id"], "points": lot["points"], "earned_at": lot["earned_at"],
                      "expires_at": lot["expires_at"], "remaining": lot["remaining"]}
        lines.append(f"created lot {lot['id']} of {lot['points']} points, "
                     + (f"expiring {lot['expires_at']}" if lot["expires_at"] else "never expiring")
                     + f"; {lot['remaining']} remain")
    moves = [dict(r) for r in sql.moves_of_entry(db, e["id"])]
    out["lots_moved"] = moves
    for m in moves:
        if lot and m["lot"] == lot["id"]:
            continue
        verb = "took" if m["points"] < 0 else "returned"
        lines.append(f"{verb} {abs(m['points'])} points {'from' if m['points'] < 0 else 'to'} lot {m['lot']} "
                     f"(earned by {m['lot_txn_id']}, expires {m['expires_at'] or 'never'})")
    later = [dict(r) for r in sql.later_effects(db, e["id"], lot["id"] if lot else None)]
    out["later"] = later
    for r in later:
        lines.append(f"later: {r['txn_id']} ({r['kind']}, {r['effective_at']}) moved {r['points']:+d} points")
    if e["kind"] == "earn":
        _tier_effects(db, enr.id, e, out, lines)
    out["explanation"] = lines
    return out


def _rated(e: dict) -> bool:
    return rules.earned_as_rated(e["points"], from_e4(e["amount_e4"]), Decimal(e["rate"]), Decimal(e["multiplier"]))


def _explain_order(p: Program, enr, e: dict, rows: list, payment: dict | None, out: dict, lines: list[str]) -> None:
    """A purchase with lines, a visit bonus, points paid or --no-points: what each line and
    each per-order rule earned, worked out again by the rules that earned it."""
    cur = p.currency
    value = Decimal(-payment["points"]) * p.point_value if payment else Decimal(0)
    cut = value if p.earn_on == "net" else Decimal(0)
    if payment:
        out["paid_points"] = -payment["points"]
        lines.append(f"paid {-payment['points']} points ({money(value, cur)}) of the order with {payment['txn_id']}; "
                     f"points earned on the {'net' if cut else 'gross'} amount (earn_on: {p.earn_on})")
    if e["reason"]:
        lines.append(f"recorded with {e['reason']}: it counts for tiers and analytics")
    tier = f"tier {e['tier']} (multiplier {e['multiplier']})" if e["tier"] else "no tier multiplier"
    if e["rule_index"] is None:  # --no-points where no spend rule applies
        lines.append(f"{e['points']} points in all (--no-points)")
        return
    if rows:
        cuts = rules.allocate(to_e4(cut), [x.paid_e4 for x in rows], rules.currency_step(cur))
        earned = rules.earn_basket(p, enr.tags, e["tier"], rows, enr.member_id, cuts)
        out["lines"] = [_line_row(p, x, how) for x, how in zip(rows, earned.lines)]
        lines.append(f"{len(rows)} lines, {tier}; the lines' points rounded down once and shared by largest remainder")
        lines += [_line_text(p, x, how) for x, how in zip(rows, earned.lines)]
    else:
        t = rules.purchase_terms(p, enr.tags, e["partner"], e["tier"], enr.member_id)
        earned = rules.Earning(0, t.rule, t.rate, t.multiplier, (), t.order)
        base = from_e4(e["amount_e4"]) - cut
        exact = base * t.rate * t.multiplier
        out["arithmetic"] = f"{money(base)} x {t.rate} x {t.multiplier} = {exact.normalize():f} -> {int(exact)}"
        lines.append(f"earn[{t.rule.index}] on the amount, {tier}: {out['arithmetic']}")
    for rule, exact, points in earned.order:
        lines.append(f"earn[{rule.index}] per order: {rule.get('points_per_unit')} x "
                     f"{rules.tier_multiplier(p, rule, e['tier'])} = {exact.normalize():f} -> {points}")
    lines.append(f"{e['points']} points in all" + (" (--no-points)" if e["reason"] else ""))


def _line_row(p: Program, x, how) -> dict:
    return {"line": x.line_no, "sku": x.sku, "category": x.category, "quantity": x.quantity,
            "unit_price": money(x.unit_price_e4, p.currency), "discount": money(x.discount_e4, p.currency),
            "order_discount": money(x.order_discount_e4, p.currency), "paid": money(x.paid_e4, p.currency),
            "rule": f"earn[{how.rule.index}]" if how.rule else None, "arithmetic": how.arithmetic(),
            "points": x.points}


def _line_text(p: Program, x, how) -> str:
    cur = p.currency
    less = [f"{money(v, cur)} {what}" for v, what in ((x.discount_e4, "off the line"),
                                                       (x.order_discount_e4, "of the order discount")) if v]
    price = f"{x.quantity} x {x.sku}" + (f" ({x.category})" if x.category else "") + f" at {money(x.unit_price_e4, cur)}"
    price += (", less " + " and ".join(less) if less else "") + f" = {money(x.paid_e4, cur)}"
    rule = f"earn[{how.rule.index}] per {how.rule.get('per', 'amount')}" if how.rule else "no rule covers it"
    return f"line {x.line_no}: {price}; {rule}: {how.arithmetic()}; {x.points} points"


def _pending_expiry(db: Database, txn_id: str) -> dict:
    """expire-<lot>, as `history` shows an expiry the expire job has not recorded yet: balances
    already leave its points out; the job will record it, dated at the lot's expiry."""
    lot_id = txn_id[len(RESERVED_TXN_PREFIX):]
    known = txn_id.startswith(RESERVED_TXN_PREFIX) and lot_id.isdigit() and len(lot_id) < 19  # an SQL integer
    lot = sql.lot(db, int(lot_id)) if known else None
    pending = lot and next((p for p in member_store.pending_expiries(db, lot["enrollment_id"], now_ts())
                            if p.lot_id == lot["id"]), None)
    if pending is None:
        raise NotFound(f"unknown transaction {txn_id!r}")
    enr = member_store.enrollment_by_id(db, lot["enrollment_id"])
    cause = ("no earn or redemption for the program's inactivity period" if pending.rule == "inactivity"
             else "its expiry date")
    lines = [f"expiry not recorded yet: lot {lot['id']} ({lot['points']} points earned by {lot['txn_id']} at "
             f"{lot['earned_at']}) expired at {pending.expires_at} ({cause}) with {pending.points} points unused",
             "balances already leave them out; `loyaltyctl expire` records this entry, dated at the expiry"]
    version = program_store.require_program(db, enr.program).version  # the version the job records it under
    return {"txn_id": txn_id, "member_id": enr.member_id, "program": enr.program, "program_version": version,
            "kind": "expire", "status": "pending", "rule": pending.rule, "points": -pending.points,
            "effective_at": pending.expires_at, "recorded_at": None,
            "lot": {"lot": lot["id"], "points": lot["points"], "earned_at": lot["earned_at"],
                    "expires_at": pending.expires_at, "txn_id": lot["txn_id"]},
            "explanation": lines}


def _tier_effects(db: Database, enrollment_id: int, e: dict, out: dict, lines: list[str]) -> None:
    """The upgrades this credit made: at its own moment, or later when it was back-dated (a
    credit it helped over a threshold)."""
    changes = sql.tier_changes_made_by(db, enrollment_id, e["id"], e["effective_at"])
    out["tier_changes"] = [{"at": c["effective_at"], "from": c["previous"], "to": c["tier"], "reason": c["reason"]}
                           for c in changes]
    own = next((c for c in changes if c["effective_at"] == e["effective_at"]), None)
    if own:
        out["tier_change"] = {"from": own["previous"], "to": own["tier"], "reason": own["reason"]}
    for c in changes:
        when = "" if c is own else f" from {c['effective_at']}"
        lines.append(f"this purchase moved the member {c['previous']} -> {c['tier']}{when} ({c['reason']}); "
                     "later purchases earn at the new rate")


def _inactivity_effect(db: Database, new: Program, at: str) -> dict:
    """Who an inactivity rule taking effect now would hit: members holding points with no earn
    or redemption for inactivity_days already lose them inactivity_days from now unless they
    become active (the rule counts from when it takes effect)."""
    days = new.inactivity_days
    members, points = program_store.inactive_holders(db, new.code, shift(at, -days), at)
    return {"inactivity_members": members, "inactivity_points": points, "inactivity_expires_at": shift(at, days),
            "note_inactivity": (f"inactivity expiry ({days} days) counts from when the version is applied: "
                                f"{members} members already inactive that long hold {points} points, which "
                                f"expire {days} days later unless they earn or redeem")}


def _rule_text(e) -> str:
    return f"earn[{e['rule_index']}] {e['rule_kind']}" if e["rule_index"] is not None else e["rule_kind"]


def _clawback(db: Database, e) -> dict:
    """The arithmetic of a purchase refund: net points = what the remaining amount earns."""
    ref = sql.entry_by_id(db, e["ref_entry_id"])
    before = sql.refunds_before(db, ref["id"], e["id"])
    purchase = from_e4(ref["amount_e4"])
    refunded_before = from_e4(before["amount_e4"])
    this = from_e4(-e["amount_e4"])
    left = purchase - refunded_before - this
    rate, mult = Decimal(ref["rate"]), Decimal(ref["multiplier"])
    kept = ref["points"] - before["points"]
    rows = sql.purchase_lines(db, e["id"])
    if rows:
        taken = "; ".join(f"{-x.quantity} x {x.sku} (line {x.line_no}) {x.points:+d}" for x in rows)
        bonus = -e["points"] - -sum(x.points for x in rows)
        return {"ref_txn_id": ref["txn_id"], "lines": [{"line": x.line_no, "sku": x.sku, "quantity": -x.quantity,
                                                        "amount": money(-x.paid_e4), "points": x.points} for x in rows],
                "arithmetic": f"refunded lines of {ref['txn_id']}: {taken}" + (
                    f"; its last line takes back the {bonus} per-order points too" if bonus > 0 else "")}
    if sql.payment_of(db, ref["id"]) or not _rated(ref):
        target = int(ref["points"] * left / purchase)
        return {"ref_txn_id": ref["txn_id"],
                "arithmetic": (f"purchase {ref['txn_id']} {money(purchase)} earned {ref['points']} (not amount x rate: "
                               f"it keeps the share of its points its remaining amount bears); remaining "
                               f"{money(left)}: {ref['points']} x {money(left)} / {money(purchase)} -> {target}; {kept} "
                               f"kept before this refund, so {kept - target} clawed back")}
    exact = left * rate * mult
    target = int(exact.to_integral_value(rounding=ROUND_FLOOR))
    return {
        "ref_txn_id": ref["txn_id"],
        "arithmetic": (f"purchase {ref['txn_id']} {money(purchase)} earned {ref['points']}; after refunds of "
                       f"{money(refunded_before + this)} the remaining {money(left)} x {rate} x {mult} = "
                       f"{exact.normalize():f} -> {target}; {kept} kept before this refund, so {kept - target} "
                       f"clawed back"),
    }


# --- program plan ----------------------------------------------------------------------


def _flatten(value, path: str = "") -> dict[str, str]:
    if isinstance(value, dict):
        out: dict[str, str] = {}
        for k in sorted(value):
            if value[k] is None or value[k] == [] or value[k] is False and k in ("once",):
                continue
            out.update(_flatten(value[k], f"{path}.{k}" if path else k))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{path}[{i}]"))
        return out
    return {path: json.dumps(value) if not isinstance(value, str) else value}


def diff(old: dict | None, new: dict) -> list[dict]:
    """Readable changes between two definitions, as (field, before, after) rows."""
    a, b = _flatten(old or {}), _flatten(new)
    rows = []
    for key in sorted(set(a) | set(b), key=_sort_key):
        if a.get(key) != b.get(key):
            change = "added" if key not in a else "removed" if key not in b else "changed"
            rows.append({"field": key, "change": change, "before": a.get(key), "after": b.get(key)})
    return rows


def _sort_key(path: str):
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"[.\[\]]+", path) if p]


def plan(db: Database, paths: list[str], as_of: str | None = None) -> list[dict]:
    """For each changed program: the diff, and its effect on today's members."""
    from ..io.programs import load_paths, to_canonical_json

    from .programs import check_change

    at = ts_or_now(as_of, "as_of")
    out = []
    for path, program in load_paths(paths):
        check_change(db, path, program)
        canonical = to_canonical_json(program)
        found = program_store.current(db, program.code)
        row = found[0] if found else None
        new = Program(json.loads(canonical), (row.version + 1) if row else 1, -1)
        if row is not None and row.definition == canonical:
            out.append({"code": program.code, "path": path, "status": "unchanged", "changes": [], "effects": {}})
            continue
        old = Program.from_json(row.definition, row.version, row.version_id) if row else None
        out.append({"code": program.code, "path": path, "status": "new" if old is None else "changed",
                    "version": new.version, "changes": diff(old.data if old else None, new.data),
                    "effects": _effects(db, old, new, at) if old else {}})
    return out


def _effects(db: Database, old: Program, new: Program, at: str) -> dict:
    """Tier moves at the next review, and liability / expiring points before and after (the
    figures `report liability` gives)."""
    effects: dict = {"as_of": at}
    if new.tiered:
        effects["tier_moves_at_next_review"] = review_moves(db, new, at, old)
        if old.tiered:
            effects["tier_moves_without_change"] = review_moves(db, old, at)
        effects["note_tiers"] = "downgrades at the review still respect tiers.review.grace_days"
    now = outstanding(db, at, new.code).get(new.code)
    points, soon30, soon90 = (now.points, now.expiring_30d, now.expiring_90d) if now else (0, 0, 0)
    effects["outstanding_points"] = points
    effects["liability_before"] = money(points * old.point_value, old.currency)
    effects["liability_after"] = money(points * new.point_value, new.currency)
    effects["expiring_30d_points"] = soon30
    effects["expiring_90d_points"] = soon90
    if (old.after_days, old.round_to) != (new.after_days, new.round_to):
        effects["note_expiry"] = ("existing lots keep their expiry dates; the new expiry rule applies to points "
                                  "earned after the change")
    if new.inactivity_days is not None and new.inactivity_days != old.inactivity_days:
        effects.update(_inactivity_effect(db, new, at))
    effects.update(_earning_effect(db, new, at))
    return effects


def _earning_effect(db: Database, new: Program, at: str) -> dict:
    """Who the program's validity and eligible tags keep from earning."""
    out: dict = {}
    tags = program_store.member_tags(db, new.code, at)
    if new.eligible_tags:
        barred = sum(1 for t in tags if not rules.eligible(new, t))
        out.update(ineligible_members=barred, note_eligibility=(
            f"only members tagged {' or '.join(new.eligible_tags)} earn: {barred} of {len(tags)} members "
            "cannot earn"))
    if new.starts_at or new.ends_at:
        why = rules.earning_refusal(new, at)
        span = f"from {new.starts_at or 'the start'} until {new.ends_at or 'further notice'}"
        out.update(earning_open=why is None, note_validity=(
            f"earning runs {span}: " + (f"refused now ({why}) for all {len(tags)} members" if why
                                        else f"open now for {len(tags)} members")))
    return out
