"""Batch imports from CSV: transactions, members, NPS responses.

Rows apply in file order through the same use cases as the single commands, each
in a savepoint so a bad row is rejected alone; batches commit every BATCH rows
together with a checkpoint (the file's SHA-256 and the last line applied, in
job_runs), so a killed import re-run with the same file resumes after that line
and ends with exactly the ledger of one uninterrupted run; rows before it are
never re-evaluated against a later state (a rejected overdraw stays rejected).
txn ids stay idempotency keys for everything else (stdin, edited files).
--all-or-nothing runs the file as one transaction."""

from __future__ import annotations

import csv
import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterator

from . import service
from .errors import InputError, LoyaltyError, NotFound
from .ledger import imports as sql
from .ledger import store
from .ledger.db import Database
from .values import fmt_ts, now, parse_amount, parse_points, ts_or_now

BATCH = 2000  # rows in the first committed batch
GROWTH = 8  # later batches grow to at most BATCH * GROWTH rows (fewer state loads and commits on the fast path)
CACHE_MIB = 64  # page cache of a transactions import (peak RSS stays under 200 MB; see README)
CHECKPOINT_PAGES = 50_000  # WAL checkpoint interval of a transactions import, in 4 KiB pages
MAX_FIELD = 10_000
csv.field_size_limit(MAX_FIELD * 10)

TXN_COLUMNS = ["txn_id", "member_id", "kind", "occurred_at", "amount", "partner", "points", "reward",
               "ref_txn_id", "event", "reason", "expires_at"]
TXN_REQUIRED = ["txn_id", "member_id", "kind", "occurred_at"]
IGNORED = ["line", "error"]  # added by the rejects file, so a corrected rejects file imports as is
KINDS = ("purchase", "redeem", "refund", "event", "adjust", "opening")
MEMBER_COLUMNS = ["member_id", "program", "name", "email", "tags", "referred_by", "joined_at", "account"]
MEMBER_REQUIRED = ["member_id", "program"]
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f]")


@dataclass
class Summary:
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

    KEEP = 20

    def reject(self, row: dict) -> None:
        self.rejected += 1
        if len(self.rejects) < self.KEEP:
            self.rejects.append(row)
        if self.on_reject:
            self.on_reject(row)

    def as_dict(self) -> dict:
        return {"rows": self.rows, "applied": self.applied, "duplicates": self.duplicates,
                "rejected": self.rejected, "dry_run": self.dry_run, "rolled_back": self.rolled_back,
                "resumed_after_line": self.resumed_after}


class RowError(LoyaltyError):
    """A problem with one row: it goes to the rejects file, the rest applies."""


@dataclass
class Source:
    """An opened CSV input: its name for messages, header, and a row iterator
    yielding (physical line of the row's start, row dict)."""

    name: str
    header: list[str]
    rows: Iterator[tuple[int, dict]]
    size: int | None
    position: Callable[[], int]
    digest: str | None = None  # SHA-256 of a regular file's bytes (the resume checkpoint's key)


def open_csv(path: str, known: list[str], required: list[str]) -> tuple[Source, object]:
    name = "<stdin>" if path == "-" else path
    try:
        if path == "-":
            raw = sys.stdin.buffer
            size = None
        else:
            raw = open(path, "rb")
            size = os.fstat(raw.fileno()).st_size
    except FileNotFoundError:
        raise NotFound(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a CSV file") from None
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror}") from None
    counter = _LineCounter(raw)
    reader = csv.reader(counter)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{name}: empty file (expected a header line: {', '.join(required)}, ...)") from None
    except csv.Error as exc:
        raise InputError(f"{name}:1: not valid CSV ({exc})") from None
    if counter.bad_lines:
        raise InputError(f"{name}: not UTF-8 text; is it a CSV file?")
    header = [h.strip() for h in header]
    if any(_CONTROL.search(h) for h in header):
        raise InputError(f"{name}:1: the header line has control characters; is it a CSV file?")
    if not any(header):
        raise InputError(f"{name}:1: empty header line (expected {', '.join(required)}, ...)")
    unknown = [h for h in header if h not in known and h not in IGNORED]
    if unknown:
        raise InputError(f"{name}:1: unknown column(s) {', '.join(unknown)} (known: {', '.join(known)})")
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{name}:1: missing column(s) {', '.join(missing)}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InputError(f"{name}:1: column(s) {', '.join(dupes)} appear twice")

    def rows() -> Iterator[tuple[int, dict]]:
        while True:
            start = counter.lines + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, {"__error__": f"not valid CSV ({exc})"}
                continue
            if not values or values == [""]:
                continue
            row = dict(zip(header, values))
            for ignored in IGNORED:
                row.pop(ignored, None)
            if counter.bad_lines and counter.bad_lines[-1] >= start:
                row["__error__"] = "not UTF-8 text"
            elif len(values) != len(header):
                row["__error__"] = f"has {len(values)} fields, the header has {len(header)}"
            yield start, row

    columns = [h for h in header if h not in IGNORED]
    return Source(name, columns, rows(), size, lambda: raw.tell() if size is not None else 0), raw


def file_digest(path: str) -> str | None:
    """SHA-256 of a regular file (None for stdin, pipes and other streams)."""
    if path == "-" or not os.path.isfile(path):
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _LineCounter:
    """Feeds csv.reader one decoded line at a time, counting physical lines and
    remembering lines that are not UTF-8 (their row is rejected, not the file)."""

    def __init__(self, raw):
        self.raw = raw
        self.lines = 0
        self.bad_lines: list[int] = []

    def __iter__(self):
        return self

    def __next__(self):
        line = self.raw.readline()
        if not line:
            raise StopIteration
        self.lines += 1
        if self.lines == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            return line.decode("utf-8")
        except UnicodeDecodeError:
            self.bad_lines.append(self.lines)
            return line.decode("utf-8", errors="replace")


def _check_cells(row: dict) -> None:
    if "__error__" in row:
        raise RowError(row.pop("__error__"))
    values = row.values()
    if max(map(len, values), default=0) > MAX_FIELD or _CONTROL.search("".join(values)):
        for key, value in row.items():
            if len(value) > MAX_FIELD:
                raise RowError(f"{key}: longer than {MAX_FIELD} characters")
            if _CONTROL.search(value):
                raise RowError(f"{key}: contains control characters (a line break inside a quoted cell?)")


def _need(row: dict, column: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise RowError(f"{column}: required for kind {row.get('kind')!r}")
    return value


def txn_row_head(row: dict) -> tuple[str, str, str, str]:
    """The columns every transaction row has, checked: (txn_id, kind, occurred_at, member_id);
    member_id is empty only for a purchase (an anonymous sale). Shared with bulk.py, so both
    import paths reject a row for the same reason."""
    _check_cells(row)
    txn = _need(row, "txn_id")
    service.check_txn(txn, "txn_id")
    kind = (row.get("kind") or "").strip()
    if kind not in KINDS:
        raise RowError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    at = ts_or_now(_need(row, "occurred_at"), "occurred_at")
    member = (row.get("member_id") or "").strip()
    if not member and kind != "purchase":
        raise RowError(f"member_id: required for kind {kind!r}")
    return txn, kind, at, member


def _apply_txn(db: Database, row: dict, program: str | None, enroll_unknown: bool) -> str:
    """Apply one transaction row; returns 'recorded' or 'duplicate'."""
    txn, kind, at, member = txn_row_head(row)
    if not member:
        return service.anonymous_sale(db, txn, program, parse_amount(_need(row, "amount"), "amount"), at)["status"]
    if enroll_unknown and kind in ("purchase", "event", "opening", "adjust"):
        if not program:
            raise RowError("--enroll-unknown needs --program")
        if not service.is_enrolled(db, member, program):
            service.enroll(db, member, program, at=at)
    if kind == "purchase":
        partner = (row.get("partner") or "").strip() or None
        result = service.earn(db, member, program_code=program, amount=parse_amount(_need(row, "amount"), "amount"),
                              partner=partner, txn=txn, at=at)
    elif kind == "event":
        result = service.earn(db, member, program_code=program, event=_need(row, "event"), txn=txn, at=at)
    elif kind == "redeem":
        points = (row.get("points") or "").strip()
        reward = (row.get("reward") or "").strip()
        if bool(points) == bool(reward):
            raise RowError("redeem needs exactly one of points or reward")
        result = service.redeem(db, member, program_code=program, points=parse_points(points, "points") if points else None,
                                reward=reward or None, txn=txn, at=at)
    elif kind == "refund":
        ref = _need(row, "ref_txn_id")
        result = service.refund(db, ref, amount=parse_amount(_need(row, "amount"), "amount"), txn=txn, at=at,
                                member_id=member)
    elif kind == "adjust":
        result = service.adjust(db, member, points=parse_points(_need(row, "points"), "points", allow_negative=True),
                                reason=_need(row, "reason"), program_code=program, txn=txn, at=at)
    else:  # opening
        expires = (row.get("expires_at") or "").strip()
        result = service.opening(db, member, points=parse_points(_need(row, "points"), "points"), program_code=program,
                                 expires_at=ts_or_now(expires, "expires_at") if expires else None, txn=txn, at=at)
    return result["status"]


def import_transactions(db: Database, path: str, *, program: str | None = None, all_or_nothing: bool = False,
                        enroll_unknown: bool = False, dry_run: bool = False, progress=None,
                        rejects: str | None = None, overwrite: bool = False) -> Summary:
    from . import bulk

    if program:
        service.program(db, program)
    source, handle = open_csv(path, TXN_COLUMNS, TXN_REQUIRED)
    digest = file_digest(path)
    key = f"import transactions {digest} {program or ''} {'enroll' if enroll_unknown else ''}" if digest else None
    try:
        with sql.bulk_session(db, CACHE_MIB, CHECKPOINT_PAGES):
            return _run(db, source, lambda row: _apply_txn(db, row, program, enroll_unknown),
                        all_or_nothing=all_or_nothing, dry_run=dry_run, progress=progress, rejects=rejects,
                        overwrite=overwrite, checkpoint=key, fast=lambda chunk: bulk.apply_batch(db, chunk, program, enroll_unknown))
    finally:
        handle.close()


def _apply_member(db: Database, row: dict) -> str:
    _check_cells(row)
    member = _need(row, "member_id")
    program = _need(row, "program")
    joined = (row.get("joined_at") or "").strip()
    at = ts_or_now(joined, "joined_at") if joined else None
    existing = service.is_enrolled(db, member, program)
    if existing:
        return "duplicate"
    tags = [t for t in (row.get("tags") or "").split(";") if t.strip()]
    service.enroll(db, member, program, name=(row.get("name") or "").strip() or None,
                   email=(row.get("email") or "").strip() or None, tags=tags,
                   referred_by=(row.get("referred_by") or "").strip() or None,
                   account=(row.get("account") or "").strip() or None, at=at)
    return "recorded"


def import_members(db: Database, path: str, *, all_or_nothing: bool = False, dry_run: bool = False,
                   progress=None, rejects: str | None = None, overwrite: bool = False) -> Summary:
    source, handle = open_csv(path, MEMBER_COLUMNS, MEMBER_REQUIRED)
    try:
        return _run(db, source, lambda row: _apply_member(db, row), all_or_nothing=all_or_nothing,
                    dry_run=dry_run, progress=progress, rejects=rejects, overwrite=overwrite)
    finally:
        handle.close()


NPS_COLUMNS = ["response_id", "member_id", "account", "score", "comment", "answered_at", "program"]
NPS_REQUIRED = ["response_id", "score", "answered_at"]


def _apply_nps(db: Database, row: dict, program: str | None) -> str:
    from . import nps

    _check_cells(row)
    response = (row.get("response_id") or "").strip()
    if not response:
        raise RowError("response_id: required")
    return nps.record(db, (row.get("member_id") or "").strip() or None, score=(row.get("score") or "").strip(),
                      account=row.get("account"), comment=row.get("comment"),
                      at=ts_or_now(_need(row, "answered_at"), "answered_at"),
                      program=(row.get("program") or "").strip() or program, response_id=response)["status"]


def import_nps(db: Database, path: str, *, program: str | None = None, all_or_nothing: bool = False,
               dry_run: bool = False, progress=None, rejects: str | None = None, overwrite: bool = False) -> Summary:
    """NPS responses: response_id, member_id, account, score, comment, answered_at [, program].
    response_id is the idempotency key: a re-imported file records nothing twice."""
    if program:
        service.program(db, program)
    source, handle = open_csv(path, NPS_COLUMNS, NPS_REQUIRED)
    try:
        return _run(db, source, lambda row: _apply_nps(db, row, program), all_or_nothing=all_or_nothing,
                    dry_run=dry_run, progress=progress, rejects=rejects, overwrite=overwrite)
    finally:
        handle.close()


def _run(db: Database, source: Source, apply, *, all_or_nothing: bool, dry_run: bool, progress,
         rejects: str | None, overwrite: bool = False, checkpoint: str | None = None, fast=None) -> Summary:
    """Apply `apply(row)` to every row (it returns 'recorded' or 'duplicate', or raises a
    LoyaltyError that rejects the row). `checkpoint` names this import (file digest and
    options) so a killed run is resumed after the last committed line."""
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
    memo_keys = ("enrollments", "brief_results")
    db.cache.update({"enrollments": {}, "brief_results": True})
    try:
        if rejects:
            with RejectsWriter(rejects, source.header, keep_upto=summary.resumed_after, overwrite=overwrite) as writer:
                summary.on_reject = writer
                return _loop(db, source, apply, summary, all_or_nothing, dry_run, progress, checkpoint, resume, fast)
        return _loop(db, source, apply, summary, all_or_nothing, dry_run, progress, checkpoint, resume, fast)
    finally:
        for k in memo_keys:
            db.cache.pop(k, None)


def _loop(db: Database, source: Source, apply, summary: Summary, all_or_nothing: bool, dry_run: bool,
          progress, checkpoint: str | None = None, resume: dict | None = None, fast=None) -> Summary:
    whole = all_or_nothing or dry_run
    rows = source.rows
    if resume:
        rows = _after(rows, resume["line"])
    run_id = resume["id"] if resume else None
    done = False
    while not done:
        tx = db.rollback_only() if dry_run else db.write()
        try:
            with tx:
                watch = _Effects(db) if dry_run else None
                done, line = _batch(db, rows, apply, summary, source, whole, progress, fast,
                                    watch.see if watch else None)
                if watch:
                    summary.effects = watch.changes()
                if all_or_nothing and summary.rejected and not dry_run:
                    raise _Abort()
                if checkpoint:
                    if summary.on_reject is not None:
                        summary.on_reject.flush()  # rejects up to the checkpoint survive a kill
                    state = {"line": max(line, summary.resumed_after), "rows": summary.rows,
                             "applied": summary.applied, "duplicates": summary.duplicates,
                             "rejected": summary.rejected, "done": done}
                    run_id = sql.save_checkpoint(db, run_id, checkpoint, state)
        except _Abort:
            summary.applied = summary.duplicates = 0
            summary.rolled_back = True
        if progress:
            progress(source.position(), summary.rows)
    return summary


def _after(rows, line: int):
    """Skip the rows a killed run already committed (those starting at or before `line`)."""
    for item in rows:
        if item[0] > line:
            yield item


def _batch(db: Database, rows, apply, summary: Summary, source: Source, whole: bool, progress,
           fast=None, observe=None) -> tuple[bool, int]:
    """Apply rows in batches growing from BATCH, until the batch is full (False) or the file ends (True);
    also returns the physical line of the last row applied (0 if none). `fast(chunk)` may
    apply a whole chunk at once (see bulk.py) or return None to go row by row."""
    line = 0
    while True:
        size = min(BATCH * 2 ** (summary.rows // BATCH).bit_length(), BATCH * GROWTH)
        chunk = list(islice(rows, size))
        if not chunk:
            return True, line
        if observe:
            observe(chunk)
        results = fast(chunk) if fast else None
        if results is None:
            results = [_one(db, apply, row) for _, row in chunk]
        for (line, row), (status, error) in zip(chunk, results):
            summary.rows += 1
            if status == "rejected":
                summary.reject({**{k: v for k, v in row.items() if k != "__error__"}, "line": line, "error": error})
            elif status == "duplicate":
                summary.duplicates += 1
            else:
                summary.applied += 1
        if progress:
            progress(source.position(), summary.rows)
        if len(chunk) < size:
            return True, line
        if not whole:
            return False, line


def _one(db: Database, apply, row: dict) -> tuple[str, str | None]:
    """Apply one row in its own savepoint: (status, None) or ("rejected", message)."""
    try:
        with db.savepoint():
            return apply(row), None
    except (LoyaltyError, ArithmeticError) as exc:
        memo = db.cache.get("enrollments")
        if memo:
            memo.clear()  # the savepoint may have undone an enrollment made for this row
        return "rejected", exc.message if isinstance(exc, LoyaltyError) else f"bad number: {exc}"


class _Effects:
    """For --dry-run: each member's balance and tier (as of now) before the import touched
    them and after, inside the transaction that is then rolled back."""

    def __init__(self, db: Database):
        self.db = db
        self.at = fmt_ts(now())
        self.members: list[str] = []
        self.seen: set[str] = set()
        self.before: dict[int, tuple] = {}

    def _state(self, enr) -> tuple:
        tier = store.tier_at(self.db, enr["id"], self.at)
        return store.balance_at(self.db, enr["id"], self.at), tier["tier"] if tier else None

    def see(self, chunk: list[tuple[int, dict]]) -> None:
        for _, row in chunk:
            member = (row.get("member_id") or "").strip()
            if member and member not in self.seen:
                self.seen.add(member)
                self.members.append(member)
                for enr in store.enrollments_of(self.db, member):
                    self.before[enr["id"]] = self._state(enr)

    def changes(self) -> list[dict]:
        out = []
        for member in self.members:
            for enr in store.enrollments_of(self.db, member):
                before = self.before.get(enr["id"], (None, None))
                after = self._state(enr)
                if before != after:
                    out.append({"member_id": member, "program": enr["program_code"], "balance_before": before[0],
                                "balance_after": after[0], "change": after[0] - (before[0] or 0),
                                "tier_before": before[1], "tier_after": after[1]})
        return out


class _Abort(Exception):
    """Rolls back an --all-or-nothing import that had a rejected row."""


class RejectsWriter:
    """Writes rejected rows as they come: the original columns plus line and error."""

    def __init__(self, path: str, header: list[str], keep_upto: int = 0, overwrite: bool = False):
        self.path = path
        self.columns = [c for c in header if c not in ("line", "error")] + ["line", "error"]
        self.keep_upto = keep_upto  # a resumed import keeps the rejects of lines <= this
        self.overwrite = overwrite or bool(keep_upto)  # resuming rewrites the killed run's file

    def _kept(self) -> list[list[str]]:
        if not self.keep_upto:
            return []
        try:
            with open(self.path, newline="", encoding="utf-8") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error):
            return []
        if not rows or rows[0] != self.columns:
            return []
        at = self.columns.index("line")
        return [r for r in rows[1:] if len(r) == len(self.columns) and r[at].isdigit() and int(r[at]) <= self.keep_upto]

    def __enter__(self):
        from .paths import create

        kept = self._kept()
        self.out = create(self.path, option="--rejects", force=self.overwrite)  # 0600: rows hold personal data
        from .exports import csv_writer

        self.writer = csv_writer(self.out)
        self.writer.writerow(self.columns)
        self.writer.writerows(kept)
        return self

    def flush(self) -> None:
        self.out.flush()

    def __call__(self, row: dict) -> None:
        from .render import safe_cell

        self.writer.writerow([safe_cell(row.get(c)) for c in self.columns])

    def __exit__(self, *exc):
        self.out.close()
