"""The input file of ``grmjudge score``, read lazily: one validated item per good line, one typed error per bad one.

The line schema and its checks are in [`grmjudge.score_lines`][grmjudge.score_lines]; this module reads lines,
skips those already done and reports duplicates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from grmjudge.journal import FileProblem, IdIndex
from grmjudge.judge import JudgeItem
from grmjudge.score_lines import LineError, decode_object, item_id_of, validate_record

_SKIP_CHUNK = 1 << 20


@dataclass(frozen=True)
class LineItem:
    """A valid line: its judge item (whose id is set), its label and its position among the valid lines."""

    line: int
    seq: int
    item: JudgeItem
    label: int | None

    @property
    def id(self) -> str:
        """The item's id (given, or the line number)."""
        return self.item.id or str(self.line)


def read_lines(stream: BinaryIO, *, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, bytes)`` for each line, counting from 1; ``None`` for a line over ``max_line_bytes``.

    An over-long line is skipped in chunks without being held in memory, so one huge line cannot exhaust it.
    A failing read (an I/O error) raises [`FileProblem`][grmjudge.journal.FileProblem] naming the stream.
    """
    number = 0
    try:
        while True:
            raw = stream.readline(max_line_bytes + 1)
            if not raw:
                return
            number += 1
            if len(raw) > max_line_bytes and not raw.endswith(b"\n"):
                _skip_rest_of_line(stream)
                yield number, None
            else:
                yield number, raw
    except OSError as exc:
        raise FileProblem(f"cannot read the input {stream.name} (line {number + 1}): {exc.strerror or exc}") from exc


def _skip_rest_of_line(stream: BinaryIO) -> None:
    while True:
        chunk = stream.readline(_SKIP_CHUNK)
        if not chunk or chunk.endswith(b"\n"):
            return


def count_lines(stream: BinaryIO) -> int:
    """How many lines ``stream`` holds (a last line without a newline counts)."""
    count, last = 0, b"\n"
    while chunk := stream.read(_SKIP_CHUNK):
        count += chunk.count(b"\n")
        last = chunk[-1:]
    return count + (last != b"\n")


@dataclass
class ScanCounts:
    """What the scanner has seen so far (read by the progress line)."""

    lines: int = 0
    blank: int = 0
    skipped: int = 0
    valid: int = 0
    invalid: int = 0


@dataclass
class InputScanner:
    """Turns numbered raw lines into valid, not-yet-done items; reports every bad line to ``on_error``.

    ``done`` holds the ids already in the output (``--resume``): those lines are skipped unjudged. An id seen
    on an earlier valid line makes a later line a ``duplicate_id`` error. Only id fingerprints are remembered
    ([`IdIndex`][grmjudge.journal.IdIndex]), so memory grows by about 45 bytes per item, not by the items.
    """

    lines: Iterator[tuple[int, bytes | None]]
    on_error: Callable[[LineError], None]
    max_chars: int
    max_line_bytes: int
    done: IdIndex = field(default_factory=IdIndex)
    counts: ScanCounts = field(default_factory=ScanCounts)
    exhausted: bool = False
    _seen: IdIndex = field(default_factory=IdIndex)

    def __iter__(self) -> Iterator[LineItem]:
        return self

    def __next__(self) -> LineItem:
        for number, raw in self.lines:
            self.counts.lines = number
            outcome = self._classify(number, raw)
            if isinstance(outcome, LineItem):
                self.counts.valid += 1
                return outcome
            if isinstance(outcome, LineError):
                self.counts.invalid += 1
                self.on_error(outcome)
        self.exhausted = True
        raise StopIteration

    def _classify(self, number: int, raw: bytes | None) -> LineItem | LineError | None:
        if raw is None:
            message = f"the line is over {self.max_line_bytes:,} bytes (16 x --max-input-chars); it was not read"
            return LineError(number, "input_too_long", message)
        value = decode_object(number, raw)
        if value is None:
            self.counts.blank += 1
            return None
        if isinstance(value, LineError):
            return value
        item_id = item_id_of(number, value)
        if item_id in self.done and item_id not in self._seen:
            self._seen.add(item_id, number)
            self.counts.skipped += 1
            return None
        checked = validate_record(number, value, max_chars=self.max_chars)
        if isinstance(checked, LineError):
            return checked
        first = self._seen.line_of(item_id)
        if first is not None:
            return LineError(number, "duplicate_id", f"id {item_id!r} was already used on line {first}", id=item_id)
        self._seen.add(item_id, number)
        record, item = checked
        return LineItem(line=number, seq=self.counts.valid, item=item, label=record.label)


def max_line_bytes(max_chars: int) -> int:
    """The raw-line guard for a text limit: JSON escapes take at most 12 bytes per character, plus structure."""
    return 16 * max_chars + 65_536
