"""Regenerate the shell completion scripts in completions/ from the Typer app.

    python scripts/gen_completions.py          # write completions/*
    python scripts/gen_completions.py --check  # exit 1 if any is stale

Each script is what `_LOYALTYCTL_COMPLETE=source_<shell> loyaltyctl` prints: a thin
shim that calls back into loyaltyctl on every <TAB>, so command names, options and
values from the database (program and reward codes) are always current. Run this
after adding a command or option; tests/test_completions.py fails while they are stale.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = {"bash": "loyaltyctl.bash", "zsh": "_loyaltyctl", "fish": "loyaltyctl.fish"}


def generate(shell: str) -> str:
    env = dict(os.environ, _LOYALTYCTL_COMPLETE=f"source_{shell}")
    code = "import sys; sys.argv[0] = 'loyaltyctl'; from loyaltyctl.cli import main; main()"
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        raise SystemExit(f"completion for {shell} failed: {out.stderr.strip()}")
    return out.stdout.strip("\n") + "\n"  # zsh wants #compdef on the first line


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for shell, name in FILES.items():
        path = ROOT / "completions" / name
        text = generate(shell)
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(str(path.relative_to(ROOT)))
        if not check:
            path.parent.mkdir(exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if check and stale:
        print(f"stale: {', '.join(stale)} (run python scripts/gen_completions.py)", file=sys.stderr)
        return 1
    for name in stale:
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
