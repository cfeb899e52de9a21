"""Counters of a ``grmjudge score`` run, the progress line they make, and the closing summary."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

from grmjudge.cli.inputs import ScanCounts
from grmjudge.progress import SampleTally, counts, duration, rate, si
from grmjudge.results import ScoreResult
from grmjudge.score_lines import LineError


@dataclass
class RunStats(SampleTally):
    """Everything the progress line and the summary show, updated as lines are read and items settle."""

    scan: ScanCounts = field(default_factory=ScanCounts)
    started: float = field(default_factory=time.monotonic)
    total_lines: int | None = None
    settled: int = 0
    written: int = 0
    out_of_order: int = 0
    verdicts: int = 0
    no_verdicts: int = 0
    errors: Counter[str] = field(default_factory=Counter[str])
    labelled: int = 0
    label_agree: int = 0

    def add_result(self, result: ScoreResult, label: int | None) -> None:
        """Count a judged item's samples, failures, usage and label agreement."""
        self.add(result)
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

    def position(self) -> tuple[int, int | None]:
        """Lines settled and the input's total (what fills the bar)."""
        return self.lines_done(), self.total_lines

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
        parts.append("failed " + counts(stats.failures))
    if stats.errors:
        parts.append(f"errors {stats.errors.total():,}")
    parts.append(f"tokens {si(stats.prompt_tokens)} in, {si(stats.completion_tokens)} out")
    parts.append(f"{rate(stats.settled, stats.elapsed()):,.0f} items/s")
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
        + (f" ({counts(stats.errors)})" if stats.errors else ""),
        f"  samples   {stats.samples:,} ({stats.samples_valid:,} valid, {stats.samples_cached:,} from the cache)"
        + (f"; failed: {counts(stats.failures)}" if stats.failures else ""),
        f"  usage     {stats.requests:,} requests; {stats.prompt_tokens:,} prompt tokens, "
        f"{stats.completion_tokens:,} completion tokens",
        f"  speed     {rate(stats.settled, elapsed):,.1f} items/s, {rate(stats.samples, elapsed):,.1f} samples/s",
    ]
    if stats.labelled:
        lines.append(
            f"  labels    best == label on {stats.label_agree / stats.labelled:.3f} "
            f"of {stats.labelled:,} labelled items"
        )
    return "\n".join(lines)
