"""A light, read-only view of an applied program definition.

Program files are validated by the pydantic models in models.py when they are
applied; the stored canonical JSON is then read through this view so that
everyday commands (earn, member show) need neither pydantic nor PyYAML."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class Level:
    index: int
    name: str
    threshold: Decimal
    multiplier: Decimal
    perks: tuple[str, ...]


class Definition:
    def __init__(self, data: dict, version: int, version_id: int):
        self.data = data
        self.version = version
        self.version_id = version_id
        self.code: str = data["code"]
        self.name: str = data["name"]
        self.currency: str = data["currency"]
        self.point_value = Decimal(str(data["point_value"]))
        self.earn: list[dict] = data.get("earn") or []
        expiry = data.get("expiry") or {}
        self.after_days: int | None = expiry.get("after_days")
        self.inactivity_days: int | None = expiry.get("inactivity_days")
        self.round_to: str | None = expiry.get("round_to")
        tiers = data.get("tiers")
        self.tiered = bool(tiers)
        self.basis: str = tiers["basis"] if tiers else "spend"
        self.window_days: int = tiers["window_days"] if tiers else 0
        self.grace_days: int = ((tiers or {}).get("review") or {}).get("grace_days") or 0
        self.levels: list[Level] = [
            Level(i, lv["name"], Decimal(str(lv["threshold"])), Decimal(str(lv.get("multiplier", 1))),
                  tuple(lv.get("perks") or ()))
            for i, lv in enumerate((tiers or {}).get("levels") or [])
        ]
        self.rewards: dict[str, dict] = {r["code"]: r for r in data.get("rewards") or []}
        cost = data.get("cost_per_month")
        self.cost_per_month = Decimal(str(cost)) if cost is not None else None

    @classmethod
    def from_row(cls, row) -> "Definition":
        return cls(json.loads(row["definition"]), row["current_version"], row["version_id"])

    def _first(self, rule: str, match) -> tuple[int, dict] | None:
        for index, spec in enumerate(self.earn):
            if spec["rule"] == rule and match(spec):
                return index, spec
        return None

    def spend_rule(self, tags: set[str]) -> tuple[int, dict] | None:
        def matches(spec):
            when = spec.get("when") or {}
            return not when.get("tag") or when["tag"] in tags
        return self._first("spend", matches)

    def partner_rule(self, partner: str) -> tuple[int, dict] | None:
        return self._first("partner", lambda s: s["partner"] == partner)

    def event_rule(self, event: str) -> tuple[int, dict] | None:
        return self._first("event", lambda s: s["event"] == event)

    def referral_rule(self) -> tuple[int, dict] | None:
        return self._first("referral", lambda s: True)

    def level(self, name: str | None) -> Level | None:
        return next((lv for lv in self.levels if lv.name == name), None)

    def level_for(self, total: Decimal) -> Level:
        """The highest level whose threshold is at most `total` (the first level below 0)."""
        if not self.levels:
            raise ValueError(f"program {self.code!r} has no tiers")
        reached = [lv for lv in self.levels if lv.threshold <= total]
        return reached[-1] if reached else self.levels[0]

    def next_level(self, level: Level | None) -> Level | None:
        """The level above `level` (None at the top, or for no level)."""
        if level is None or level.index + 1 >= len(self.levels):
            return None
        return self.levels[level.index + 1]

    def multiplier(self, tier: str | None) -> Decimal:
        level = self.level(tier)
        return level.multiplier if level else Decimal(1)
