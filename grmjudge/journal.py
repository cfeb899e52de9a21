"""Append-only JSONL journals that a stopped run resumes from: ``grmjudge score``, ``grmjudge eval``, training samplers.

Each finished item is one complete line, written with one ``write()`` and flushed, so a killed run leaves at most
one partial last line. On resume that line is cut (its item was never finished) and every other line must parse:
a malformed line elsewhere means the file was edited, which is an error, not something to skip. Lines carry the
settings that made them (provenance); a line made under other settings makes the run refuse rather than mix two
experiments in one file ([`ProvenanceMismatch`][grmjudge.journal.ProvenanceMismatch] names what differs).
"""

from __future__ import annotations

import json
import os
from array import array
from collections.abc import Callable, Container, Iterator, Mapping
from hashlib import blake2b
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self, cast

from grmjudge.exceptions import ConfigurationError

_CHUNK = 1 << 16
_INITIAL_CAPACITY = 1 << 12
_MAX_LOAD = 0.6
_LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


class JournalError(ConfigurationError):
    """A journal cannot be resumed from: a line was edited or damaged, or it is not this kind of journal."""


class ProvenanceMismatch(JournalError):
    """A line was written under other settings than this run's; ``key``, ``found`` and ``wanted`` say which."""

    def __init__(self, path: Path, line: int, key: str, found: object, wanted: object, advice: str) -> None:
        super().__init__(
            f"{path} was written with {key}={found!r} (line {line}) but this run has {key}={wanted!r}: "
            f"line {line} holds results of another configuration; {advice}"
        )
        self.path, self.line, self.key, self.found, self.wanted = path, line, key, found, wanted


class FileProblem(Exception):
    """A file of a run failed while it ran (a full disk, an I/O error); the message names the file."""


def dumps(record: Mapping[str, Any]) -> str:
    """One JSON line: compact, UTF-8 kept as is, and no character that any reader takes for a line break.

    JSON escapes control characters itself; NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR are legal raw in JSON,
    but Python's ``str.splitlines`` (and other readers) split on them, so they are escaped too.
    """
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKS) if "\u2028" in text or "\u2029" in text or "\x85" in text else text


class JournalWriter:
    r"""Appends complete lines to an open binary file, one unbuffered ``write()`` each: a kill cuts at most the last.

    A lone surrogate, which UTF-8 cannot encode, is written as its JSON escape (``\ud800``): a JSON line holds
    characters beyond ASCII only inside its strings, where that escape reads back as the same character.
    ``redact`` sees every line before it is written. A failing write raises
    [`FileProblem`][grmjudge.journal.FileProblem] naming the file.
    """

    def __init__(self, file: BinaryIO, *, name: str = "journal", redact: Callable[[str], str] | None = None) -> None:
        self.file = file
        self.name = name
        self.lines = 0
        self._redact = redact

    def write(self, text: str) -> None:
        """Write ``text`` and a newline; ``text`` must hold no newline of its own (``dumps`` never does)."""
        line = self._redact(text) if self._redact is not None else text
        data = memoryview((line + "\n").encode("utf-8", "backslashreplace"))
        try:
            while data:
                written = self.file.write(data)
                data = data[written or 0 :]
            self.file.flush()
        except OSError as exc:
            raise FileProblem(f"cannot write to the {self.name} {self.file.name}: {exc.strerror or exc}") from exc
        self.lines += 1

    def append(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one JSON line."""
        self.write(dumps(record))

    def close(self) -> None:
        """Close the file."""
        self.file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


class Journal:
    """The journal at ``path``: its complete records, its partial last line, and a writer that appends to it."""

    def __init__(self, path: str | os.PathLike[str], *, kind: str = "journal") -> None:
        self.path = Path(path)
        self.kind = kind
        self.partial_bytes = 0
        """Bytes of the partial last line seen by the last [`records`][grmjudge.journal.Journal.records] pass."""

    def records(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(line number, record)`` for each complete line, blank lines skipped; a partial last line is only measured.

        A line that is not a JSON object raises [`JournalError`][grmjudge.journal.JournalError] naming it.
        """
        for number, record in self.lines():
            yield number, cast(dict[str, Any], record)

    def lines(self, only: Container[int] | None = None) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """[`records`][grmjudge.journal.Journal.records], streamed, parsing only the records at ``only``.

        ``only`` holds positions among the complete non-blank lines (0 for the first record); the others come
        as ``(line number, None)`` without being parsed, so a reader can pick a few records out of a large file.
        """
        self.partial_bytes = 0
        if not self.path.exists():
            return
        with self.path.open("rb") as file:
            order = -1
            for number, raw in enumerate(file, start=1):
                if not raw.endswith(b"\n"):
                    self.partial_bytes = len(raw)
                    return
                if raw.strip():
                    order += 1
                    yield number, self._parse(number, raw) if only is None or order in only else None

    def read(self) -> Iterator[dict[str, Any]]:
        """Every complete record, in file order."""
        return (record for _, record in self.records())

    def done_ids(self, key: str = "id") -> IdIndex:
        """The ``key`` of every complete record (each must be a string), with the line it is on."""
        done = IdIndex()
        for number, record in self.records():
            value = record.get(key)
            if not isinstance(value, str):
                raise JournalError(f"line {number} of {self.path} has no string {key!r}; it is not a {self.kind}")
            done.add(value, number)
        return done

    def cut_partial_line(self) -> int:
        """Cut the file after its last newline (what a killed writer left half-written); bytes dropped."""
        if not self.path.exists():
            return 0
        return truncate_partial_line(self.path)

    def writer(self) -> JournalWriter:
        """A writer appending to the file (created, with its folder, if missing), after cutting a partial line."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.cut_partial_line()
        return JournalWriter(self.path.open("ab", buffering=0), name=self.kind)

    def _parse(self, number: int, raw: bytes) -> dict[str, Any]:
        try:
            record: object = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise JournalError(
                f"line {number} of {self.path} is not valid JSON (column {exc.colno}: {exc.msg}); "
                "the file was edited or damaged"
            ) from None
        except ValueError:  # bytes that are not UTF-8
            raise JournalError(
                f"line {number} of {self.path} is not UTF-8 text; the file was edited or damaged"
            ) from None
        if not isinstance(record, dict):
            raise JournalError(f"line {number} of {self.path} is not a JSON object; it is not a {self.kind}")
        return record  # pyright: ignore[reportUnknownVariableType]


def check_provenance(
    path: Path, line: int, found: Mapping[str, object], expected: Mapping[str, object], *, advice: str
) -> None:
    """Raise [`ProvenanceMismatch`][grmjudge.journal.ProvenanceMismatch] on the first key whose value differs."""
    for key, wanted in expected.items():
        if found.get(key) != wanted:
            raise ProvenanceMismatch(path, line, key, found.get(key), wanted, advice)


def truncate_partial_line(path: Path) -> int:
    """Cut ``path`` after its last newline (a killed writer leaves at most one partial line); bytes dropped."""
    with path.open("r+b") as file:
        size = file.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - _CHUNK)
            file.seek(start)
            newline = file.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        file.truncate(keep)
    return size - keep


class IdIndex:
    """A set of ids, each with the line it was first seen on: the done ids of a journal, in little memory.

    A ``set`` of id strings costs about 130 bytes per item; this index keeps a 128-bit BLAKE2b fingerprint and
    a line number per id in flat arrays (open addressing, about 45 bytes per item), so a resume over millions
    of lines stays close to flat in memory. Two ids share a fingerprint with probability about n² / 2¹²⁹.
    """

    def __init__(self) -> None:
        self._size = 0
        self._allocate(_INITIAL_CAPACITY)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, item_id: str) -> bool:
        return self.line_of(item_id) is not None

    def line_of(self, item_id: str) -> int | None:
        """The line ``item_id`` was added with, or None if it was never added."""
        hi, lo = _fingerprint(item_id)
        slot = self._find(hi, lo)
        return self._lines[slot] if self._high[slot] else None

    def add(self, item_id: str, line: int) -> None:
        """Remember ``item_id`` as seen on ``line`` (a second add of the same id keeps the first line)."""
        hi, lo = _fingerprint(item_id)
        slot = self._find(hi, lo)
        if self._high[slot]:
            return
        self._high[slot], self._low[slot], self._lines[slot] = hi, lo, line
        self._size += 1
        if self._size > _MAX_LOAD * len(self._high):
            self._grow()

    def _find(self, hi: int, lo: int) -> int:
        """The slot holding this fingerprint, or the empty slot where it would go (linear probing)."""
        mask = len(self._high) - 1
        slot = lo & mask
        high, low = self._high, self._low
        while high[slot] and (high[slot] != hi or low[slot] != lo):
            slot = (slot + 1) & mask
        return slot

    def _allocate(self, capacity: int) -> None:
        self._high = array("Q", bytes(8 * capacity))  # 0 marks an empty slot; fingerprints have it odd
        self._low = array("Q", bytes(8 * capacity))
        self._lines = array("I", bytes(4 * capacity))  # line numbers up to 4,294,967,295

    def _grow(self) -> None:
        high, low, lines = self._high, self._low, self._lines
        self._allocate(2 * len(high))
        for old in range(len(high)):
            if high[old]:
                slot = self._find(high[old], low[old])
                self._high[slot], self._low[slot], self._lines[slot] = high[old], low[old], lines[old]


def _fingerprint(item_id: str) -> tuple[int, int]:
    digest = blake2b(item_id.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    return int.from_bytes(digest[:8], "little") | 1, int.from_bytes(digest[8:], "little")
