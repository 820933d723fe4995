"""The runtime view of an applied program, built from the canonical JSON of the pydantic
schema (core/schema.py), which fills in every default when the program is applied.

Everyday commands (earn, member show) read programs through this view, so they need
neither pydantic nor PyYAML. The view adds no validation of its own, and no defaults
but those of fields the canonical JSON leaves out when unused (schema.Model.ADDED)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal

from ..errors import InputError, NotFound


@dataclass(frozen=True)
class Level:
    """A tier: its qualifying threshold, earn multiplier and perks."""

    index: int
    name: str
    threshold: Decimal
    multiplier: Decimal
    perks: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    """One earn rule, with its position in the program's `earn` list (cited by entries)."""

    index: int
    spec: dict

    @property
    def kind(self) -> str:
        return self.spec["rule"]

    def get(self, key: str, default=None):
        return self.spec.get(key, default)


def unknown_program(code: str, known) -> NotFound:
    """The error for a program code that is not applied, naming those that are."""
    known = sorted(known)
    hint = f" (known: {', '.join(known)})" if known else " (no programs applied yet; run `loyaltyctl program apply`)"
    return NotFound(f"unknown program {code!r}{hint}", field="program")


class Program:
    """An applied program version: its rules, tiers, rewards and expiry, and the look-ups
    the engine needs. Built once per command from the stored canonical JSON."""

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
            Level(i, lv["name"], Decimal(str(lv["threshold"])), Decimal(str(lv["multiplier"])), tuple(lv["perks"]))
            for i, lv in enumerate((tiers or {}).get("levels") or [])
        ]
        self.rewards: dict[str, dict] = {r["code"]: r for r in data.get("rewards") or []}
        cost = data.get("cost_per_month")
        self.cost_per_month = Decimal(str(cost)) if cost is not None else None
        self.upgrade_earns: str = (tiers or {}).get("upgrade_earns", "next")
        self.earn_on: str = data.get("earn_on", "net")
        self.starts_at: str | None = data.get("starts_at")
        self.ends_at: str | None = data.get("ends_at")
        self.eligible_tags: tuple[str, ...] = tuple(data.get("eligible_tags") or ())
        self.milestones: tuple[int, ...] = tuple(data.get("milestones") or ())
        catalogue = data.get("catalogue") or {}
        self.skus: dict[str, str] = catalogue.get("skus") or {}
        self.categories: set[str] = set(catalogue.get("categories") or ()) | set(self.skus.values())
        self.multipliers: dict[str, Decimal] = {k: Decimal(str(v)) for k, v in (catalogue.get("multipliers") or {}).items()}
        self.memo: dict = {}  # results of pure look-ups on this version (core.rules memoises into it)

    @classmethod
    def from_json(cls, definition: str, version: int, version_id: int) -> "Program":
        return cls(json.loads(definition), version, version_id)

    # --- earn rules ------------------------------------------------------------------

    def _first(self, kind: str, match) -> Rule | None:
        for index, spec in enumerate(self.earn):
            if spec["rule"] == kind and match(spec):
                return Rule(index, spec)
        return None

    def spend_rule(self, tags) -> Rule | None:
        """The first spend rule whose condition the member's tags meet."""
        return self._first("spend", lambda s: not (s.get("when") or {}).get("tag") or s["when"]["tag"] in tags)

    def partner_rule(self, partner: str) -> Rule | None:
        return self._first("partner", lambda s: s["partner"] == partner)

    def event_rule(self, event: str) -> Rule | None:
        return self._first("event", lambda s: s["event"] == event)

    def referral_rule(self) -> Rule | None:
        return self._first("referral", lambda s: True)

    def spend_rules(self, tags) -> list[Rule]:
        """Every spend rule whose condition the member's tags meet, in program order."""
        return [Rule(i, s) for i, s in enumerate(self.earn)
                if s["rule"] == "spend" and (not (s.get("when") or {}).get("tag") or s["when"]["tag"] in tags)]

    def names(self, kind: str, key: str) -> list[str]:
        return [s[key] for s in self.earn if s["rule"] == kind]

    @property
    def has_partner_rules(self) -> bool:
        return any(s["rule"] == "partner" for s in self.earn)

    def reward(self, reward: str) -> dict:
        spec = self.rewards.get(reward)
        if spec is None:
            known = ", ".join(self.rewards) or "none"
            raise NotFound(f"unknown reward {reward!r} in {self.code!r} (known: {known})", field="reward")
        return spec

    def reward_points(self, reward: str) -> int:
        """The points a reward of the catalogue costs (None: a per-point reward)."""
        points = self.reward(reward).get("points")
        return None if points is None else int(points)

    # --- tiers -----------------------------------------------------------------------

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

    def known_level(self, tier: str) -> Level:
        level = self.level(tier)
        if level is None:
            known = ", ".join(lv.name for lv in self.levels)
            raise NotFound(f"unknown tier {tier!r} in {self.code!r} (known: {known})", field="tier")
        return level

    def require_tiers(self) -> None:
        if not self.tiered:
            raise InputError(f"program {self.code!r} has no tiers")
