"""The progress of an eval run: each pass's counters, and its line (items, calls, samples, failures, rate, ETA)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from grmjudge.progress import ProgressReporter, SampleTally, counts, duration, rate
from grmjudge.results import BatchResult


@dataclass
class PassCounts(SampleTally):
    """Counters of one pass (greedy or sampled), kept for the report as well as for the progress line."""

    items: int = 0
    calls: int = 0
    items_done: int = 0
    calls_done: int = 0
    resumed_calls: int = 0
    errors: Counter[str] = field(default_factory=Counter[str])

    def add_batch(self, batch: BatchResult) -> None:
        """Count one judged call."""
        self.calls_done += 1
        if batch.error is not None:
            self.errors[batch.error.type] += 1
        elif batch.result is not None:
            self.add(batch.result)


class Progress:
    """The line of the pass being run, drawn by a [`ProgressReporter`][grmjudge.progress.ProgressReporter]."""

    def __init__(
        self,
        stream: TextIO | None,
        *,
        every: float = 5.0,
        tty: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._name = ""
        self._counts = PassCounts()
        self._reporter = ProgressReporter(stream, self.line, position=self._position, every=every, tty=tty, clock=clock)

    def start(self, name: str, counts: PassCounts) -> None:
        """Begin reporting a pass."""
        self._name, self._counts = name, counts
        self._reporter.restart()
        self._reporter.draw()

    def tick(self) -> None:
        """Redraw if the last line is older than the interval."""
        self._reporter.tick()

    def end(self) -> None:
        """Draw the final line of the pass and leave the cursor on a new line."""
        self._reporter.draw()
        self._reporter.close()

    def line(self) -> str:
        """E.g. ``greedy: items 120/2,985 | samples 120 | failed parse:no_boxed 3 | 4.1 calls/s | ETA 12m05s``."""
        c = self._counts
        parts = [f"{self._name}: items {c.items_done:,}/{c.items:,}"]
        if c.calls != c.items:
            parts.append(f"calls {c.calls_done:,}/{c.calls:,}")
        if c.resumed_calls:
            parts.append(f"resumed {c.resumed_calls:,}")
        parts.append(f"samples {c.samples:,}")
        if c.failures:
            parts.append("failed " + counts(c.failures))
        if c.errors:
            parts.append("errors " + counts(c.errors))
        elapsed = max(self._reporter.elapsed(), 1e-9)
        judged = c.calls_done - c.resumed_calls
        parts.append(f"{rate(judged, elapsed):,.1f} calls/s")
        if judged > 0 and c.calls_done < c.calls:
            parts.append(f"ETA {duration((c.calls - c.calls_done) * elapsed / judged)}")
        return " | ".join(parts)

    def _position(self) -> tuple[int, int | None]:
        return self._counts.calls_done, self._counts.calls
