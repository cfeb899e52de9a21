"""The judging loop of ``grmjudge score``: valid lines stream through ``Judge.stream`` into the output.

With ``--order input`` finished items wait in a reorder buffer until every earlier item is written. A slow
item would let that buffer grow without end, so reading stops while it holds more than ``REORDER_FACTOR`` x
concurrency items: the current ``Judge.stream`` runs out of input and drains (the slow item included), the
buffer empties, and a new stream picks up the input where the last one stopped. At most
``(REORDER_FACTOR + 2) x concurrency`` items are read past a slow one: the buffer's limit, the stream's own
buffer of finished items, the others in flight and one read ahead.

However the loop ends (Ctrl-C, an abort, a failing file), every finished item is still written before it
returns: those received, those the stream has finished but not yet handed over, and those waiting in the
reorder buffer. The last are written in input order but after the gap left by the items still in flight, and
counted in ``RunStats.out_of_order``; ``--resume`` skips them by id and judges only the gap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import suppress
from dataclasses import dataclass

import anyio

from grmjudge._runtime import ReceiveStream
from grmjudge.cli.inputs import InputScanner, LineItem
from grmjudge.cli.options import Order
from grmjudge.cli.progress import RunStats
from grmjudge.journal import JournalWriter, dumps
from grmjudge.judge import Judge, JudgeItem
from grmjudge.results import BatchResult, ScoreResult
from grmjudge.score_lines import LineError, backend_failed, output_record

REORDER_FACTOR = 8
"""``--order input`` keeps at most this many x concurrency finished items in memory, waiting for a slow one."""


class FatalRunError(Exception):
    """The run cannot usefully go on: the credentials were refused, or the backend fails item after item."""


@dataclass(frozen=True)
class RunPlan:
    """How to judge: the judge and the per-call knobs of ``grmjudge score``."""

    judge: Judge
    k: int
    meta: bool
    adaptive: bool
    concurrency: int
    order: Order
    texts: bool
    max_consecutive_failures: int


@dataclass(frozen=True)
class _Ready:
    line: str
    result: ScoreResult


class ReorderBuffer:
    """Holds items finished out of turn; hands back, in sequence, those now next in line."""

    def __init__(self) -> None:
        self._next = 0
        self._waiting: dict[int, _Ready | None] = {}

    @property
    def waiting(self) -> int:
        """How many finished items wait for an earlier one."""
        return len(self._waiting)

    def complete(self, seq: int, ready: _Ready | None) -> list[_Ready]:
        """Record item ``seq`` (``None``: it has no output line) and return the lines now writable, in order."""
        self._waiting[seq] = ready
        writable: list[_Ready] = []
        while self._next in self._waiting:
            entry = self._waiting.pop(self._next)
            self._next += 1
            if entry is not None:
                writable.append(entry)
        return writable

    def drain(self) -> list[_Ready]:
        """Every finished item still waiting, in input order, gaps skipped (the buffer is then empty)."""
        waiting = [self._waiting[seq] for seq in sorted(self._waiting)]
        self._waiting.clear()
        return [entry for entry in waiting if entry is not None]


class _Segment(Iterator[JudgeItem]):
    """The items one ``Judge.stream`` reads: the scanner's, until ``stop()`` says to pause reading or ``close()``."""

    def __init__(self, scanner: InputScanner, stop: Callable[[], bool]) -> None:
        self._scanner = scanner
        self._stop = stop
        self._closed = False
        self._entries: dict[int, LineItem] = {}
        self._count = 0

    def close(self) -> None:
        """Read no more items: the run is stopping (the items left stay in the scanner, for a resume)."""
        self._closed = True

    def __next__(self) -> JudgeItem:
        if self._closed or self._stop():
            raise StopIteration
        entry = next(self._scanner)
        self._entries[self._count] = entry
        self._count += 1
        return entry.item

    def take(self, index: int) -> LineItem:
        """The line of the stream's item ``index`` (forgotten once taken)."""
        return self._entries.pop(index)


class _Settler:
    """Decides where each finished item goes: the output, or the errors file (from which ``--resume`` retries)."""

    def __init__(self, plan: RunPlan, stats: RunStats, report: Callable[[LineError], None]) -> None:
        self._plan = plan
        self._stats = stats
        self._report = report
        self._failures_in_a_row = 0

    def settle(self, batch: BatchResult, entry: LineItem) -> _Ready | None:
        self._stats.settled += 1
        if batch.error is not None:
            message = f"{batch.error.type}: {batch.error.message}"
            self._report(
                LineError(entry.line, "item_failed", message, id=entry.id, details=(batch.error.model_dump(),))
            )
            return None
        result = batch.result
        assert result is not None  # a BatchResult holds a result or an error
        self._stats.add_result(result, entry.label)
        failed = [s.error for s in result.samples if s.error is not None and s.error.kind == "backend"]
        refused = [e for e in failed if e.reason == "AuthenticationError"]
        if refused:
            self._report(backend_failed(entry.line, entry.id, failed))
            raise FatalRunError(f"the backend refused the credentials: {refused[0].message}")
        if result.no_verdict is not None and failed:
            self._report(backend_failed(entry.line, entry.id, failed))
            self._count_failure()
            return None
        self._failures_in_a_row = 0
        return _Ready(dumps(output_record(result, entry.id, entry.label, texts=self._plan.texts)), result)

    def _count_failure(self) -> None:
        self._failures_in_a_row += 1
        limit = self._plan.max_consecutive_failures
        if limit and self._failures_in_a_row >= limit:
            raise FatalRunError(
                f"{self._failures_in_a_row} items in a row failed at the backend (see the errors file); "
                "stopping instead of failing every item (--max-consecutive-failures)"
            )


class _Sink:
    """Takes each finished item to the output (or the errors file): at once, or when its turn in input order comes."""

    def __init__(
        self, plan: RunPlan, output: JournalWriter, stats: RunStats, report: Callable[[LineError], None]
    ) -> None:
        self._plan = plan
        self._output = output
        self._stats = stats
        self._settler = _Settler(plan, stats, report)
        self.buffer = ReorderBuffer()

    def take(self, batch: BatchResult, entry: LineItem) -> None:
        """Settle a finished item and write every line now due."""
        ready = self._settler.settle(batch, entry)
        if self._plan.order == "completion":
            if ready is not None:
                self._write(ready)
            return
        for writable in self.buffer.complete(entry.seq, ready):
            self._write(writable)

    def take_finished(self, results: ReceiveStream[BatchResult], segment: _Segment) -> None:
        """Take the items the stream has finished but not handed over yet (the loop was stopped early).

        The segment is closed first: a worker whose result is taken here would otherwise read and start the next
        item, and a fast backend could keep this loop going to the end of the input.
        """
        segment.close()
        while True:
            try:
                batch = results.receive_nowait()
            except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                return
            with suppress(FatalRunError):  # the run is stopping already; the item is in the errors file
                self.take(batch, segment.take(batch.index))

    def flush(self) -> None:
        """Write the items waiting for one still in flight: out of input order, but not lost."""
        for ready in self.buffer.drain():
            self._write(ready)
            self._stats.out_of_order += 1

    def _write(self, ready: _Ready) -> None:
        self._output.write(ready.line)
        self._stats.add_output(ready.result)


async def judge_lines(
    plan: RunPlan, scanner: InputScanner, output: JournalWriter, stats: RunStats, report: Callable[[LineError], None]
) -> None:
    """Judge every item the scanner yields and write each output line whole, in the order the plan asks.

    However it ends (interrupted, aborted), every item finished by then is written before it returns or raises.
    """
    sink = _Sink(plan, output, stats, report)
    limit = REORDER_FACTOR * plan.concurrency

    def reorder_full() -> bool:
        return plan.order == "input" and sink.buffer.waiting > limit

    try:
        while not scanner.exhausted:
            segment = _Segment(scanner, reorder_full)
            stream = plan.judge.stream(segment, plan.k, plan.meta, adaptive=plan.adaptive, concurrency=plan.concurrency)
            async with stream as results:
                try:
                    async for batch in results:
                        sink.take(batch, segment.take(batch.index))
                finally:
                    sink.take_finished(results, segment)
    finally:
        sink.flush()
