"""Batch imports from CSV: transactions, members, NPS responses.

Transactions and members run the same engine as the single commands, a chunk at a time:
the chunk's rows become commands (io/csv.py), the state they read is loaded in a few
set queries (store/readers.py), the engine posts them in file order against it, and
the postings are written with a few executemany calls (store/writers.py). A rejected
row changes nothing; the rest apply.

Each chunk commits with a checkpoint (the file's SHA-256 and the last line applied, in
job_runs), so a killed import re-run with the same file resumes after that line and
ends with exactly the ledger of one uninterrupted run; rows before it are never
re-evaluated against a later state. txn ids stay idempotency keys for everything else
(stdin, edited files). Chunks are sized by time so that other writers get the lock between
them (see _Pace). --all-or-nothing and --dry-run run the file as one transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable

from ..core import engine, rules
from ..core.commands import Join, Posting, Reject
from ..core.values import now_ts
from ..errors import Conflict, DatabaseError, InputError, LoyaltyError
from ..io import csv as source_csv
from ..io.csv import CsvFormat, RowError, Source, file_digest, open_csv
from ..io.csv import delimiter as parse_delimiter  # noqa: F401  (the command line checks --delimiter with it)
from ..io.csv import encoding as parse_encoding  # noqa: F401  (and --encoding)
from ..io.rejects import RejectsWriter
from ..store import activity
from ..store import imports as sql
from ..store import members as member_store
from ..store import readers, writers
from ..errors import Retry
from ..store.connection import ATTEMPTS, Database
from ..store.programs import require_program

CACHE_MIB = 64  # page cache of a transactions import (peak RSS stays under 200 MB; see README)
CHECKPOINT_PAGES = 50_000  # WAL checkpoint interval of a transactions import, in 4 KiB pages


@dataclass
class Summary:
    """What an import did: rows applied, repeated and rejected, and how it ended."""

    applied: int = 0
    duplicates: int = 0
    rejected: int = 0
    rows: int = 0
    resumed_after: int = 0  # physical line a killed run had committed up to (0: fresh run)
    rejects: list[dict] = field(default_factory=list)  # the first KEEP rejected rows
    on_reject: Callable[[dict], None] | None = None  # streams every rejected row (the rejects file)
    dry_run: bool = False
    all_or_nothing: bool = False
    rolled_back: bool = False
    effects: list[dict] = field(default_factory=list)  # --dry-run: balances and tiers it would change
    pending: list[dict] = field(default_factory=list)  # rejected rows of the transaction under way
    unmatched_lines: list[str] = field(default_factory=list)  # purchase_lines txn_ids no row of the file named

    KEEP = 20

    def reject(self, row: dict) -> None:
        self.rejected += 1
        if len(self.rejects) < self.KEEP:
            self.rejects.append(_readable(row))
        self.pending.append(row)

    def write_rejects(self) -> None:
        """Into the rejects file, the transaction's rejected rows (before its checkpoint commits);
        undecodable bytes are written back as they were."""
        if self.on_reject:
            for row in self.pending:
                self.on_reject(row)
            self.on_reject.flush()
        self.pending = []

    def counts(self) -> tuple:
        return self.applied, self.duplicates, self.rejected, self.rows, len(self.rejects)

    def restore(self, counts: tuple) -> None:
        """Back to the counts before a transaction a concurrent writer made run again."""
        self.applied, self.duplicates, self.rejected, self.rows, kept = counts
        del self.rejects[kept:]
        self.pending = []

    def as_dict(self) -> dict:
        return {"rows": self.rows, "applied": self.applied, "duplicates": self.duplicates,
                "rejected": self.rejected, "dry_run": self.dry_run, "rolled_back": self.rolled_back,
                "resumed_after_line": self.resumed_after}


def _readable(row: dict) -> dict:
    """A row for messages and JSON: bytes that were not text (held as surrogates) shown as U+FFFD."""
    return {k: v.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if isinstance(v, str) else v
            for k, v in row.items()}


# --- transactions and members: the engine over a chunk ----------------------------------------


def _error(exc: Exception) -> str:
    if isinstance(exc, LoyaltyError) and exc.field == "program":  # no column: the import's --program says it
        return f"{exc.detail}: import the file with --program"
    if isinstance(exc, LoyaltyError):
        return exc.message
    return f"bad number: {exc}"


def _post_chunk(db: Database, parsed: list, contacts: dict | None = None) -> list[tuple[str, str | None]]:
    """Post each row's commands (a list, or the error that refused the row) in order and write
    the accepted postings; returns (status, error) per row."""
    commands = [c.join if isinstance(c, _Enroll) else c for cmds in parsed if isinstance(cmds, list) for c in cmds]
    book = readers.load_book(db, commands, now_ts())
    results, postings = [], []
    for cmds in parsed:
        if not isinstance(cmds, list):
            results.append(("rejected", _error(cmds)))
            continue
        status, error, made = _post_row(book, cmds)
        results.append((status, error))
        postings += made
    if contacts is not None:
        _contacts(db, postings, contacts)
    writers.write(db, postings)
    return results


@dataclass(frozen=True)
class _Enroll:
    """A row's enrollment: `then` says what a member already enrolled means for the row:
    'continue' (--enroll-unknown: go on with the row's transaction) or 'duplicate' (a members row)."""

    join: Join
    then: str


def _enrolled(book, join: Join) -> bool:
    return join.program in (book.enrolled.get(join.member) or {})


def _post_row(book, commands: list) -> tuple[str, str | None, list[Posting]]:
    """A row's commands (an enrollment first, with --enroll-unknown) all apply, or none does."""
    made, undo = [], []
    for cmd in commands:
        if isinstance(cmd, _Enroll):
            if _enrolled(book, cmd.join):
                if cmd.then == "duplicate":
                    return "duplicate", None, []
                continue
            cmd = cmd.join
        posting = engine.post(book, cmd)
        if isinstance(posting, Reject):
            for take_back in reversed(undo):
                take_back()
            return "rejected", _error(posting.error), []
        take_back = engine.apply(book, posting)
        if take_back is not None:
            undo.append(take_back)
        made.append(posting)
    return made[-1].status, None, made


def _contacts(db: Database, postings: list[Posting], contacts: dict) -> None:
    """Member rows (name, email, account) of the enrollments a members import made, before they are written."""
    for p in postings:
        if p.enrollment is not None:
            name, email, account = contacts.get(p.enrollment.member_id, (None, None, None))
            if member_store.member(db, p.enrollment.member_id) is None:
                member_store.insert_member(db, p.enrollment.member_id, name, email, account, now_ts())
            else:
                member_store.update_contact(db, p.enrollment.member_id, name, email, account)


def import_transactions(db: Database, path: str, *, program: str | None = None, all_or_nothing: bool = False,
                        enroll_unknown: bool = False, dry_run: bool = False, progress=None,
                        rejects: str | None = None, overwrite: bool = False, fmt: CsvFormat = CsvFormat(),
                        lines: str | None = None) -> Summary:
    """`lines`: a purchase_lines CSV holding the lines of the file's purchases (and line refunds)."""
    if enroll_unknown and not program:
        raise InputError("--enroll-unknown needs a program to enroll members in", field="program")
    if program:
        require_program(db, program)
    files = source_csv.purchase_lines(lines) if lines else {}
    source, handle = open_csv(path, source_csv.TXN_COLUMNS, source_csv.TXN_REQUIRED, fmt)
    digest = file_digest(path)
    key = (f"import transactions {digest} {program or ''} {'enroll' if enroll_unknown else ''}{fmt.key()}"
           if digest else None)
    if key and lines:
        key += f" lines {file_digest(lines)}"
    seen: set[str] = set()

    def apply_chunk(chunk):
        seen.update(row.get("txn_id", "").strip() for _, row in chunk)
        parsed = [_transaction(row, program, files) for _, row in chunk]
        if enroll_unknown:
            parsed = _with_enrollments(db, parsed, program)
        return _post_chunk(db, parsed, {} if enroll_unknown else None)

    try:
        with sql.bulk_session(db, CACHE_MIB, CHECKPOINT_PAGES):
            summary = _run(db, source, apply_chunk, all_or_nothing=all_or_nothing, dry_run=dry_run,
                           progress=progress, rejects=rejects, overwrite=overwrite, checkpoint=key, fmt=fmt,
                           what=f"import transactions {source.name}")
    finally:
        handle.close()
    if not summary.resumed_after:  # a resumed run did not read the rows before
        summary.unmatched_lines = sorted(set(files) - seen)
    return summary


def _transaction(row: dict, program: str | None, files: dict | None = None):
    try:
        return [source_csv.transaction(row, program, files)]
    except (LoyaltyError, ArithmeticError) as exc:
        return exc


ENROLLING = ("Purchase", "Event", "Opening", "Adjust")


def _with_enrollments(db: Database, parsed: list, program: str) -> list:
    """--enroll-unknown: a row of a member not enrolled in --program (a purchase, event,
    opening balance or adjustment) enrolls them first, at the row's time."""
    out = []
    for cmds in parsed:
        if not isinstance(cmds, list) or type(cmds[0]).__name__ not in ENROLLING:
            out.append(cmds)
        else:
            cmd = cmds[0]
            out.append([_Enroll(Join(cmd.member, program, cmd.at), "continue"), cmd])
    return out


def import_members(db: Database, path: str, *, all_or_nothing: bool = False, dry_run: bool = False,
                   progress=None, rejects: str | None = None, overwrite: bool = False,
                   fmt: CsvFormat = CsvFormat()) -> Summary:
    source, handle = open_csv(path, source_csv.MEMBER_COLUMNS, source_csv.MEMBER_REQUIRED, fmt)

    def apply_chunk(chunk):
        rows = _consistent_contacts(db, [_member(row) for _, row in chunk])
        contacts = {r.join.member: (r.name, r.email, r.account) for r in rows if not isinstance(r, Exception)}
        parsed = [r if isinstance(r, Exception) else [_Enroll(r.join, "duplicate")] for r in rows]
        return _post_chunk(db, parsed, contacts)

    try:
        return _run(db, source, apply_chunk, all_or_nothing=all_or_nothing, dry_run=dry_run, progress=progress,
                    rejects=rejects, overwrite=overwrite, fmt=fmt, what=f"import members {source.name}")
    finally:
        handle.close()


def _consistent_contacts(db: Database, rows: list) -> list:
    """Rows whose name, email or account differ from the member's (stored, or given by an
    earlier row) are refused: `member update` changes them."""
    known = {m.member_id: ({"name": m.name, "email": m.email, "account": m.account}, bool(m.erased_at))
             for m in member_store.members(db, {r.join.member for r in rows if not isinstance(r, Exception)}).values()}
    out = []
    for r in rows:
        if not isinstance(r, Exception):
            given = {"name": r.name, "email": r.email, "account": r.account}
            have, erased = known.get(r.join.member, ({}, False))
            why = rules.contact_conflict(r.join.member, have, erased, given)
            if why:
                r = Conflict(why)
            else:
                known[r.join.member] = ({k: have.get(k) or v for k, v in given.items()}, erased)
        out.append(r)
    return out


def _member(row: dict):
    try:
        return source_csv.member(row)
    except LoyaltyError as exc:
        return exc


# --- NPS responses: one at a time ---------------------------------------------------------------


def _apply_nps(db: Database, row: dict, program: str | None) -> str:
    from .nps import record

    source_csv.check_cells(row)
    response = (row.get("response_id") or "").strip()
    if not response:
        raise RowError("required", field="response_id")
    if not (row.get("member_id") or "").strip() and not (row.get("account") or "").strip():
        raise RowError("a response needs a member_id or an account")
    return record(db, (row.get("member_id") or "").strip() or None, score=(row.get("score") or "").strip(),
                  account=row.get("account"), comment=row.get("comment"),
                  at=source_csv.need(row, "answered_at"),
                  program=(row.get("program") or "").strip() or program, response_id=response)["status"]


def import_nps(db: Database, path: str, *, program: str | None = None, all_or_nothing: bool = False,
               dry_run: bool = False, progress=None, rejects: str | None = None, overwrite: bool = False,
               fmt: CsvFormat = CsvFormat()) -> Summary:
    """NPS responses: response_id, member_id, account, score, comment, answered_at [, program].
    response_id is the idempotency key: a re-imported file records nothing twice."""
    if program:
        require_program(db, program)
    source, handle = open_csv(path, source_csv.NPS_COLUMNS, source_csv.NPS_REQUIRED, fmt)

    def apply_chunk(chunk):
        return [_one(db, lambda: _apply_nps(db, row, program)) for _, row in chunk]

    try:
        return _run(db, source, apply_chunk, all_or_nothing=all_or_nothing, dry_run=dry_run, progress=progress,
                    rejects=rejects, overwrite=overwrite, fmt=fmt, what=f"import nps {source.name}")
    finally:
        handle.close()


def _one(db: Database, apply) -> tuple[str, str | None]:
    """Apply one row in its own savepoint: (status, None) or ("rejected", message)."""
    try:
        with db.savepoint():
            return apply(), None
    except (LoyaltyError, ArithmeticError) as exc:
        return "rejected", _error(exc)


# --- the loop: chunks, commits, checkpoints ------------------------------------------------------


def _run(db: Database, source: Source, apply_chunk, *, all_or_nothing: bool, dry_run: bool, progress,
         rejects: str | None, overwrite: bool = False, checkpoint: str | None = None,
         fmt: CsvFormat = CsvFormat(), what: str = "import") -> Summary:
    """Apply `apply_chunk(chunk)` to every chunk of rows (it returns (status, error) per row).
    `checkpoint` names this import (file digest and options) so a killed run is resumed after
    the last committed line; `what` is how a command kept waiting for the lock names it."""
    summary = Summary(dry_run=dry_run, all_or_nothing=all_or_nothing)
    resume = None
    if checkpoint and not (dry_run or all_or_nothing):
        resume = sql.unfinished_checkpoint(db, checkpoint)
        if resume:
            summary.resumed_after = resume["line"]
            summary.rows, summary.applied = resume["rows"], resume["applied"]
            summary.duplicates, summary.rejected = resume["duplicates"], resume["rejected"]
    else:
        checkpoint = None
    run = _Chunks(source, apply_chunk, summary, progress, checkpoint, resume)
    if rejects:
        with RejectsWriter(rejects, source.header, keep_upto=summary.resumed_after, overwrite=overwrite,
                           fmt=fmt) as writer:
            summary.on_reject = writer
            return _announced(db, what + _mode(summary), lambda: _loop(db, run))
    return _announced(db, what + _mode(summary), lambda: _loop(db, run))


def _mode(summary: Summary) -> str:
    return " --dry-run" if summary.dry_run else " --all-or-nothing" if summary.all_or_nothing else ""


def _announced(db: Database, what: str, work):
    """Run `work()` with `what` recorded as this process's writing (store/activity.py)."""
    key = activity.announce(db, what, now_ts())
    try:
        return work()
    finally:
        activity.withdraw(db, key)


# Chunks are sized by time: each holds the write lock about HOLD_S, then the import pauses
# YIELD_S so that single commands and jobs waiting for the lock get in between chunks.
BATCH = 1000  # rows in the first chunk; later ones from BATCH // 8 to BATCH * GROWTH
GROWTH = 16  # at most 16,000 rows a chunk (fewer state loads and commits on a fast machine)
HOLD_S = 0.4
YIELD_S = 0.01


class _Pace:
    """Rows per chunk: as many as the last chunks' rate does in HOLD_S, at most twice the last."""

    def __init__(self):
        self.size = BATCH

    def took(self, rows: int, seconds: float) -> None:
        if rows < self.size:  # the file's last chunk says nothing about the rate
            return
        rate = rows / max(seconds, 1e-3)
        self.size = int(min(BATCH * GROWTH, self.size * 2, max(BATCH // 8 or 1, rate * HOLD_S)))


@dataclass
class _Chunks:
    """An import's rows and what to do with them, chunk by chunk."""

    source: Source
    apply_chunk: Callable
    summary: Summary
    progress: Callable | None
    checkpoint: str | None = None
    resume: dict | None = None
    pace: _Pace = field(default_factory=_Pace)

    def rows(self):
        return _after(self.source.rows, self.resume["line"]) if self.resume else self.source.rows

    def tell(self) -> None:
        if self.progress:
            self.progress(self.source.position(), self.summary.rows)


def _loop(db: Database, run: _Chunks) -> Summary:
    """Commit chunk by chunk, each with its checkpoint; the chunk is read before taking the lock."""
    summary = run.summary
    if summary.all_or_nothing or summary.dry_run:
        return _whole(db, run)
    rows, run_id, line, done = run.rows(), run.resume["id"] if run.resume else None, summary.resumed_after, False
    while not done:
        chunk = list(islice(rows, run.pace.size))
        done = len(chunk) < run.pace.size
        started = time.monotonic()
        run_id, line = _commit_chunk(db, run, chunk, run_id, line, done)
        run.pace.took(len(chunk), time.monotonic() - started)
        run.tell()
        if not done:
            time.sleep(YIELD_S)
    return summary


def _commit_chunk(db: Database, run: _Chunks, chunk: list, run_id: int | None, line: int,
                  done: bool) -> tuple[int | None, int]:
    """One chunk in one transaction, with its checkpoint. A PostgreSQL transaction that lost a
    race with another writer (Retry) is rolled back and the chunk applied again."""
    summary = run.summary
    for _ in range(ATTEMPTS):
        before = summary.counts()
        try:
            with db.write():
                upto = max(line, _apply(chunk, run.apply_chunk, summary))
                summary.write_rejects()  # rejects up to the checkpoint survive a kill
                if run.checkpoint:
                    run_id = _save(db, run_id, run.checkpoint, summary, upto, done)
            return run_id, upto
        except Retry:
            summary.restore(before)
    raise DatabaseError(f"{db.path}: other writers kept changing the members this import posts for; "
                        "run it again (it resumes)")


def _save(db: Database, run_id: int | None, key: str, summary: Summary, line: int, done: bool) -> int:
    state = {"line": line, "rows": summary.rows, "applied": summary.applied, "duplicates": summary.duplicates,
             "rejected": summary.rejected, "done": done}
    return sql.save_checkpoint(db, run_id, key, state)


def _whole(db: Database, run: _Chunks) -> Summary:
    """--all-or-nothing and --dry-run: the whole file in one transaction (the lock is held throughout)."""
    summary, rows = run.summary, run.rows()
    try:
        with db.rollback_only() if summary.dry_run else db.write():
            db.lock_all()  # one transaction cannot run again: no other writer gets in (PostgreSQL)
            watch = _Effects(db) if summary.dry_run else None
            while chunk := list(islice(rows, run.pace.size)):
                started = time.monotonic()
                if watch:
                    watch.see(chunk)
                _apply(chunk, run.apply_chunk, summary)
                summary.write_rejects()
                run.pace.took(len(chunk), time.monotonic() - started)
                run.tell()
            if watch:
                summary.effects = watch.changes()
            if summary.all_or_nothing and summary.rejected and not summary.dry_run:
                raise _Abort()
    except _Abort:
        summary.applied = summary.duplicates = 0
        summary.rolled_back = True
    return summary


def _after(rows, line: int):
    """Skip the rows a killed run already committed (those starting at or before `line`)."""
    for item in rows:
        if item[0] > line:
            yield item


def _apply(chunk: list, apply_chunk, summary: Summary) -> int:
    """Apply one chunk and count its rows; returns the physical line of its last row (0 if none)."""
    line = 0
    if not chunk:
        return line
    for (line, row), (status, error) in zip(chunk, apply_chunk(chunk)):
        summary.rows += 1
        if status == "rejected":
            summary.reject({**{k: v for k, v in row.items() if k != "__error__"}, "line": line, "error": error})
        elif status == "duplicate":
            summary.duplicates += 1
        else:
            summary.applied += 1
    return line


class _Effects:
    """For --dry-run: each member's balance and tier (as of now) before the import touched
    them and after, inside the transaction that is then rolled back."""

    def __init__(self, db: Database):
        self.db = db
        self.at = now_ts()
        self.members: list[str] = []
        self.seen: set[str] = set()
        self.before: dict[int, tuple] = {}

    def _state(self, enr) -> tuple:
        return member_store.balance_at(self.db, enr.id, self.at), member_store.tier_at(self.db, enr.id, self.at)

    def see(self, chunk: list[tuple[int, dict]]) -> None:
        for _, row in chunk:
            member = (row.get("member_id") or "").strip()
            if member and member not in self.seen:
                self.seen.add(member)
                self.members.append(member)
                for enr in member_store.enrollments_of(self.db, member):
                    self.before[enr.id] = self._state(enr)

    def changes(self) -> list[dict]:
        out = []
        for member in self.members:
            for enr in member_store.enrollments_of(self.db, member):
                before = self.before.get(enr.id, (None, None))
                after = self._state(enr)
                if before != after:
                    out.append({"member_id": member, "program": enr.program, "balance_before": before[0],
                                "balance_after": after[0], "change": after[0] - (before[0] or 0),
                                "tier_before": before[1], "tier_after": after[1]})
        return out


class _Abort(Exception):
    """Rolls back an --all-or-nothing import that had a rejected row."""
