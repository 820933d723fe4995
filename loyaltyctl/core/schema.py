"""The YAML program schema (pydantic). Field names are a contract with operators.

Numbers are exact: decimals are `Decimal` (floats are refused), whole-number
fields refuse booleans and fractions. Rules that span several fields are checked
once the whole program is built; their errors carry the path they concern
(`ctx["where"]`, relative to the model that raised them) so the loader can point
at the offending line."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_serializer, model_validator
from pydantic_core import PydanticCustomError

MAX_POINTS = 10**12
MAX_DAYS = 36_500  # a hundred years: later dates overflow the calendar arithmetic


def fail(message: str, *where: str | int) -> PydanticCustomError:
    """A validation error whose message is used as is, pointing at `where` inside the model."""
    return PydanticCustomError("program", "{detail}", {"detail": message, "where": tuple(where)})


def _whole(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("whole_number", "must be a whole number, not true/false")
    if isinstance(value, (Decimal, float)):
        if not Decimal(value).is_finite() or value != int(value):
            raise PydanticCustomError("whole_number", "must be a whole number, not {value}", {"value": str(value)})
        return int(value)
    if not isinstance(value, int):
        raise PydanticCustomError("whole_number", "must be a whole number")
    return value


def _exact(value: Any) -> Any:
    if isinstance(value, bool):
        raise PydanticCustomError("decimal_number", "must be a number, not true/false")
    if isinstance(value, float):
        raise PydanticCustomError("decimal_number", "floats are inexact: give a Decimal or a string")
    return value


def _text(value: Any) -> Any:
    if isinstance(value, str) and any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise PydanticCustomError("text", "must not contain control characters")
    return value


def _label(value: Any) -> Any:
    """A sku or category: YAML reads 1234 as a number; it is the text 1234."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _moment(value: Any) -> Any:
    """An ISO-8601 date or timestamp, kept in the stored form (2026-01-01 -> 2026-01-01T00:00:00Z)."""
    from ..errors import InputError
    from .values import fmt_ts, parse_ts

    if not isinstance(value, str):
        raise PydanticCustomError("moment", "must be a date or timestamp in quotes, e.g. \"2026-01-01\"")
    try:
        return fmt_ts(parse_ts(value))
    except InputError as exc:
        raise PydanticCustomError("moment", "{detail}", {"detail": exc.detail}) from None


Code = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64)]
Label = Annotated[str, BeforeValidator(_label), Field(min_length=1, max_length=64)]
Moment = Annotated[str, BeforeValidator(_moment)]
Name = Annotated[str, BeforeValidator(_text), Field(min_length=1, max_length=200)]
PositiveInt = Annotated[int, BeforeValidator(_whole), Field(gt=0, le=MAX_POINTS)]
NonNegativeInt = Annotated[int, BeforeValidator(_whole), Field(ge=0, le=MAX_POINTS)]
Days = Annotated[int, BeforeValidator(_whole), Field(gt=0, le=MAX_DAYS)]
GraceDays = Annotated[int, BeforeValidator(_whole), Field(ge=0, le=MAX_DAYS)]
Exact = BeforeValidator(_exact)
Rate = Annotated[Decimal, Exact, Field(ge=0, max_digits=18, decimal_places=6)]
Money = Annotated[Decimal, Exact, Field(ge=0, max_digits=18, decimal_places=6)]
PointValue = Annotated[Decimal, Exact, Field(gt=0, max_digits=18, decimal_places=6)]
Multiplier = Annotated[Decimal, Exact, Field(gt=0, le=100, max_digits=18, decimal_places=6)]


class Model(BaseModel):
    """Fields named in ADDED came after programs were first stored: left at their default
    they are left out of the canonical JSON, so a program that does not use them keeps the
    text (and version) it had."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    ADDED: ClassVar[tuple[str, ...]] = ()

    @model_serializer(mode="wrap")
    def _without_unused_additions(self, handler):
        data = handler(self)
        for name in self.ADDED:
            if getattr(self, name) == type(self).model_fields[name].get_default(call_default_factory=True):
                data.pop(name, None)
        return data


class Condition(Model):
    tag: Name


class Limit(Model):
    count: PositiveInt
    per: Literal["day", "week", "month", "year"]


class Scope(Model):
    """The purchase lines a rule covers: those of these categories or skus, less exclude_skus
    (only exclude_skus: every line but those)."""

    categories: list[Label] = []
    skus: list[Label] = []
    exclude_skus: list[Label] = []

    @model_validator(mode="after")
    def _something(self):
        if not (self.categories or self.skus or self.exclude_skus):
            raise fail("give categories, skus and/or exclude_skus (or leave scope out: the whole order)")
        return self


class SpendRule(Model):
    ADDED = ("scope", "per")

    rule: Literal["spend"]
    points_per_unit: Rate
    when: Optional[Condition] = None
    tier_multiplier: StrictBool = True
    scope: Optional[Scope] = None
    per: Literal["amount", "unit", "order"] = "amount"  # per currency unit, per item, per order


class EventRule(Model):
    rule: Literal["event"]
    event: Code
    points: PositiveInt
    once: StrictBool = False
    limit: Optional[Limit] = None

    @model_validator(mode="after")
    def _once_or_limit(self):
        if self.once and self.limit:
            raise fail("once and limit are mutually exclusive: give one or the other", "limit")
        return self


class ReferralRule(Model):
    rule: Literal["referral"]
    referrer_points: NonNegativeInt = 0
    referee_points: NonNegativeInt = 0


class PartnerRule(Model):
    rule: Literal["partner"]
    partner: Code
    points_per_unit: Rate
    when: Optional[Condition] = None
    tier_multiplier: StrictBool = False


RULE_KINDS = ("spend", "event", "referral", "partner")
Rule = Annotated[Union[SpendRule, EventRule, ReferralRule, PartnerRule], Field(discriminator="rule")]


class Expiry(Model):
    after_days: Optional[Days] = None
    inactivity_days: Optional[Days] = None
    round_to: Optional[Literal["month_end", "year_end"]] = None

    @model_validator(mode="after")
    def _something(self):
        if self.after_days is None and self.inactivity_days is None:
            raise fail("give after_days and/or inactivity_days (or leave expiry out: points never expire)")
        if self.round_to and self.after_days is None:
            raise fail("round_to needs after_days", "round_to")
        return self


class TierLevel(Model):
    name: Name
    threshold: Annotated[Decimal, Exact, Field(ge=0, max_digits=18, decimal_places=6)]
    multiplier: Multiplier = Decimal(1)
    perks: list[Name] = []


class Review(Model):
    grace_days: GraceDays = 0


class Tiers(Model):
    ADDED = ("upgrade_earns",)

    basis: Literal["spend", "points"]
    window_days: Days
    review: Optional[Review] = None
    levels: Annotated[list[TierLevel], Field(min_length=1)]
    upgrade_earns: Literal["next", "crossing"] = "next"  # the purchase that crosses a threshold earns at the old tier


class Reward(Model):
    """A reward costs `points`, or is per point: `value_per_point` for each point spent, in
    whole multiples of `required_points`."""

    ADDED = ("required_points", "value_per_point")

    code: Code
    name: Name
    points: Optional[PositiveInt] = None
    required_points: Optional[PositiveInt] = None
    value_per_point: Optional[PointValue] = None

    @model_validator(mode="after")
    def _one_price(self):
        per_point = self.required_points is not None or self.value_per_point is not None
        if self.points is not None and per_point:
            raise fail("give points, or required_points and value_per_point (a per-point reward), not both",
                       "required_points" if self.required_points is not None else "value_per_point")
        if self.points is None and not per_point:
            raise fail("required field is missing (or give required_points and value_per_point)", "points")
        if per_point and (self.required_points is None or self.value_per_point is None):
            missing = "required_points" if self.required_points is None else "value_per_point"
            raise fail("a per-point reward needs both required_points and value_per_point", missing)
        return self


class Catalogue(Model):
    """Products and categories: a line's category comes from its sku when it gives none;
    multipliers (by sku, else by category) multiply the points a line earns."""

    categories: list[Label] = []
    skus: dict[Label, Label] = {}  # sku -> category
    multipliers: dict[Label, Multiplier] = {}  # sku or category -> multiplier


class Program(Model):
    ADDED = ("catalogue", "earn_on", "starts_at", "ends_at", "eligible_tags", "milestones")

    code: Code
    name: Name
    description: Optional[Annotated[str, Field(max_length=2000)]] = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    point_value: PointValue
    cost_per_month: Optional[Money] = None
    earn: list[Rule] = []
    expiry: Optional[Expiry] = None
    tiers: Optional[Tiers] = None
    rewards: list[Reward] = []
    catalogue: Optional[Catalogue] = None
    earn_on: Literal["net", "gross"] = "net"  # paying with points: earn on what was paid in money, or on the order
    starts_at: Optional[Moment] = None  # earning is refused before ...
    ends_at: Optional[Moment] = None  # ... and from here on
    eligible_tags: list[Name] = []  # only members with one of these tags earn
    milestones: list[PositiveInt] = []  # lifetime points thresholds `report milestones` lists

    @model_validator(mode="after")
    def _consistent(self):
        for where, message in problems(self):
            raise fail(message, *where)
        return self


def problems(program: Program) -> list[tuple[tuple, str]]:
    """Cross-field rules, each with the exact path it concerns (for file:line: field errors)."""
    found: list[tuple[tuple, str]] = []
    seen: dict[tuple[str, str], int] = {}
    for i, rule in enumerate(program.earn):
        if isinstance(rule, EventRule):
            key, field, what = ("event", rule.event), "event", f"event {rule.event!r} already has a rule"
        elif isinstance(rule, PartnerRule):
            key, field, what = ("partner", rule.partner), "partner", f"partner {rule.partner!r} already has a rule"
        elif isinstance(rule, ReferralRule):
            key, field, what = ("referral", ""), "rule", "only one referral rule is allowed"
        else:
            continue
        if key in seen:
            found.append((("earn", i, field), f"{what} (earn[{seen[key]}])"))
        seen.setdefault(key, i)
    if program.tiers:
        levels = program.tiers.levels
        if levels[0].threshold != 0:
            found.append((("tiers", "levels", 0, "threshold"), "the first level must have threshold 0"))
        names: dict[str, int] = {}
        for i, level in enumerate(levels):
            if i:
                prev = levels[i - 1]
                if level.threshold <= prev.threshold:
                    found.append((("tiers", "levels", i, "threshold"),
                                  f"must be greater than {prev.name}'s {prev.threshold.normalize():f}"))
            if level.name in names:
                found.append((("tiers", "levels", i, "name"),
                              f"level name {level.name!r} is already used by tiers.levels[{names[level.name]}]"))
            names.setdefault(level.name, i)
    codes: dict[str, int] = {}
    for i, reward in enumerate(program.rewards):
        if reward.code in codes:
            found.append((("rewards", i, "code"),
                          f"reward code {reward.code!r} is already used by rewards[{codes[reward.code]}]"))
        codes.setdefault(reward.code, i)
    return found + _added_problems(program)


def _added_problems(program: Program) -> list[tuple[tuple, str]]:
    found: list[tuple[tuple, str]] = []
    if program.starts_at and program.ends_at and program.ends_at <= program.starts_at:
        found.append((("ends_at",), f"must be after starts_at {program.starts_at}"))
    for i, m in enumerate(program.milestones[1:], start=1):
        if m <= program.milestones[i - 1]:
            found.append((("milestones", i), f"must be greater than {program.milestones[i - 1]}"))
    found += _catalogue_problems(program)
    return found


def _catalogue_problems(program: Program) -> list[tuple[tuple, str]]:
    """Names a rule or multiplier uses must be in the catalogue, when there is one (typos
    would silently earn the wrong points)."""
    cat = program.catalogue
    if cat is None:
        return []
    found: list[tuple[tuple, str]] = []
    categories = set(cat.categories) | set(cat.skus.values())
    if cat.categories:
        for sku, category in cat.skus.items():
            if category not in cat.categories:
                found.append((("catalogue", "skus", sku), f"category {category!r} is not in catalogue.categories"))
    for name in cat.multipliers:
        if name in cat.skus and name in categories:
            found.append((("catalogue", "multipliers", name), f"{name!r} is both a sku and a category"))
        elif name not in cat.skus and name not in categories:
            found.append((("catalogue", "multipliers", name), f"{name!r} is neither a sku nor a category of the catalogue"))
    for i, rule in enumerate(program.earn):
        scope = getattr(rule, "scope", None)
        if scope is None:
            continue
        for j, category in enumerate(scope.categories):
            if category not in categories:
                found.append((("earn", i, "scope", "categories", j), f"unknown category {category!r} (known: "
                              f"{', '.join(sorted(categories)) or 'none'})"))
        for key in ("skus", "exclude_skus"):
            for j, sku in enumerate(getattr(scope, key)):
                if cat.skus and sku not in cat.skus:
                    found.append((("earn", i, "scope", key, j), f"unknown sku {sku!r} (not in catalogue.skus)"))
    return found
