"""CSV sources: files (or stdin) read as rows with the physical line each starts on, and
rows turned into the engine's commands. Errors name the CSV column they are about."""

from __future__ import annotations

import csv
import hashlib
import os
import sys
from dataclasses import dataclass
from typing import Callable, Iterator

from ..core.engine import check_txn
from ..core.commands import NEVER, AnonymousSale, Adjust, Event, Join, Opening, Purchase, Redeem, Refund
from ..core.rules import basket_total
from ..core.values import CONTROL, parse_amount, parse_points, printable, tag_list, text, ts_or_now
from ..errors import InputError, LoyaltyError, NotFound
from . import baskets

MAX_FIELD = 10_000
csv.field_size_limit(MAX_FIELD * 10)

TXN_COLUMNS = ["txn_id", "member_id", "kind", "occurred_at", "amount", "partner", "points", "reward",
               "ref_txn_id", "event", "reason", "expires_at", "lines", "discount", "paid_points"]
# A purchase_lines file beside a transactions file: the lines of the purchases (and of line refunds) it names.
LINE_COLUMNS = ["txn_id", "sku", "category", "quantity", "unit_price", "discount"]
LINE_REQUIRED = ["txn_id", "sku", "quantity"]
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


def transaction(row: dict, program: str | None, files: dict | None = None):
    """The command a transaction row asks for. The columns every row has are checked first
    (txn_id, kind, occurred_at, member_id), so a row is refused for the same reason however
    it would have applied. `files`: rows of a purchase_lines file by txn_id."""
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
        basket = _basket(row, txn, files)
        if basket is not None and not _cell(row, "amount"):
            return AnonymousSale(txn, program, at, basket_total(basket))
        return AnonymousSale(txn, program, at, parse_amount(need(row, "amount"), "amount"))
    if kind == "purchase":
        return _purchase(row, txn, member, program, at, files)
    if kind == "event":
        return Event(txn, member, program, at, True, need_text(row, "event"))
    if kind == "redeem":
        return _redeem(row, txn, member, program, at)
    if kind == "refund":  # no amount: the whole purchase, or a redemption (cancelled whole)
        amount = _cell(row, "amount")
        return Refund(txn, need_text(row, "ref_txn_id"), at, True, parse_amount(amount, "amount") if amount else None,
                      member, _refund_lines(row, txn, files))
    if kind == "adjust":
        return Adjust(txn, member, program, at, True, parse_points(need(row, "points"), "points", allow_negative=True),
                      need_text(row, "reason"))
    expires = _cell(row, "expires_at")
    if expires and expires.lower() == NEVER:  # a balance that never expires
        expires = NEVER
    return Opening(txn, member, program, at, True, parse_points(need(row, "points"), "points"),
                   ts_or_now(expires, "expires_at") if expires not in (None, NEVER) else expires)


def _purchase(row: dict, txn: str, member: str, program: str | None, at: str, files: dict | None) -> Purchase:
    basket = _basket(row, txn, files)
    amount = _cell(row, "amount") if basket is not None else need(row, "amount")
    paid = _cell(row, "paid_points")
    return Purchase(txn, member, program, at, True, parse_amount(amount, "amount") if amount else None,
                    text_cell(row, "partner"), basket, parse_points(paid, "paid_points") if paid else None)


def _basket(row: dict, txn: str, files: dict | None):
    """A purchase's lines: the `lines` JSON column, or the purchase_lines file's rows for it."""
    given, found = _cell(row, "lines"), (files or {}).get(txn)
    discounts = tuple(baskets.parse_discount(d) for d in (_cell(row, "discount") or "").split(";") if d.strip())
    if given and found:
        raise RowError("give the lines in the lines column or in the purchase_lines file, not both", field="lines")
    basket = baskets.basket_json(given, "lines", "lines") if given else _file_basket(found) if found else None
    if basket is None:
        if discounts:
            raise RowError("applies to purchases with lines", field="discount")
        return None
    return baskets.with_discounts(basket, discounts)


def _file_basket(rows: list[tuple[str, dict]]):
    from ..core.commands import Basket, Line

    lines = []
    for where, r in rows:
        try:
            lines.append(Line(baskets.label(r.get("sku"), "sku"), baskets.quantity(r.get("quantity")),
                              baskets.money_value(_line_cell(r, "unit_price"), "unit_price"),
                              baskets.money_value(_cell(r, "discount") or "0", "discount"),
                              baskets.label(r["category"], "category") if _cell(r, "category") else None))
        except LoyaltyError as exc:
            raise RowError(f"{where}: {exc.detail}", field="lines") from None
    return Basket(tuple(lines))


def _line_cell(row: dict, column: str) -> str:
    value = _cell(row, column)
    if value is None:
        raise InputError(f"{column} required")
    return value


def _refund_lines(row: dict, txn: str, files: dict | None) -> tuple:
    """(sku, quantity) of the lines a refund row names: JSON in `lines`, or purchase_lines rows."""
    given, found = _cell(row, "lines"), (files or {}).get(txn)
    if given:
        return baskets.refund_json(given)
    out = []
    for where, r in found or ():
        try:
            out.append((baskets.label(r.get("sku"), "sku"), baskets.quantity(r.get("quantity"))))
        except LoyaltyError as exc:
            raise RowError(f"{where}: {exc.detail}", field="lines") from None
    return tuple(out)


def purchase_lines(path: str) -> dict[str, list[tuple[str, dict]]]:
    """A purchase_lines file's rows by txn_id, each with where it is (file:line), read whole:
    the transactions file is streamed, its lines are looked up."""
    source, handle = open_csv(path, LINE_COLUMNS, LINE_REQUIRED)
    out: dict[str, list] = {}
    try:
        for line, row in source.rows:
            where = f"{source.name}:{line}"
            try:
                check_cells(row)
            except RowError as exc:
                raise InputError(f"{where}: {exc.message}") from None
            txn = _cell(row, "txn_id")
            if not txn:
                raise InputError(f"{where}: txn_id: required")
            out.setdefault(txn, []).append((where, row))
    finally:
        handle.close()
    return out


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
