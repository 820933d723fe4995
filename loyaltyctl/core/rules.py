"""The program rules as pure functions: earning, claw-back, expiry dates and lot life,
tier thresholds and reviews. No I/O; the engine and the jobs feed them values.

The store names the same rules in SQL where reports must run them over a whole
ledger (store/fragments.py); tests/test_rules.py holds the two against each other."""

from __future__ import annotations

import bisect
import calendar
import json
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_FLOOR, Decimal
from functools import lru_cache

from ..errors import Conflict, InputError, NotFound
from .program import Level, Program, Rule
from .values import fmt_ts, money, shift, to_dt

# --- earning -------------------------------------------------------------------------


@dataclass(frozen=True)
class Earned:
    """Points an amount earns, and the exact product they were rounded from."""

    points: int
    exact: Decimal  # the unrounded product

    def arithmetic(self, amount: Decimal, rate: Decimal, multiplier: Decimal) -> str:
        return f"{amount} x {rate} x {multiplier} = {self.exact.normalize():f} -> {self.points}"


def earn_points(amount: Decimal, rate: Decimal, multiplier: Decimal = Decimal(1)) -> Earned:
    """floor(amount * rate * multiplier); exact decimal arithmetic, rounded down."""
    exact = amount * rate * multiplier
    return Earned(int(exact.to_integral_value(rounding=ROUND_FLOOR)), exact)


def points_for(amount: Decimal, rate: Decimal, multiplier: Decimal) -> int:
    """earn_points(...).points: amounts, rates and multipliers are never negative, so
    truncating the exact product is rounding it down."""
    return int(amount * rate * multiplier)


@dataclass(frozen=True)
class Terms:
    """The rule a purchase without lines earns under, its rate and the tier multiplier, and
    the points per-order rules add (a visit bonus)."""

    rule: Rule
    rate: Decimal
    multiplier: Decimal
    order_points: int = 0
    order: tuple = ()  # (rule, exact, points) of the per-order rules


def purchase_terms(program: Program, tags, partner: str | None, tier: str | None, member: str) -> Terms:
    """The partner's rule, else the first spend rule whose condition the member meets that
    earns on the amount of a purchase without lines (no categories or skus in its scope);
    partner rules apply no tier multiplier unless they say so, spend rules do."""
    key = ("terms", tags, partner, tier)
    found = program.memo.get(key)
    if found is None:
        found = program.memo[key] = _terms(program, tags, partner, tier, member)
    return found


def _terms(program: Program, tags, partner: str | None, tier: str | None, member: str) -> Terms:
    if partner:
        rule = program.partner_rule(partner)
        if rule is None:
            partners = program.names("partner", "partner")
            raise NotFound(f"unknown partner {partner!r} in {program.code!r}"
                           + (f" (known: {', '.join(partners)})" if partners else ""), field="partner")
    else:
        return _spend_terms(program, tags, tier, member)
    multiplier = tier_multiplier(program, rule, tier)
    return Terms(rule, Decimal(str(rule.get("points_per_unit"))), multiplier)


def _spend_terms(program: Program, tags, tier: str | None, member: str) -> Terms:
    rules = spend_rules(program, tags, member)
    rule = next((r for r in rules if r.get("per", "amount") == "amount" and _specificity(r, None, None) == 2), None)
    order = order_earnings(program, [r for r in rules if r.get("per") == "order" and _order_covers(r, ())], tier)
    if rule is None:  # nothing earns on an amount alone: cite the member's first rule, at rate 0
        return Terms(order[0][0] if order else rules[0], Decimal(0), Decimal(1), sum(o[2] for o in order), order)
    return Terms(rule, Decimal(str(rule.get("points_per_unit"))), tier_multiplier(program, rule, tier),
                 sum(o[2] for o in order), order)


def spend_rules(program: Program, tags, member: str) -> list[Rule]:
    """The spend rules whose condition the member meets (none: an error)."""
    rules = program.spend_rules(tags)
    if not rules:
        raise InputError(f"program {program.code!r} has no spend rule for member {member!r}")
    return rules


def tier_multiplier(program: Program, rule: Rule, tier: str | None) -> Decimal:
    """Spend rules apply the tier's multiplier unless they say not to; partner rules only if they say so."""
    use = rule.get("tier_multiplier")
    use = (rule.kind == "spend") if use is None else use
    return program.multiplier(tier) if (program.tiered and use) else Decimal(1)


def claw_back(purchase_amount: Decimal, refunded_before: Decimal, refund: Decimal, points_earned: int,
              clawed_before: int, rate: Decimal, multiplier: Decimal, *, proportional: bool = False) -> int:
    """Points to take back so the purchase nets what its remaining amount would earn; a
    purchase whose points are not its amount x rate x multiplier (a visit bonus, paid partly
    with points) keeps the share of its points its remaining amount bears, rounded down."""
    remaining_amount = purchase_amount - refunded_before - refund
    if proportional:
        target = int(points_earned * remaining_amount / purchase_amount) if purchase_amount else 0
    else:
        target = earn_points(remaining_amount, rate, multiplier).points
    return max(0, points_earned - clawed_before - target)


def earned_as_rated(points: int, amount: Decimal, rate: Decimal, multiplier: Decimal) -> bool:
    """Whether a purchase's points are exactly its amount x rate x multiplier, rounded down."""
    return points == points_for(amount, rate, multiplier)


# --- baskets ---------------------------------------------------------------------------
#
# Money is in 1/10,000 of the currency (e4) and is split at the currency's smallest unit.
# A line earns under the most specific spend rule covering it (one naming its sku, else its
# category, else one without categories or skus; among equals the first), per currency unit
# (`per: amount`) or per item (`per: unit`); rules naming categories or skus earn on the line's
# price less its own discounts, the others also less its share of order-wide discounts.
# The catalogue's multiplier for its sku (else its category) multiplies what it earns.
# Lines' points are rounded down once for the whole basket, and shared among the lines by
# largest remainder, so they add up. `per: order` rules add their points once per order.

MAX_LINES = 1000
MAX_QUANTITY = 1_000_000


def allocate(total: int, weights: list[int], step: int = 1) -> list[int]:
    """`total` (a multiple of `step`) shared in proportion to `weights`, in multiples of
    `step`: each share rounded down, the rest one step each to the largest remainders (the
    first on ties). The shares add up to `total`."""
    whole = sum(weights)
    if not total or not whole:
        return [0] * len(weights)
    units = total // step
    shares = [units * w // whole for w in weights]
    rest = units - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-(units * weights[i] % whole), i))
    for i in order[:rest]:
        shares[i] += 1
    return [x * step for x in shares]


def split_points(exacts: list[Decimal]) -> list[int]:
    """Points for each line: their exact sum rounded down, shared by largest remainder."""
    total = int(sum(exacts, Decimal(0)).to_integral_value(rounding=ROUND_FLOOR))
    floors = [int(x.to_integral_value(rounding=ROUND_FLOOR)) for x in exacts]
    rest = total - sum(floors)
    order = sorted(range(len(exacts)), key=lambda i: (-(exacts[i] - floors[i]), i))
    for i in order[:rest]:
        floors[i] += 1
    return floors


def currency_step(currency: str) -> int:
    """The currency's smallest unit in 1/10,000 (100 for GBP, 10,000 for JPY)."""
    from .values import minor_unit

    return 10 ** max(0, 4 - minor_unit(currency))


def basket_total(basket) -> Decimal:
    """What an order costs: its lines less their discounts, less the basket's discounts."""
    lines = sum((x.quantity * x.unit_price - x.discount for x in basket.lines), Decimal(0))
    return lines - sum((d.amount for d in basket.discounts), Decimal(0))


def price_basket(program: Program, basket) -> tuple:
    """The basket's lines as the ledger keeps them (categories from the catalogue, category
    and order-wide discounts shared among the lines; points not yet known)."""
    from .records import PurchaseLine

    if not basket.lines:
        raise InputError("a basket needs at least one line", field="lines")
    if len(basket.lines) > MAX_LINES:
        raise InputError(f"more than {MAX_LINES} lines", field="lines")
    lines = [PurchaseLine(0, no, *_priced(program, no, line)) for no, line in enumerate(basket.lines, start=1)]
    step = currency_step(program.currency)
    for d in basket.discounts:
        lines = _discounted(program, lines, d, step)
    if sum(line.paid_e4 for line in lines) <= 0:
        raise InputError("the basket comes to nothing: an order must cost something", field="lines")
    return tuple(lines)


def _priced(program: Program, no: int, line) -> tuple:
    from .values import check_precision, to_e4

    where = f"line {no} ({line.sku})"
    if not 1 <= line.quantity <= MAX_QUANTITY:
        raise InputError(f"{where}: quantity must be a whole number from 1 to {MAX_QUANTITY:,}", field="lines")
    for what, value in (("unit_price", line.unit_price), ("discount", line.discount)):
        try:
            check_precision(value, program.currency, "lines")
        except InputError as exc:
            raise InputError(f"{where}: {what} {exc.detail}", field="lines") from None
    gross, discount = line.quantity * to_e4(line.unit_price), to_e4(line.discount)
    if discount > gross:
        raise InputError(f"{where}: discount {line.discount} exceeds the line's {money(gross)}", field="lines")
    return line.sku, line_category(program, line.sku, line.category, where), line.quantity, to_e4(line.unit_price), \
        discount


def line_category(program: Program, sku: str, given: str | None, where: str) -> str | None:
    """A line's category: as given, else the catalogue's for its sku. With a catalogue, an
    unknown category, or a sku it lacks without a category, is refused (a typo would earn
    the wrong points)."""
    category = given or program.skus.get(sku)
    if category is not None and program.categories and category not in program.categories:
        raise InputError(f"{where}: unknown category {category!r} (known: {', '.join(sorted(program.categories))})",
                         field="lines")
    if category is None and program.skus:
        raise InputError(f"{where}: sku {sku!r} is not in the catalogue of {program.code!r}; give its category",
                         field="lines")
    return category


def _discounted(program: Program, lines: list, d, step: int) -> list:
    """Lines after a discount: one limited to a category is shared among its lines (their
    own discount grows), an order-wide one among all lines; in proportion to what is left."""
    from .values import check_precision, to_e4

    check_precision(d.amount, program.currency, "discount")
    amount = to_e4(d.amount)
    chosen = [i for i, line in enumerate(lines) if d.category is None or line.category == d.category]
    if not chosen:
        raise InputError(f"no line of category {d.category!r} to discount", field="discount")
    left = [lines[i].paid_e4 for i in chosen]
    if amount > sum(left):
        raise InputError(f"{d.amount} exceeds the {money(sum(left))} it applies to", field="discount")
    out = list(lines)
    for i, share in zip(chosen, allocate(amount, left, step)):
        line = out[i]
        out[i] = replace(line, discount_e4=line.discount_e4 + share) if d.category else \
            replace(line, order_discount_e4=line.order_discount_e4 + share)
    return out


@dataclass(frozen=True)
class LineEarning:
    """How one line earned: under `rule` (None: no rule covers it), per amount or unit."""

    line_no: int
    rule: Rule | None
    base: Decimal  # the amount (or the items) it earned on
    rate: Decimal
    multiplier: Decimal  # tier multiplier x the catalogue's multiplier
    exact: Decimal
    points: int

    def arithmetic(self) -> str:
        if self.rule is None:
            return "0"
        unit = "items" if self.rule.get("per") == "unit" else ""
        base = f"{self.base.normalize():f} {unit}".strip() if unit else f"{self.base}"
        return f"{base} x {self.rate} x {self.multiplier.normalize():f} = {self.exact.normalize():f} -> {self.points}"


@dataclass(frozen=True)
class Earning:
    """The points of a purchase with lines: per line and per order, and the rule its entry cites."""

    points: int
    rule: Rule
    rate: Decimal
    multiplier: Decimal  # the cited rule's tier multiplier
    lines: tuple[LineEarning, ...]
    order: tuple = ()  # (rule, exact, points) of the per-order rules


def earn_basket(program: Program, tags, tier: str | None, lines, member: str, reductions=None) -> Earning:
    """Points of a basket (`lines` priced by price_basket) for a member of these tags at this
    tier; `reductions` (e4 per line) lower what rules without categories or skus earn on,
    like an order-wide discount (points paid, when the program earns on the net amount)."""
    rules = spend_rules(program, tags, member)
    per_line = [r for r in rules if r.get("per", "amount") != "order"]
    reductions = reductions or [0] * len(lines)
    found = [_line_earning(program, line, per_line, tier, cut) for line, cut in zip(lines, reductions)]
    points = split_points([x.exact for x in found])
    found = [replace(x, points=p) for x, p in zip(found, points)]
    order = order_earnings(program, [r for r in rules if r.get("per") == "order" and _order_covers(r, lines)], tier)
    cited = next((x.rule for x in found if x.rule is not None), None) or (order[0][0] if order else rules[0])
    return Earning(sum(points) + sum(o[2] for o in order), cited, Decimal(str(cited.get("points_per_unit"))),
                   tier_multiplier(program, cited, tier), tuple(found), order)


def _line_earning(program: Program, line, rules: list[Rule], tier: str | None, cut: int) -> LineEarning:
    from .values import from_e4

    rule = covering_rule(rules, line.sku, line.category)
    if rule is None:
        return LineEarning(line.line_no, None, Decimal(0), Decimal(0), Decimal(1), Decimal(0), 0)
    if rule.get("per") == "unit":
        base = Decimal(line.quantity)
    else:
        scoped = _specificity(rule, line.sku, line.category) < 2
        base = from_e4(line.own_e4 if scoped else line.paid_e4 - cut)
    rate = Decimal(str(rule.get("points_per_unit")))
    mult = tier_multiplier(program, rule, tier) * product_multiplier(program, line.sku, line.category)
    return LineEarning(line.line_no, rule, base, rate, mult, base * rate * mult, 0)


def product_multiplier(program: Program, sku: str | None, category: str | None) -> Decimal:
    found = program.multipliers.get(sku) if sku is not None else None
    if found is None and category is not None:
        found = program.multipliers.get(category)
    return found if found is not None else Decimal(1)


def covering_rule(rules: list[Rule], sku: str | None, category: str | None) -> Rule | None:
    """The most specific rule covering a line: naming its sku, else its category, else
    without categories or skus; the first of equals."""
    best, rank = None, 3
    for rule in rules:
        level = _specificity(rule, sku, category)
        if level is not None and level < rank:
            best, rank = rule, level
    return best


def _specificity(rule: Rule, sku: str | None, category: str | None) -> int | None:
    """0 the rule names the sku, 1 its category, 2 it names neither (covers every line);
    None: it does not cover the line."""
    scope = rule.get("scope") or {}
    if sku is not None and sku in (scope.get("exclude_skus") or ()):
        return None
    if sku is not None and sku in (scope.get("skus") or ()):
        return 0
    if category is not None and category in (scope.get("categories") or ()):
        return 1
    return 2 if not scope.get("skus") and not scope.get("categories") else None


def _order_covers(rule: Rule, lines) -> bool:
    """A per-order rule applies to an order without lines when it names no categories or
    skus, and to a basket when it covers one of its lines."""
    if not lines:
        return _specificity(rule, None, None) is not None
    return any(_specificity(rule, line.sku, line.category) is not None for line in lines)


def order_earnings(program: Program, rules: list[Rule], tier: str | None) -> tuple:
    out = []
    for rule in rules:
        exact = Decimal(str(rule.get("points_per_unit"))) * tier_multiplier(program, rule, tier)
        out.append((rule, exact, int(exact.to_integral_value(rounding=ROUND_FLOOR))))
    return tuple(out)


def refund_rows(lines, refunded, wanted, step: int, txn: str) -> tuple:
    """What a refund takes back of a basket's lines, as lines with negative quantity and points:
    `wanted` (sku, quantity) pairs, from the first lines of that sku with units left (none:
    everything left). A line's money and points go back in proportion to its units,
    cumulatively, so refunding all of it takes back exactly what it cost and earned."""
    done: dict[int, int] = {}
    for row in refunded:
        done[row.line_no] = done.get(row.line_no, 0) - row.quantity
    picks = [(x, x.quantity - done.get(x.line_no, 0)) for x in lines] if not wanted else \
        _picks(lines, dict(done), wanted, txn)
    out = []
    for line, n in picks:
        if n > 0:
            out.append(_refund_row(line, done.get(line.line_no, 0), n, step))
            done[line.line_no] = done.get(line.line_no, 0) + n
    return tuple(out)


def _picks(lines, done: dict[int, int], wanted, txn: str) -> list:
    picks = []
    for sku, n in wanted:
        mine = [x for x in lines if x.sku == sku]
        if not mine:
            raise InputError(f"purchase {txn!r} has no line {sku!r} (its lines: "
                             f"{', '.join(dict.fromkeys(x.sku for x in lines))})", field="lines")
        want = n
        for line in mine:
            take = min(want, line.quantity - done.get(line.line_no, 0))
            if take > 0:
                picks.append((line, take))
                done[line.line_no] = done.get(line.line_no, 0) + take
                want -= take
        if want:
            raise Conflict(f"{sku}: {n} to refund, but purchase {txn!r} has only {n - want} left to refund",
                           field="lines")
    return picks


def _refund_row(line, before: int, n: int, step: int):
    """Line `line`'s units before+1 .. before+n refunded."""
    q = line.quantity

    def part(total: int, k: int, unit: int = step) -> int:
        return (2 * total * k + q * unit) // (2 * q * unit) * unit  # total * k / q, half up, in units

    def share(total: int) -> int:
        return part(total, before + n) - part(total, before)

    points = line.points * (before + n) // q - line.points * before // q
    return replace(line, quantity=-n, discount_e4=-share(line.discount_e4),
                   order_discount_e4=-share(line.order_discount_e4), points=-points)


def fully_refunded(lines, refunded) -> bool:
    """Whether every unit of every line has been refunded."""
    done: dict[int, int] = {}
    for row in refunded:
        done[row.line_no] = done.get(row.line_no, 0) - row.quantity
    return all(done.get(x.line_no, 0) >= x.quantity for x in lines)


def points_back(paid: int, amount_e4: int, before_e4: int, after_e4: int) -> int:
    """Points paid on an order that a refund gives back: the share of them the refunded part
    of the order bears, counted cumulatively (all of them once it is refunded in full)."""
    return paid * after_e4 // amount_e4 - paid * before_e4 // amount_e4


def give_back(moves, returned, usable: set, due: int) -> list[tuple[int, int]]:
    """Where `due` points a payment took go back: to the lots it took them from that are still
    alive (`usable`), in the order taken, each up to what it gave less what refunds already
    gave back; what lots now expired gave is lost, as when a redemption is cancelled."""
    back: dict[int, int] = {}
    for lot, points in returned:
        back[lot] = back.get(lot, 0) + points
    out = []
    for lot, taken in moves:
        if due <= 0:
            break
        give = min(-taken - back.get(lot, 0), due) if lot in usable else 0
        if give > 0:
            out.append((lot, give))
            back[lot] = back.get(lot, 0) + give
            due -= give
    return out


def content(**fields) -> str:
    """The canonical text of a request, compared when a transaction id is used again: its
    fields as JSON with sorted keys (json.dumps(..., sort_keys=True)), built from memoised
    pieces because imports make one per row."""
    parts = [f"{_quoted(k)}: {_json_value(v)}" for k, v in sorted(fields.items()) if v is not None]
    return "{" + ", ".join(parts) + "}"


def _json_value(value) -> str:
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str):
        return _quoted(value)
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    return _quoted(str(value))


@lru_cache(maxsize=65536)
def _quoted(text: str) -> str:
    return json.dumps(text)


def eligible(program: Program, tags) -> bool:
    """Whether a member of these tags may earn: the program names no eligible_tags, or the
    member has one of them."""
    return not program.eligible_tags or bool(set(program.eligible_tags) & set(tags))


def earning_refusal(program: Program, at: str) -> str | None:
    """Why nothing earns at `at` (before starts_at, from ends_at on), else None."""
    if program.starts_at and at < program.starts_at:
        return f"program {program.code!r} starts at {program.starts_at}: nothing earns before then"
    if program.ends_at and at >= program.ends_at:
        return f"program {program.code!r} ended at {program.ends_at}: nothing earns from then on"
    return None


def per_point_take(available: int, required: int) -> int:
    """A per-point reward takes the largest multiple of `required` points available (Odoo:
    10 points, 3 required -> 9 taken)."""
    return max(available, 0) // required * required


# --- events ----------------------------------------------------------------------------


def period_start(at: datetime, per: str) -> datetime:
    """Start of the calendar period (day/week/month/year) containing `at`."""
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    if per == "day":
        return day
    if per == "week":
        return day - timedelta(days=day.weekday())
    if per == "month":
        return day.replace(day=1)
    return day.replace(month=1, day=1)


def period_end(start: datetime, per: str) -> datetime:
    if per == "day":
        return start + timedelta(days=1)
    if per == "week":
        return start + timedelta(days=7)
    if per == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(year=start.year + 1)


def event_refusal(rule: Rule, event: str, member: str, at: str, earned: list[str]) -> str | None:
    """Why an event may not earn now (once per member, or a count per period), else None;
    `earned` are the times the member already earned it."""
    if rule.get("once") and earned:
        return f"event {event!r} earns once per member and {member!r} already has it"
    limit = rule.get("limit")
    if limit:
        start = period_start(to_dt(at), limit["per"])
        lo, hi = fmt_ts(start), fmt_ts(period_end(start, limit["per"]))
        if sum(1 for t in earned if lo <= t < hi) >= limit["count"]:
            return (f"event {event!r} earns at most {limit['count']} times per {limit['per']}; "
                    f"member {member!r} has reached the limit")
    return None


# --- lots ------------------------------------------------------------------------------


def lot_expiry(earned_at: datetime, after_days: int | None, round_to: str | None = None) -> datetime | None:
    """When a lot earned at `earned_at` expires; None means never.
    round_to month_end/year_end moves it to the first instant after that month/year."""
    if not after_days:
        return None
    expires = earned_at + timedelta(days=after_days)
    if round_to == "month_end":
        last = calendar.monthrange(expires.year, expires.month)[1]
        expires = expires.replace(day=last, hour=0, minute=0, second=0) + timedelta(days=1)
    elif round_to == "year_end":
        expires = expires.replace(year=expires.year + 1, month=1, day=1, hour=0, minute=0, second=0)
    return expires


def expiry_for(program: Program, at: str) -> str | None:
    """The expiry date the program gives points earned at `at` (None: never)."""
    if not program.after_days:
        return None
    if program.round_to:  # rounded to the end of a month or year: the time of day does not matter
        return _expiry_on(at[:10], program.after_days, program.round_to)
    return _day_shift(at[:10], program.after_days) + at[10:]


@lru_cache(maxsize=4096)
def _expiry_on(day: str, after_days: int, round_to: str) -> str:
    return fmt_ts(lot_expiry(to_dt(day + "T00:00:00Z"), after_days, round_to))


def inactivity_deadline(start: str, days: int, activity: tuple[str, ...]) -> str:
    """When a lot lapses for inactivity: the first moment `days` pass after `start` (its
    earning, or when the rule in force took effect if later) or a later activity (an earn or
    redemption) with no activity between. The member's lots lapse together: their chains run
    through the same activity. While the member stays active it is a projection."""
    x = start
    deadline = shift(x, days)
    for a in activity[bisect.bisect_right(activity, start):]:
        if a >= deadline:
            break
        x = a
        deadline = shift(x, days)
    return deadline


def lot_end(lot, activity: tuple[str, ...]) -> str | None:
    """A lot's effective expiry: the sooner of its date and its inactivity deadline (None: never)."""
    if lot.inactivity_days is None:
        return lot.expires_at
    deadline = inactivity_deadline(lot.inactivity_from or lot.earned_at, lot.inactivity_days, activity)
    return deadline if lot.expires_at is None else min(lot.expires_at, deadline)


def lot_alive(lot, at: str, activity: tuple[str, ...]) -> bool:
    """Usable at `at`: earned by then and not expired (by date or inactivity)."""
    if lot.earned_at > at:
        return False
    end = lot_end(lot, activity)
    return end is None or end > at


def fifo_order(lots, activity: tuple[str, ...], first: int | None = None) -> list:
    """Lots in consumption order: `first` ahead (a refund's own lot), then soonest expiry,
    never-expiring last, then by id."""
    def key(lot):
        end = lot_end(lot, activity)
        return (lot.id != first, end is None, end or "", lot.id)
    return sorted(lots, key=key)


def fifo_take(lots: list[tuple[int, int]], points: int) -> tuple[list[tuple[int, int]], int]:
    """Take `points` from lots given as (lot_id, remaining), already in consumption
    order (soonest expiry first). Returns [(lot_id, taken)] and the uncovered rest."""
    taken: list[tuple[int, int]] = []
    rest = points
    for lot_id, remaining in lots:
        if rest <= 0:
            break
        take = min(remaining, rest)
        if take > 0:
            taken.append((lot_id, take))
            rest -= take
    return taken, rest


# --- tiers -------------------------------------------------------------------------------


def window_start(at: datetime, window_days: int) -> datetime:
    return at - timedelta(days=window_days)


def window_end(at: str, window_days: int) -> str:
    """When a credit made at `at` leaves the tier window."""
    return _days_later(at, window_days)


def _days_later(at: str, days: int) -> str:
    """A stored timestamp moved by whole days: the time of day stays, the date is worked out once per day."""
    return _day_shift(at[:10], days) + at[10:]


@lru_cache(maxsize=8192)
def _day_shift(day: str, days: int) -> str:
    return shift(day + "T00:00:00Z", days)[:10]


def qualifying_total(window, at: str, window_days: int) -> int:
    """The tier window's total at `at`: items inside (at - window_days, at] that count by then."""
    start = _days_later(at, -window_days)
    lo = bisect.bisect_right(window, start, key=lambda q: q.at)
    hi = bisect.bisect_right(window, at, key=lambda q: q.at)
    return sum(q.value for q in window[lo:hi] if q.since <= at)


def qualifying_value(program: Program, total: int) -> Decimal:
    """A window total as the unit its thresholds are in (spend is stored in 1/10,000)."""
    from .values import from_e4

    return from_e4(total) if program.basis == "spend" else Decimal(total)


def reached_index(program: Program, total: int) -> int:
    """The index of the level a window total (in stored units) reaches, without Decimals."""
    bounds = program.memo.get("bounds")
    if bounds is None:
        scale = 10_000 if program.basis == "spend" else 1
        bounds = program.memo["bounds"] = [lv.threshold * scale for lv in program.levels]
    return max(bisect.bisect_right(bounds, total) - 1, 0)


def counts_for_tier(program: Program, rule_kind: str) -> bool:
    """Whether a credit of this rule counts toward the program's tier window: spend tiers
    count the operator's own purchases only (not partner sales), points tiers every earn."""
    if program.basis == "spend":
        return rule_kind == "spend"
    return rule_kind in ("spend", "partner", "event", "referral")


def upgrade_to(program: Program, tier: str | None, total: Decimal) -> tuple[Level, str] | None:
    """The level a qualifying total reaches, with the reason, when it is above `tier`."""
    current = program.level(tier)
    reached = program.level_for(total)
    if current is not None and reached.index <= current.index:
        return None
    spend = program.basis == "spend"
    unit = program.currency if spend else "points"
    cur = program.currency
    return reached, (f"qualifying {program.basis} {money(total, cur) if spend else total} {unit} reached "
                     f"{reached.name}'s {money(reached.threshold, cur) if spend else reached.threshold}")


def tier_at(tiers, at: str):
    """The latest tier change in force at `at` (tiers sorted by (effective_at, id)), or None."""
    i = bisect.bisect_right(tiers, at, key=lambda c: c.effective_at)
    return tiers[i - 1] if i else None


@dataclass(frozen=True)
class ReviewCase:
    """One member at a review: total in the window, current tier, manual floor in force."""

    total: Decimal
    tier: str | None
    floor: str | None


def review_target(program: Program, case: ReviewCase) -> Level:
    """The tier a review gives: what the window earns, but never below a manual floor."""
    target = program.level_for(case.total)
    floor = program.level(case.floor)
    return floor if floor and floor.index > target.index else target


def review_direction(program: Program, case: ReviewCase, removed: Decimal | None = None) -> str:
    """'up', 'down' or 'unchanged' for a review before grace is considered. A member whose
    tier the program no longer has moves to what they earn: up or down from that tier's old
    threshold (`removed`; None: no tier yet)."""
    target = review_target(program, case)
    current = program.level(case.tier)
    if current is None:
        return "down" if removed is not None and target.threshold < removed else "up"
    if current.index < target.index:
        return "up"
    return "down" if current.index > target.index else "unchanged"


def review_reason(program: Program, case: ReviewCase, target: Level) -> str:
    unit = program.currency if program.basis == "spend" else "points"
    reason = f"review: qualifying {program.basis} {case.total} {unit} in {program.window_days} days"
    if case.floor == target.name and program.level_for(case.total).index < target.index:
        reason += f"; manual floor {target.name}"
    return reason


def milestones_crossed(before: int, credits, thresholds) -> list[tuple[int, str]]:
    """(threshold, moment) of each points milestone the running total crosses: `before` earned
    until then, then `credits` (moment, points) in time order."""
    out, total = [], before
    for at, points in credits:
        out += [(m, at) for m in thresholds if total < m <= total + points]
        total += points
    return out


def tier_direction(program: Program, previous: str | None, tier: str) -> str:
    """'up' or 'down' for a tier change (a tier the program no longer has counts as below)."""
    old, new = program.level(previous), program.level(tier)
    if old is None or new is None:
        return "up" if old is None else "down"
    return "up" if new.index > old.index else "down"


# --- member data -----------------------------------------------------------------------------


def contact_conflict(member_id: str, have: dict[str, str | None], erased: bool,
                     given: dict[str, str | None]) -> str | None:
    """Why contact details given with an enrollment may not be kept: they differ from what
    the member has (or had, before an erase); changing them is `member update`'s job."""
    for field, value in given.items():
        current = have.get(field)
        if value is not None and current is not None and value != current:
            what = "was erased" if erased else f"is {current!r}"
            return (f"member {member_id!r} already exists and their {field} {what}; change it with "
                    f"`loyaltyctl member update {member_id} --{field} ...`")
    return None
