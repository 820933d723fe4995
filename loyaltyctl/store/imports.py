"""SQL of batch imports: the resume checkpoint of a file import, kept in job_runs.

One job_runs row per import run; its `job` is the import's key (file digest and
options) and its summary the last committed line and counts, updated in the same
transaction as each batch."""

from __future__ import annotations

import json
from contextlib import contextmanager
from typing import Iterator

from ..core.values import fmt_ts, now
from .connection import Database

DEFAULT_AUTOCHECKPOINT = 1000  # SQLite's default, in pages


@contextmanager
def bulk_session(db: Database, cache_mib: int, checkpoint_pages: int) -> Iterator[None]:
    """A long import's connection settings: a larger page cache, so index pages of a growing
    ledger stay in memory across batches, and a WAL checkpoint every `checkpoint_pages`
    pages instead of after every commit. A batch dirties index pages all over a large
    ledger, and the next batches dirty many of the same pages again: checkpointing less
    often copies each of them into the database file once instead of once per batch."""
    if db.dialect.name != "sqlite":
        yield
        return
    db.large_cache(cache_mib)
    db.execute(f"PRAGMA wal_autocheckpoint = {int(checkpoint_pages)}")
    try:
        yield
    finally:
        db.execute(f"PRAGMA wal_autocheckpoint = {DEFAULT_AUTOCHECKPOINT}")


def _now() -> str:
    return fmt_ts(now())


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
        return db.scalar(
            "INSERT INTO job_runs (job, program_code, as_of, summary, recorded_at) VALUES (?, NULL, ?, ?, ?) RETURNING id",
            (key, _now(), text, _now()),
        )
    db.execute("UPDATE job_runs SET summary = ?, recorded_at = ? WHERE id = ?", (text, _now(), run_id))
    return run_id
