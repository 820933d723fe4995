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
    if local.is_file():
        return local
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    user = Path(base) / "loyaltyctl" / "loyaltyctl.toml"
    return user if user.is_file() else None


@lru_cache(maxsize=1)
def load_config() -> dict:
    path = config_path()
    if path is None:
        return {}
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
    return os.environ.get("LOYALTYCTL_PROGRAM") or load_config().get("program")
