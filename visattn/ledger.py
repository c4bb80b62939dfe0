"""The record of a folder run that makes it resumable: one CSV row per image done,
appended as images finish, so a restarted run skips them and appends the rest. The last
column holds an error; images that failed are tried again by the next run."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Sequence


class Ledger:
    """`path`: a CSV whose first column is the image's path relative to the run's root."""

    def __init__(self, path: Path, header: Sequence[str]):
        self.path, self.header = Path(path), list(header)
        self.rows: list[list[str]] = self._read()

    def _read(self) -> list[list[str]]:
        if not self.path.is_file():
            return []
        with self.path.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        if not rows or rows[0] != self.header:
            raise ValueError(f"{self.path} was written by another kind of run (its columns "
                             f"differ); choose another --out folder")
        return [r for r in rows[1:] if len(r) == len(self.header)]  # a torn last line: redone

    def done(self) -> set[str]:
        """Images finished; a row whose last column (the error) is filled is retried."""
        return {r[0] for r in self.rows if not r[-1]}

    def failed(self) -> set[str]:
        """Images whose last try failed."""
        return {r[0] for r in self.rows if r[-1]} - self.done()

    def keep_first(self, n: int) -> None:
        """Forget every row after the first `n` (work not covered by a checkpoint)."""
        self.rows = self.rows[:n]
        self._write(self.rows)

    def reorder(self, key) -> None:
        """Sort the rows by `key(row)` (stable: an image's tries keep their order) and write
        them out: a run's ledger in file order, however many processes wrote it."""
        self.rows = sorted(self.rows, key=key)
        self._write(self.rows)

    def append(self, rows: Sequence[Sequence]) -> None:
        """Add rows and write them out at once (flushed: a crash loses at most a batch)."""
        rows = [[str(v) for v in r] for r in rows]
        if not self.path.is_file():
            self._write([])
        with self.path.open("a", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)
        self.rows += rows

    def _write(self, rows: list[list[str]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([self.header, *rows])
