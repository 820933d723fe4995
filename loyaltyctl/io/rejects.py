"""The rejects file: every rejected row with its original columns plus `line` and `error`,
so it can be corrected and imported as is, with the same options: it is written with the
input's delimiter and encoding, and a line that was not text in that encoding is written
back byte for byte."""

from __future__ import annotations

import codecs
import csv

from .csv import CsvFormat

KEEP_BYTES = "loyaltyctl-keep-bytes"


def _keep_bytes(exc: UnicodeError):
    """Encoding error handler: undecodable input bytes (held as surrogates by "surrogateescape")
    go back out as they were; a character of our own messages the encoding lacks becomes '?'."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    part = exc.object[exc.start:exc.end]
    if all(0xDC80 <= ord(c) <= 0xDCFF for c in part):
        return bytes(ord(c) - 0xDC00 for c in part), exc.end
    return "?" * len(part), exc.end


codecs.register_error(KEEP_BYTES, _keep_bytes)


class RejectsWriter:
    """Writes rejected rows as they come: the original columns plus line and error."""

    def __init__(self, path: str, header: list[str], keep_upto: int = 0, overwrite: bool = False,
                 fmt: CsvFormat = CsvFormat()):
        self.path = path
        self.columns = [c for c in header if c not in ("line", "error")] + ["line", "error"]
        self.keep_upto = keep_upto  # a resumed import keeps the rejects of lines <= this
        self.overwrite = overwrite or bool(keep_upto)  # resuming rewrites the killed run's file
        self.fmt = fmt

    def _kept(self) -> list[list[str]]:
        if not self.keep_upto:
            return []
        try:
            with open(self.path, newline="", encoding=self.fmt.encoding, errors="surrogateescape") as f:
                rows = list(csv.reader(f, delimiter=self.fmt.delimiter))
        except (OSError, UnicodeError, csv.Error):
            return []
        if not rows or rows[0] != self.columns:
            return []
        at = self.columns.index("line")
        return [r for r in rows[1:] if len(r) == len(self.columns) and r[at].isdigit() and int(r[at]) <= self.keep_upto]

    def __enter__(self):
        from ..paths import create

        kept = self._kept()
        self.out = create(self.path, option="--rejects", force=self.overwrite,  # 0600: rows hold personal data
                          encoding=self.fmt.encoding, errors=KEEP_BYTES)
        from .csv import csv_writer

        self.writer = csv_writer(self.out, self.fmt.delimiter)
        self.writer.writerow(self.columns)
        self.writer.writerows(kept)
        return self

    def flush(self) -> None:
        self.out.flush()

    def __call__(self, row: dict) -> None:
        from ..render import safe_cell

        self.writer.writerow([safe_cell(row.get(c)) for c in self.columns])

    def __exit__(self, *exc):
        self.out.close()
