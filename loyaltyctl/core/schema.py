"""The YAML program schema (pydantic). Field names are a contract with operators.

Numbers are exact: decimals are `Decimal` (floats are refused), whole-number
fields refuse booleans and fractions. Rules that span several fields are checked
once the whole program is built; their errors carry the path they concern
(`ctx["where"]`, relative to the model that raised them) so the loader can point
at the offending line."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, model_validator
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


Code = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64)]
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
    model_config = ConfigDict(extra="forbid", frozen=True)


class Condition(Model):
    tag: Name


class Limit(Model):
    count: PositiveInt
    per: Literal["day", "week", "month", "year"]


class SpendRule(Model):
    rule: Literal["spend"]
    points_per_unit: Rate
    when: Optional[Condition] = None
    tier_multiplier: StrictBool = True


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
    basis: Literal["spend", "points"]
    window_days: Days
    review: Optional[Review] = None
    levels: Annotated[list[TierLevel], Field(min_length=1)]


class Reward(Model):
    code: Code
    name: Name
    points: PositiveInt


class Program(Model):
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
    return found
