"""Append-only JSONL of per-item records, so a sampling run that stops can resume where it left off.

Each finished item is one line, flushed at once. On resume the ids already present are skipped. A run killed
mid-write leaves at most one unterminated last line: it is cut off (and counted) before appending, since
that item was never finished. A malformed line anywhere else is an error, not something to skip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from grmjudge.exceptions import ConfigurationError


class RecordLog:
    """The records file of one run directory: read what is done, append what gets done."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.repaired_partial_line = False
        self._handle: IO[str] | None = None

    def done_ids(self) -> set[str]:
        """Ids of the items already recorded (after cutting off an unfinished last line)."""
        self._repair()
        return {record["id"] for record in self.read()}

    def read(self) -> Iterator[dict[str, Any]]:
        """Every complete record, in file order."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.endswith("\n"):
                    return  # an unfinished write; _repair cuts it off before appending
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigurationError(
                        f"{self.path} line {number} is not valid JSON ({exc}); the file was edited or corrupted"
                    ) from exc
                if not isinstance(record, dict) or "id" not in record:
                    raise ConfigurationError(f"{self.path} line {number} is not a record with an 'id'")
                yield record  # pyright: ignore[reportUnknownMisuse]

    def append(self, record: dict[str, Any]) -> None:
        """Write one record as a line and flush it, so a crash loses at most the item in progress."""
        if self._handle is None:
            self._repair()
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("a", encoding="utf-8")
        self._handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Close the file (appending reopens it)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _repair(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with self.path.open("r+b") as handle:
                handle.truncate(cut)
            self.repaired_partial_line = True


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows as JSONL (replacing the file); returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count
