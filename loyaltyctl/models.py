"""The YAML program schema (pydantic). Field names are a contract with operators."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator, model_validator

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

    @field_validator("levels")
    @classmethod
    def _ascending(cls, levels: list[Level]) -> list[Level]:
        if levels[0].threshold != 0:
            raise ValueError(f"the first level ({levels[0].name}) must have threshold 0")
        seen = set()
        for prev, level in zip(levels, levels[1:]):
            if level.threshold <= prev.threshold:
                raise ValueError(f"{level.name}'s threshold must be greater than {prev.name}'s {prev.threshold}")
        for level in levels:
            if level.name in seen:
                raise ValueError(f"level name {level.name!r} is used twice")
            seen.add(level.name)
        return levels


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

    @field_validator("earn")
    @classmethod
    def _unique_rules(cls, rules: list) -> list:
        events = [r.event for r in rules if isinstance(r, EventRule)]
        partners = [r.partner for r in rules if isinstance(r, PartnerRule)]
        for label, values in (("event", events), ("partner", partners)):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"{label} {dupes[0]!r} has two rules")
        if sum(isinstance(r, ReferralRule) for r in rules) > 1:
            raise ValueError("at most one referral rule")
        return rules

    @field_validator("rewards")
    @classmethod
    def _unique_rewards(cls, rewards: list[Reward]) -> list[Reward]:
        codes = [r.code for r in rewards]
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            raise ValueError(f"reward code {dupes[0]!r} is used twice")
        return rewards
