"""The YAML program schema (pydantic). Field names are a contract with operators."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, model_validator

Code = Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
PositiveInt = Annotated[StrictInt, Field(gt=0)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
Rate = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=6)]


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
            raise ValueError("give either once or limit, not both")
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


Rule = Annotated[Union[SpendRule, EventRule, ReferralRule, PartnerRule], Field(discriminator="rule")]


class Expiry(Model):
    after_days: Optional[PositiveInt] = None
    inactivity_days: Optional[PositiveInt] = None
    round_to: Optional[Literal["month_end", "year_end"]] = None

    @model_validator(mode="after")
    def _something(self):
        if self.after_days is None and self.inactivity_days is None:
            raise ValueError("give after_days and/or inactivity_days (or leave expiry out: points never expire)")
        if self.round_to and self.after_days is None:
            raise ValueError("round_to needs after_days")
        return self


class Level(Model):
    name: Name
    threshold: Annotated[Decimal, Field(ge=0)]
    multiplier: Annotated[Decimal, Field(gt=0, le=100)] = Decimal(1)
    perks: list[Name] = []


class Review(Model):
    grace_days: NonNegativeInt = 0


class Tiers(Model):
    basis: Literal["spend", "points"]
    window_days: PositiveInt
    review: Optional[Review] = None
    levels: Annotated[list[Level], Field(min_length=1)]


class Reward(Model):
    code: Code
    name: Name
    points: PositiveInt


class Program(Model):
    code: Code
    name: Name
    description: Optional[str] = None
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    point_value: Annotated[Decimal, Field(gt=0)]
    cost_per_month: Optional[Annotated[Decimal, Field(ge=0)]] = None
    earn: list[Rule] = []
    expiry: Optional[Expiry] = None
    tiers: Optional[Tiers] = None
    rewards: list[Reward] = []


def problems(program: Program) -> list[tuple[tuple, str]]:
    """Cross-field rules, each with the exact path it concerns (for file:line: field errors)."""
    found: list[tuple[tuple, str]] = []
    if program.tiers:
        levels = program.tiers.levels
        if levels[0].threshold != 0:
            found.append((("tiers", "levels", 0, "threshold"), "the first level must have threshold 0"))
        for i in range(1, len(levels)):
            prev, level = levels[i - 1], levels[i]
            if level.threshold <= prev.threshold:
                found.append((("tiers", "levels", i, "threshold"),
                              f"must be greater than {prev.name}'s {prev.threshold}"))
        names = [lv.name for lv in levels]
        found += [(("tiers", "levels", i, "name"), f"level name {n!r} is used twice")
                  for i, n in enumerate(names) if n in names[:i]]
    codes = [r.code for r in program.rewards]
    found += [(("rewards", i, "code"), f"reward code {c!r} is used twice") for i, c in enumerate(codes) if c in codes[:i]]
    seen: dict = {}
    for i, rule in enumerate(program.earn):
        key = ("event", rule.event) if isinstance(rule, EventRule) else \
              ("partner", rule.partner) if isinstance(rule, PartnerRule) else \
              ("referral", "") if isinstance(rule, ReferralRule) else None
        if key is None:
            continue
        if key in seen:
            what = "a second referral rule" if key[0] == "referral" else f"{key[0]} {key[1]!r} already has a rule"
            found.append((("earn", i, "rule" if key[0] == "referral" else key[0]), what))
        seen[key] = i
    return found
