"""Where a command may write: never onto the ledger, its journal files or its own inputs.

Every path a command writes (`export -o`, `--rejects`, `backup`, `restore`'s target) goes
through `guard`; files holding personal data (exports, rejects) are made by `create`:
readable by their owner only, and never over an existing file without --force.
"""

from __future__ import annotations

import os
import stat
from typing import IO, Iterable

from .errors import Conflict, InputError

LEDGER_FILES = (("", "the ledger"), ("-wal", "the ledger's WAL file"), ("-shm", "the ledger's shared-memory file"),
                ("-journal", "the ledger's journal"))


def guard(path: str, *, option: str, ledger: str | None = None, inputs: Iterable[str] = ()) -> None:
    """Refuse an output path that is (after symlinks, or as a hard link) the ledger, one of
    its -wal/-shm/-journal files, or an input of the same command."""
    protected = [(ledger + suffix, what) for suffix, what in LEDGER_FILES] if ledger else []
    protected += [(source, f"the input file {source}") for source in inputs if source and source != "-"]
    for other, what in protected:
        if same_file(path, other):
            raise InputError(f"{option} {path}: that is {what}; choose another file")


def same_file(a: str, b: str) -> bool:
    """The same file (after symlinks, or as a hard link), or the same place when one is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet): compare where they would be
        return os.path.realpath(a) == os.path.realpath(b)


def create(path: str, *, option: str, force: bool = False, encoding: str = "utf-8",
           errors: str = "strict") -> IO[str]:
    """Open `path` for writing text, creating it 0600. An existing regular file is refused
    unless `force` (and then made 0600 too: it is about to hold personal data); devices and
    pipes (/dev/null, a FIFO) are written as they are."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise InputError(f"{option} {path}: {exc.strerror}") from None
    regular = st is not None and stat.S_ISREG(st.st_mode)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"{option} {path}: is a directory")
    if regular and not force:
        raise Conflict(f"{option} {path}: already exists; pass --force to overwrite it")
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if st is None else 0) | (os.O_TRUNC if regular else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileExistsError:  # created meanwhile by someone else
        raise Conflict(f"{option} {path}: already exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise InputError(f"{option} {path}: {exc.strerror}") from None
    if regular:
        try:
            os.fchmod(fd, 0o600)
        except OSError:
            pass  # not ours to change (another owner's file we may write): keep its mode
    return os.fdopen(fd, "w", newline="", encoding=encoding, errors=errors)


def remove_partial(path: str, out: IO[str]) -> None:
    """Remove an output file a failed write left half-written (never a device or pipe)."""
    try:
        if stat.S_ISREG(os.fstat(out.fileno()).st_mode):
            os.remove(path)
    except OSError:
        pass
