"""Who is writing: a long writer (an import) says what it is doing in loyaltyctl_meta, in a
short transaction of its own before it starts and until it ends, so a command that waits too
long for the write lock can say which kind of process holds it. Rows of processes that died
without removing theirs are ignored (and replaced by the next writer of the same process id).
`db` is either backend's connection; this module imports none, as the SQLite connection itself
calls `current` to name the writer in its lock message."""

from __future__ import annotations

import json
import os


PREFIX = "writer:"


def announce(db, what: str, since: str) -> str:
    """Record that this process is about to write for a while; returns the row's key."""
    key = f"{PREFIX}{os.getpid()}"
    value = json.dumps({"what": what, "pid": os.getpid(), "since": since})
    with db.write():
        db.execute("""INSERT INTO loyaltyctl_meta (key, value) VALUES (?, ?)
                      ON CONFLICT (key) DO UPDATE SET value = excluded.value""", (key, value))
    return key


def withdraw(db, key: str) -> None:
    with db.write():
        db.execute("DELETE FROM loyaltyctl_meta WHERE key = ?", (key,))


def current(db) -> str | None:
    """What a live writer announced, as 'import transactions big.csv, pid 4242, since ...'; None
    when none did (a single command or a job: they hold the lock briefly)."""
    rows = db.all("SELECT value FROM loyaltyctl_meta WHERE key LIKE ? ORDER BY key", (PREFIX + "%",))
    for (value,) in rows:
        w = json.loads(value)
        if w.get("pid") != os.getpid() and _alive(w.get("pid")):
            return f"{w['what']}, pid {w['pid']}, since {w['since']}"
    return None


def _alive(pid) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return False
    return True
