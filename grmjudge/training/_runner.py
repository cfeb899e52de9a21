"""Run an async per-item job over many examples, a bounded number at a time, recording each finished item.

The records file is a [`Journal`][grmjudge.journal.Journal]: items already in it are skipped (resume), and a
partial last line left by a killed run is cut, its item redone. An item whose job returns ``None`` (its backend
failed) is not recorded, so the next run retries it; its id is reported. Items run through the core batch loop
([`stream_each`][grmjudge._batch.stream_each]). The progress line goes to ``progress`` (e.g. stderr) every
``progress_every`` seconds, the first once that much time has passed, so a short run stays silent.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Iterator, Sized
from dataclasses import dataclass, field
from typing import Any, TextIO

from grmjudge._batch import stream_each
from grmjudge.exceptions import ConfigurationError
from grmjudge.journal import Journal
from grmjudge.progress import ProgressReporter, duration, rate
from grmjudge.training.data import SPCTExample

ItemJob = Callable[[SPCTExample], Awaitable[dict[str, Any] | None]]


@dataclass
class RunProgress:
    """What this run did: items recorded now, items skipped as already done, items whose backend failed."""

    recorded: int = 0
    skipped_done: int = 0
    failed_ids: list[str] = field(default_factory=list[str])
    repaired_partial_line: bool = False
    total: int | None = None
    """How many examples the run was given, when that is known up front."""

    def settled(self) -> int:
        """Examples whose fate is known: recorded, skipped or failed."""
        return self.recorded + self.skipped_done + len(self.failed_ids)


async def run_items(
    examples: Iterable[SPCTExample],
    job: ItemJob,
    journal: Journal,
    *,
    concurrency: int,
    progress: TextIO | None = None,
    progress_every: float = 5.0,
) -> RunProgress:
    """Run ``job`` on every example not yet in ``journal``, ``concurrency`` at a time, appending each result."""
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
    run = RunProgress(total=len(examples) if isinstance(examples, Sized) else None)
    done = journal.done_ids()
    run.repaired_partial_line = journal.partial_bytes > 0
    reporter = ProgressReporter(
        progress,
        lambda: progress_line(run, reporter.elapsed()),
        position=lambda: (run.settled(), run.total),
        every=progress_every,
        patient=True,
    )

    def pending() -> Iterator[SPCTExample]:
        for example in examples:
            if example.id in done:
                run.skipped_done += 1
            else:
                yield example

    async def work(_: int, example: SPCTExample) -> tuple[str, dict[str, Any] | None]:
        return example.id, await job(example)

    with journal.writer() as out:
        async with stream_each(pending(), work, concurrency=concurrency) as results:
            async for example_id, record in results:
                if record is None:
                    run.failed_ids.append(example_id)
                else:
                    out.append(record)
                    run.recorded += 1
                reporter.tick()
    if reporter.drawn:  # a run too short for one line prints none
        reporter.draw()
    reporter.close()
    return run


def progress_line(run: RunProgress, elapsed: float) -> str:
    """E.g. ``items 120/2,000 | recorded 100 | resumed 20 | backend failed 3 | 4.1 items/s | ETA 7m38s``."""
    total = f"/{run.total:,}" if run.total is not None else ""
    parts = [f"items {run.settled():,}{total}", f"recorded {run.recorded:,}"]
    if run.skipped_done:
        parts.append(f"resumed {run.skipped_done:,}")
    if run.failed_ids:
        parts.append(f"backend failed {len(run.failed_ids):,}")
    worked = run.recorded + len(run.failed_ids)
    parts.append(f"{rate(worked, elapsed):,.1f} items/s")
    if run.total is not None and worked > 0:
        parts.append(f"ETA {duration(max(0, run.total - run.settled()) * elapsed / worked)}")
    return " | ".join(parts)
