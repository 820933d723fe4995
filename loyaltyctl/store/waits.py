"""How long a writer waits for another one, on either backend, and what it says when it gives up
(read at each use, so tests can lower the wait)."""

from __future__ import annotations

BUSY_TIMEOUT_MS = 30_000
POLL_S = 0.002  # between tries to take SQLite's write lock (see connection.Database._begin)


def locked_message(path: str, writer: str | None = None) -> str:
    who = f"{writer}; " if writer else ""
    return (f"{path} is locked: another loyaltyctl process is writing to it ({who}waited "
            f"{BUSY_TIMEOUT_MS / 1000:g} s); try again when it has finished")
