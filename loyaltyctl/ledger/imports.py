"""SQL of batch imports: the resume checkpoint of a file import, kept in job_runs.

One job_runs row per import run; its `job` is the import's key (file digest and
options) and its summary the last committed line and counts, updated in the same
transaction as each batch."""

from __future__ import annotations

import json
from datetime import datetime, timezone

from .db import Database


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def unfinished_checkpoint(db: Database, key: str) -> dict | None:
    """The latest run of this import if it was killed before the end, else None."""
    row = db.one("SELECT id, summary FROM job_runs WHERE job = ? ORDER BY id DESC LIMIT 1", (key,))
    if row is None:
        return None
    state = json.loads(row["summary"])
    return None if state.get("done") else {**state, "id": row["id"]}


def save_checkpoint(db: Database, run_id: int | None, key: str, state: dict) -> int:
    """Record progress (inside the batch's transaction); returns the run's row id."""
    text = json.dumps(state, sort_keys=True)
    if run_id is None:
        cur = db.execute(
            "INSERT INTO job_runs (job, program_code, as_of, summary, recorded_at) VALUES (?, NULL, ?, ?, ?)",
            (key, _now(), text, _now()),
        )
        return cur.lastrowid
    db.execute("UPDATE job_runs SET summary = ?, recorded_at = ? WHERE id = ?", (text, _now(), run_id))
    return run_id
