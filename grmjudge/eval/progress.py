"""The progress line of an eval run: items, calls, samples, failures by reason, rate and ETA, on stderr."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from grmjudge.eval.scaling import failure_name
from grmjudge.results import BatchResult


@dataclass
class PassCounts:
    """Counters of one pass (greedy or sampled), kept for the report as well as for the progress line."""

    items: int = 0
    calls: int = 0
    items_done: int = 0
    calls_done: int = 0
    resumed_calls: int = 0
    samples: int = 0
    failures: Counter[str] = field(default_factory=Counter[str])
    errors: Counter[str] = field(default_factory=Counter[str])
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, batch: BatchResult) -> None:
        """Count one judged call."""
        self.calls_done += 1
        if batch.error is not None:
            self.errors[batch.error.type] += 1
            return
        result = batch.result
        if result is None:
            return
        self.samples += len(result.samples)
        for sample in result.samples:
            if sample.error is not None:
                self.failures[failure_name(sample.error.kind, sample.error.reason)] += 1
        self.requests += result.usage.requests
        self.prompt_tokens += result.usage.prompt_tokens or 0
        self.completion_tokens += result.usage.completion_tokens or 0


class Progress:
    """Draws ``counts`` as one line: redrawn in place on a terminal, at most every ``every`` seconds otherwise."""

    def __init__(
        self,
        stream: TextIO | None,
        *,
        every: float = 5.0,
        tty: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._every = 0.2 if tty else every
        self._tty = tty
        self._clock = clock
        self._name = ""
        self._counts = PassCounts()
        self._started = clock()
        self._last = float("-inf")

    def start(self, name: str, counts: PassCounts) -> None:
        """Begin reporting a pass."""
        self._name, self._counts = name, counts
        self._started = self._clock()
        self._last = float("-inf")
        self.draw()

    def tick(self) -> None:
        """Redraw if the last line is older than the interval."""
        if self._clock() - self._last >= self._every:
            self.draw()

    def draw(self) -> None:
        """Draw the line now."""
        self._last = self._clock()
        if self._stream is None:
            return
        line = self.line()
        self._stream.write(f"\r{line}\x1b[K" if self._tty else f"{line}\n")
        self._stream.flush()

    def end(self) -> None:
        """Draw the final line of the pass and leave the cursor on a new line."""
        self.draw()
        if self._stream is not None and self._tty:
            self._stream.write("\n")
            self._stream.flush()

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
            parts.append("failed " + ", ".join(f"{name} {n:,}" for name, n in c.failures.most_common()))
        if c.errors:
            parts.append("errors " + ", ".join(f"{name} {n:,}" for name, n in c.errors.most_common()))
        elapsed = max(self._clock() - self._started, 1e-9)
        judged = c.calls_done - c.resumed_calls
        parts.append(f"{judged / elapsed:,.1f} calls/s")
        if judged > 0 and c.calls_done < c.calls:
            parts.append(f"ETA {duration((c.calls - c.calls_done) * elapsed / judged)}")
        return " | ".join(parts)


def duration(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``2h03m``."""
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
