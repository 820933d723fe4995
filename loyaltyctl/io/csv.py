"""CSV sources: files (or stdin) read as rows with the physical line each starts on, and
rows turned into the engine's commands. Errors name the CSV column they are about."""

from __future__ import annotations

import csv
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from typing import Callable, Iterator

from ..core.engine import check_txn
from ..core.records import AnonymousSale, Adjust, Event, Join, Opening, Purchase, Redeem, Refund
from ..core.values import CONTROL, parse_amount, parse_points, printable, tag_list, text, ts_or_now
from ..errors import InputError, LoyaltyError, NotFound

MAX_FIELD = 10_000
csv.field_size_limit(MAX_FIELD * 10)

TXN_COLUMNS = ["txn_id", "member_id", "kind", "occurred_at", "amount", "partner", "points", "reward",
               "ref_txn_id", "event", "reason", "expires_at"]
TXN_REQUIRED = ["txn_id", "member_id", "kind", "occurred_at"]
IGNORED = ["line", "error"]  # added by the rejects file, so a corrected rejects file imports as is
KINDS = ("purchase", "redeem", "refund", "event", "adjust", "opening")
MEMBER_COLUMNS = ["member_id", "program", "name", "email", "tags", "referred_by", "joined_at", "account"]
MEMBER_REQUIRED = ["member_id", "program"]
NPS_COLUMNS = ["response_id", "member_id", "account", "score", "comment", "answered_at", "program"]
NPS_REQUIRED = ["response_id", "score", "answered_at"]


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


@dataclass(frozen=True)
class CsvFormat:
    """How a CSV file is written: the character between cells and the text encoding (one
    whose line ends and punctuation are the ASCII bytes, as UTF-8, cp1252 and latin-1 are)."""

    delimiter: str = ","
    encoding: str = "utf-8"

    def key(self) -> str:
        """For an import's resume key: empty for the default format (keys of older runs stay valid)."""
        return "" if self == CsvFormat() else f" delimiter={self.delimiter!r} encoding={self.encoding}"


DELIMITERS = {",": ",", ";": ";", "|": "|", "\t": "\t", "\\t": "\t", "tab": "\t"}


def delimiter(value: str) -> str:
    """--delimiter: a comma, a semicolon, a tab (\\t or tab) or |."""
    if value not in DELIMITERS:
        raise InputError(f"{value!r} is not one of ',', ';', '|', tab (\\t)", field="delimiter")
    return DELIMITERS[value]


def encoding(value: str) -> str:
    """--encoding: a text encoding Python knows whose line ends and punctuation are ASCII bytes."""
    import codecs

    try:
        name = codecs.lookup(value).name
        name = "utf-8" if name == "utf-8-sig" else name  # a UTF-8 byte order mark is skipped anyway
    except (LookupError, ValueError):
        raise InputError(f"unknown text encoding {value!r} (e.g. utf-8, cp1252, latin-1)", field="encoding") from None
    try:
        ascii_compatible = ",;|\t\"\r\n".encode(name) == b",;|\t\"\r\n"
    except (UnicodeError, LookupError):
        ascii_compatible = False
    if not ascii_compatible:
        raise InputError(f"{value!r} is not a supported encoding: lines must end in an ASCII line feed "
                         "(utf-8, cp1252, latin-1, iso8859-15 ...)", field="encoding")
    return name


def open_csv(path: str, known: list[str], required: list[str],
             fmt: CsvFormat = CsvFormat()) -> tuple[Source, object]:
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
    counter = _LineCounter(raw, fmt.encoding)
    reader = csv.reader(counter, delimiter=fmt.delimiter)
    header = _header(name, reader, counter, known, required, fmt)

    def rows() -> Iterator[tuple[int, dict]]:
        while True:
            start = counter.lines + 1
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, {"__error__": _csv_error(exc)}
                continue
            if not values or values == [""]:
                continue
            row = dict(zip(header, values))
            for ignored in IGNORED:
                row.pop(ignored, None)
            if counter.bad_lines and counter.bad_lines[-1] >= start:
                row["__error__"] = counter.undecodable()
            elif len(values) != len(header):
                row["__error__"] = f"has {len(values)} fields, the header has {len(header)}"
            yield start, row

    columns = [h for h in header if h not in IGNORED]
    return Source(name, columns, rows(), size, lambda: raw.tell() if size is not None else 0), raw


def _csv_error(exc: Exception) -> str:
    """The csv module's complaint in the words of a CSV file (it speaks of Python's file modes)."""
    text = str(exc)
    if "new-line character" in text:
        return "not valid CSV: a carriage return inside an unquoted cell (quote the cell, or end every line alike)"
    if "NUL" in text:
        return "not valid CSV: the line holds a NUL byte; is it a text file?"
    if "field limit" in text:
        return f"not valid CSV: a cell is longer than {MAX_FIELD:,} characters"
    return f"not valid CSV ({text})"


def _header(name: str, reader, counter, known: list[str], required: list[str], fmt: CsvFormat) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{name}: empty file (expected a header line: {', '.join(required)}, ...)") from None
    except csv.Error as exc:
        raise InputError(f"{name}:1: {_csv_error(exc)}") from None
    if counter.bad_lines:
        raise InputError(f"{name}:1: {counter.undecodable('; is it a CSV file?')}")
    header = [h.strip() for h in header]
    hint = _delimiter_hint(header, known, fmt)
    if any(CONTROL.search(h) for h in header):
        raise InputError(f"{name}:1: the header line has control characters{hint or '; is it a CSV file?'}")
    if not any(header):
        raise InputError(f"{name}:1: empty header line (expected {', '.join(required)}, ...)")
    unknown = [h for h in header if h not in known and h not in IGNORED]
    if unknown:
        known_list = f" (known: {', '.join(known)})"
        raise InputError(f"{name}:1: unknown column(s) {', '.join(unknown)}{hint or known_list}")
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{name}:1: missing column(s) {', '.join(missing)}{hint}")
    dupes = sorted({h for h in header if header.count(h) > 1})
    if dupes:
        raise InputError(f"{name}:1: column(s) {', '.join(dupes)} appear twice")
    return header


_NAMES = {";": "semicolon", "\t": "tab", "|": "pipe", ",": "comma"}


def _delimiter_hint(header: list[str], known: list[str], fmt: CsvFormat) -> str:
    """'; the file looks semicolon-separated: ...' when another delimiter would split the header
    line into known columns."""
    line = fmt.delimiter.join(header)
    for other in (";", "\t", ",", "|"):
        cells = [c.strip().strip('"') for c in line.split(other)]
        if other != fmt.delimiter and len(cells) > 1 and all(c in known or c in IGNORED for c in cells):
            option = "'\\t'" if other == "\t" else f"'{other}'"
            return f"; the file looks {_NAMES[other]}-separated: import it with --delimiter {option}"
    return ""


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
    """Feeds csv.reader one decoded line at a time, counting physical lines and remembering
    lines that are not text in the file's encoding: their row is rejected (not the file), its
    undecodable bytes kept as surrogates ("surrogateescape") so the rejects file writes them
    back as they were."""

    def __init__(self, raw, encoding: str = "utf-8"):
        self.raw = raw
        self.encoding = encoding
        self.lines = 0
        self.bad_lines: list[int] = []
        self.bad_byte = 0

    def __iter__(self):
        return self

    def __next__(self):
        line = self.raw.readline()
        if not line:
            raise StopIteration
        self.lines += 1
        if self.lines == 1 and self.encoding == "utf-8" and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        try:
            return line.decode(self.encoding)
        except UnicodeDecodeError as exc:
            self.bad_lines.append(self.lines)
            self.bad_byte = line[exc.start]
            return line.decode(self.encoding, errors="surrogateescape")

    def undecodable(self, doubt: str = "") -> str:
        """What is wrong with the last undecodable line; `doubt` goes before the remedy."""
        label = "UTF-8" if self.encoding == "utf-8" else self.encoding
        return (f"not {label} text (byte 0x{self.bad_byte:02X}){doubt}; for a file in another encoding, import "
                "it with --encoding (e.g. cp1252)")


# --- rows -> commands --------------------------------------------------------------------------


def check_cells(row: dict) -> None:
    if "__error__" in row:
        raise RowError(row.pop("__error__"))
    values = row.values()
    if max(map(len, values), default=0) > MAX_FIELD or CONTROL.search("".join(values)):
        for key, value in row.items():
            if len(value) > MAX_FIELD:
                raise RowError(f"longer than {MAX_FIELD:,} characters", field=key)
            printable(value, key)


def need(row: dict, column: str) -> str:
    value = (row.get(column) or "").strip()
    if not value:
        raise RowError(f"required for kind {row.get('kind')!r}", field=column)
    return value


def _cell(row: dict, column: str) -> str | None:
    return (row.get(column) or "").strip() or None


def need_text(row: dict, column: str) -> str:
    """A required text cell, under the same rule as the command line's (values.text)."""
    return text(need(row, column), column)


def text_cell(row: dict, column: str) -> str | None:
    value = _cell(row, column)
    return value and text(value, column)


def transaction(row: dict, program: str | None):
    """The command a transaction row asks for. The columns every row has are checked first
    (txn_id, kind, occurred_at, member_id), so a row is refused for the same reason however
    it would have applied."""
    check_cells(row)
    txn = need_text(row, "txn_id")
    check_txn(txn)
    kind = (row.get("kind") or "").strip()
    if kind not in KINDS:
        raise RowError(f"{kind!r} is not one of {', '.join(KINDS)}", field="kind")
    at = ts_or_now(need(row, "occurred_at"), "occurred_at")
    member = text_cell(row, "member_id") or ""
    if not member and kind != "purchase":
        raise RowError(f"required for kind {kind!r}", field="member_id")
    if not member:
        return AnonymousSale(txn, program, at, parse_amount(need(row, "amount"), "amount"))
    if kind == "purchase":
        return Purchase(txn, member, program, at, True, parse_amount(need(row, "amount"), "amount"),
                        text_cell(row, "partner"))
    if kind == "event":
        return Event(txn, member, program, at, True, need_text(row, "event"))
    if kind == "redeem":
        return _redeem(row, txn, member, program, at)
    if kind == "refund":  # no amount: the whole purchase, or a redemption (cancelled whole)
        amount = _cell(row, "amount")
        return Refund(txn, need_text(row, "ref_txn_id"), at, True, parse_amount(amount, "amount") if amount else None,
                      member)
    if kind == "adjust":
        return Adjust(txn, member, program, at, True, parse_points(need(row, "points"), "points", allow_negative=True),
                      need_text(row, "reason"))
    expires = _cell(row, "expires_at")
    return Opening(txn, member, program, at, True, parse_points(need(row, "points"), "points"),
                   ts_or_now(expires, "expires_at") if expires else None)


def _redeem(row: dict, txn: str, member: str, program: str | None, at: str) -> Redeem:
    points, reward = _cell(row, "points"), text_cell(row, "reward")
    if bool(points) == bool(reward):
        raise RowError("redeem needs exactly one of points or reward")
    return Redeem(txn, member, program, at, True, parse_points(points, "points") if points else None, reward)


@dataclass(frozen=True)
class MemberRow:
    join: Join
    name: str | None
    email: str | None
    account: str | None


def member(row: dict) -> MemberRow:
    """A member row: the enrollment it asks for and the contact details it carries."""
    check_cells(row)
    member_id = need_text(row, "member_id")
    program = need_text(row, "program")
    joined = _cell(row, "joined_at")
    at = ts_or_now(joined, "joined_at")
    tags = tuple(tag_list([t for t in (row.get("tags") or "").split(";") if t.strip()]))
    return MemberRow(Join(member_id, program, at, tags, text_cell(row, "referred_by")), text_cell(row, "name"),
                     text_cell(row, "email"), text_cell(row, "account"))


class csv_writer:
    """csv.writer with "\n" line ends that still quotes cells holding a carriage return
    (the stdlib writer only quotes the characters of its own line terminator, so a lone
    CR would otherwise be written bare and break the row for every reader)."""

    def __init__(self, out, delimiter: str = ","):
        import csv
        import io

        self.out = out
        self.buffer = io.StringIO()
        self.writer = csv.writer(self.buffer, lineterminator="\r\n", delimiter=delimiter)

    def writerow(self, row) -> None:
        self.buffer.seek(0)
        self.buffer.truncate()
        self.writer.writerow(row)
        self.out.write(self.buffer.getvalue()[:-2] + "\n")

    def writerows(self, rows) -> None:
        for row in rows:
            self.writerow(row)
