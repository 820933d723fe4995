"""The rejects file: every rejected row with its original columns plus `line` and `error`,
so it can be corrected and imported as is."""

from __future__ import annotations

import csv

from ..errors import InputError


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
        from ..paths import create

        kept = self._kept()
        self.out = create(self.path, option="--rejects", force=self.overwrite)  # 0600: rows hold personal data
        from .csv import csv_writer

        self.writer = csv_writer(self.out)
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
