"""Program use cases: validate files, apply them as new versions, list and show what is applied."""

from __future__ import annotations

from decimal import Decimal

from ..core.program import Program
from ..core.values import money, now_ts
from ..store import programs as store
from ..store.connection import Database
from .lookup import program


def validate(paths: list[str]) -> tuple[list[dict], list[str]]:
    """The valid programs as rows, and one message per problem found (every bad file, not just the first)."""
    from ..io.programs import check_paths

    loaded, errors = check_paths(paths)
    return ([{"path": path, "code": p.code, "name": p.name, "status": "valid"} for path, p in loaded],
            [e.message for e in errors])


def apply(db: Database, paths: list[str]) -> list[dict]:
    """Validate every file first, then record a new version of each changed program."""
    from ..io.programs import load_paths, to_canonical_json

    loaded = load_paths(paths)
    for path, p in loaded:
        check_change(db, path, p)
    results = []
    with db.write():
        db.lock_all()
        recorded = now_ts()
        for path, p in loaded:
            canonical = to_canonical_json(p)
            found = store.current(db, p.code)
            if found and found[0].definition == canonical:
                results.append({"code": p.code, "path": path, "version": found[0].version, "status": "unchanged"})
                continue
            version = store.insert_version(db, p.code, p.name, canonical, path, recorded)
            if found:
                _retime(db, found[0], p, recorded)
            results.append({"code": p.code, "path": path, "version": version,
                            "status": "created" if not found else "updated"})
    return results


def _retime(db: Database, old, new, at: str) -> None:
    """Inactivity is the member-level rule of the version in force: a version that adds,
    changes or drops it re-times the lots alive now (their inactivity counts from now)."""
    before = Program.from_json(old.definition, old.version, old.version_id).inactivity_days
    after = new.expiry.inactivity_days if new.expiry else None
    if before != after:
        store.retime_inactivity(db, new.code, after, at)


def check_change(db: Database, path: str, new) -> None:
    """A program's currency is fixed: its points' value and every amount recorded are in it.
    A new currency is a new program (a new code)."""
    from ..errors import ProgramError

    found = store.current(db, new.code)
    if not found:
        return
    old = Program.from_json(found[0].definition, found[0].version, found[0].version_id)
    if old.currency != new.currency:
        raise ProgramError(f"cannot change {old.currency} to {new.currency}: a program's currency is fixed; "
                           "apply it under a new code", path=path, field="currency")


def listing(db: Database) -> list[dict]:
    out = []
    for row in store.current(db):
        p = Program.from_json(row.definition, row.version, row.version_id)
        out.append({"code": p.code, "name": p.name, "version": p.version, "currency": p.currency,
                    "point_value": money(p.point_value) if p.point_value >= Decimal("0.01") else str(p.point_value),
                    "rules": len(p.earn), "tiers": [lv.name for lv in p.levels],
                    "expiry_days": p.after_days, "members": row.members, "applied_at": row.applied_at})
    return out


def _rule_row(index: int, spec: dict) -> dict:
    """An earn rule as a row: its scope as text (categories, skus, but not)."""
    row = dict(index=index, **{k: v for k, v in spec.items() if v is not None and k != "scope"})
    scope = spec.get("scope") or {}
    parts = [", ".join(scope.get(k) or ()) for k in ("categories", "skus")]
    text = " + ".join(x for x in parts if x) or "all"
    if scope.get("exclude_skus"):
        text += " but " + ", ".join(scope["exclude_skus"])
    if scope:
        row["scope"] = text
    return row


def show(db: Database, code: str) -> dict:
    p = program(db, code)
    return {"code": p.code, "name": p.name, "version": p.version, "currency": p.currency,
            "point_value": str(p.point_value), "definition": p.data,
            "earn": [_rule_row(i, spec) for i, spec in enumerate(p.earn)],
            "catalogue": [{"sku": sku, "category": cat, "multiplier": str(p.multipliers.get(sku, ""))}
                          for sku, cat in sorted(p.skus.items())]
                         + [{"sku": None, "category": cat, "multiplier": str(p.multipliers.get(cat, ""))}
                            for cat in sorted(p.categories - set(p.skus.values()) | set(p.multipliers) - set(p.skus))],
            "levels": [{"name": lv.name, "threshold": str(lv.threshold), "multiplier": str(lv.multiplier),
                        "perks": list(lv.perks)} for lv in p.levels],
            "rewards": list(p.rewards.values()),
            "expiry": p.data.get("expiry"), "tiers": p.data.get("tiers")}
