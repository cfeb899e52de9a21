"""Counters of a ``grmjudge score`` run, the progress line drawn on stderr, and the closing summary."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

import anyio

from grmjudge.cli.inputs import LineError, ScanCounts
from grmjudge.cli.outputs import Redactor
from grmjudge.results import ScoreResult

TTY_REDRAW_SECONDS = 0.2


@dataclass
class RunStats:
    """Everything the progress line and the summary show, updated as lines are read and items settle."""

    scan: ScanCounts
    started: float = field(default_factory=time.monotonic)
    total_lines: int | None = None
    settled: int = 0
    written: int = 0
    out_of_order: int = 0
    verdicts: int = 0
    no_verdicts: int = 0
    errors: Counter[str] = field(default_factory=Counter[str])
    samples: int = 0
    samples_valid: int = 0
    samples_cached: int = 0
    failures: Counter[str] = field(default_factory=Counter[str])
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    labelled: int = 0
    label_agree: int = 0

    def add_result(self, result: ScoreResult, label: int | None) -> None:
        """Count a judged item's samples, failures, usage and label agreement."""
        self.samples += len(result.samples)
        for sample in result.samples:
            self.samples_valid += sample.valid
            self.samples_cached += sample.cached
            if sample.error is not None:
                self.failures[_failure_name(sample.error.kind, sample.error.reason)] += 1
        self.requests += result.usage.requests
        self.prompt_tokens += result.usage.prompt_tokens or 0
        self.completion_tokens += result.usage.completion_tokens or 0
        if label is not None and result.best is not None:
            self.labelled += 1
            self.label_agree += result.best == label

    def add_output(self, result: ScoreResult) -> None:
        """Count an item written to the output."""
        self.written += 1
        self.verdicts += result.ok
        self.no_verdicts += not result.ok

    def add_error(self, error: LineError) -> None:
        """Count a line written to the errors file."""
        self.errors[error.type] += 1

    def lines_done(self) -> int:
        """Input lines whose fate is settled: blank, invalid, already done, or judged."""
        return self.scan.blank + self.scan.invalid + self.scan.skipped + self.settled

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    def eta(self) -> float | None:
        """Seconds left at the current pace, if the total is known and some work was done."""
        worked = self.lines_done() - self.scan.skipped
        if self.total_lines is None or worked <= 0:
            return None
        return max(0.0, self.total_lines - self.lines_done()) * self.elapsed() / worked


def progress_line(stats: RunStats) -> str:
    """One line: lines done/total, samples, failures by type, errors, tokens, rate and ETA."""
    total = f"/{stats.total_lines:,}" if stats.total_lines is not None else ""
    parts = [f"lines {stats.lines_done():,}{total}", f"out {stats.written:,}"]
    if stats.scan.skipped:
        parts[-1] += f" (+{stats.scan.skipped:,} resumed)"
    parts.append(f"samples {stats.samples:,} (cached {stats.samples_cached:,})")
    if stats.failures:
        parts.append("failed " + _counts(stats.failures))
    if stats.errors:
        parts.append(f"errors {stats.errors.total():,}")
    parts.append(f"tokens {_si(stats.prompt_tokens)} in, {_si(stats.completion_tokens)} out")
    parts.append(f"{stats.settled / max(stats.elapsed(), 1e-9):,.0f} items/s")
    eta = stats.eta()
    if eta is not None:
        parts.append(f"ETA {duration(eta)}")
    return " | ".join(parts)


def summary(stats: RunStats, *, outcome: str, output: str, errors: str) -> str:
    """The closing block printed on stderr."""
    elapsed = stats.elapsed()
    scan = stats.scan
    lines = [
        f"grmjudge score: {outcome} after {duration(elapsed)}",
        f"  input     {scan.lines:,} lines read: {stats.settled:,} judged, {scan.skipped:,} already in the output, "
        f"{scan.invalid:,} invalid, {scan.blank:,} blank",
        f"  output    {stats.written:,} lines written to {output} "
        f"({stats.verdicts:,} with a verdict, {stats.no_verdicts:,} without)",
        f"  errors    {stats.errors.total():,} lines in {errors}"
        + (f" ({_counts(stats.errors)})" if stats.errors else ""),
        f"  samples   {stats.samples:,} ({stats.samples_valid:,} valid, {stats.samples_cached:,} from the cache)"
        + (f"; failed: {_counts(stats.failures)}" if stats.failures else ""),
        f"  usage     {stats.requests:,} requests; {stats.prompt_tokens:,} prompt tokens, "
        f"{stats.completion_tokens:,} completion tokens",
        f"  speed     {stats.settled / max(elapsed, 1e-9):,.1f} items/s, "
        f"{stats.samples / max(elapsed, 1e-9):,.1f} samples/s",
    ]
    if stats.labelled:
        lines.append(
            f"  labels    best == label on {stats.label_agree / stats.labelled:.3f} "
            f"of {stats.labelled:,} labelled items"
        )
    return "\n".join(lines)


class ProgressReporter:
    """Draws the progress line on a stream: redrawn in place on a terminal, one line every ``every`` s otherwise."""

    def __init__(self, stats: RunStats, stream: TextIO, *, tty: bool, every: float, redact: Redactor) -> None:
        self.stats = stats
        self._stream = stream
        self._tty = tty
        self._interval = TTY_REDRAW_SECONDS if tty else every
        self._redact = redact
        self._drawn = False

    async def run(self) -> None:
        """Redraw until cancelled."""
        while True:
            await anyio.sleep(self._interval)
            self.draw()

    def draw(self) -> None:
        """Draw the line once."""
        line = self._redact(progress_line(self.stats))
        if self._tty:
            self._stream.write(f"\r{line}\x1b[K")
        else:
            self._stream.write(f"[{duration(self.stats.elapsed())}] {line}\n")
        self._stream.flush()
        self._drawn = True

    def end(self) -> None:
        """Leave the cursor on a fresh line after the last redraw."""
        if self._tty and self._drawn:
            self._stream.write("\n")
            self._stream.flush()


def duration(seconds: float) -> str:
    """``42s``, ``3m05s`` or ``2h03m``."""
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _failure_name(kind: str, reason: str) -> str:
    return f"parse:{reason}" if kind == "parse" else reason


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{name} {count:,}" for name, count in counter.most_common())


def _si(value: int) -> str:
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= threshold:
            return f"{value / threshold:.1f}{suffix}"
    return str(value)
