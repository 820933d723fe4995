"""Optional defaults from loyaltyctl.toml (current directory, else
$XDG_CONFIG_HOME/loyaltyctl/loyaltyctl.toml). Flags beat the environment,
the environment beats this file.

    db = "/var/lib/loyalty/loyalty.db"
    program = "coffee"
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from .errors import InputError

KEYS = {"db", "program"}


def config_path() -> Path | None:
    local = Path("loyaltyctl.toml")
    if _is_file(local):
        return local
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = Path(base) / "loyaltyctl" / "loyaltyctl.toml"
    return user if _is_file(user) else None


def _is_file(path: Path) -> bool:
    """Whether a config file is there; a directory we may not look into is an error, not "no"."""
    try:
        return path.is_file()
    except OSError as exc:
        raise InputError(f"cannot read configuration {path}: {exc.strerror}") from None


def load_config() -> dict:
    """The settings of the config file in effect (looked up on each call: the current directory
    and environment may change within one process, as in tests)."""
    path = config_path()
    if path is None:
        return {}
    try:
        stamp = (str(path.resolve()), path.stat().st_mtime_ns)
    except OSError as exc:
        raise InputError(f"cannot read configuration {path}: {exc.strerror}") from None
    return _parse(path, stamp)


@lru_cache(maxsize=4)
def _parse(path: Path, stamp: tuple) -> dict:
    """The file's settings, checked; `stamp` (where it is, when it changed) keys the cache."""
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"{path}: {exc}") from None
    unknown = set(data) - KEYS
    if unknown:
        raise InputError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))} (known: {', '.join(sorted(KEYS))})")
    for key, value in data.items():
        if not isinstance(value, str):
            raise InputError(f"{path}: {key}: must be a string")
    return data


def default_program() -> str | None:
    return configured_program()[0]


def configured_program() -> tuple[str | None, str | None]:
    """The default program and where it was set (for messages), or (None, None)."""
    if os.environ.get("LOYALTYCTL_PROGRAM"):
        return os.environ["LOYALTYCTL_PROGRAM"], "LOYALTYCTL_PROGRAM"
    code = load_config().get("program")
    return (code, f"{config_path()}: program") if code else (None, None)
