"""Run an async per-item job over many examples, a bounded number at a time, recording each finished item.

Items already in the record log are skipped (resume). An item whose job returns ``None`` (its backend
failed) is not recorded, so the next run retries it; its id is reported.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio

from grmjudge._tasks import task_group
from grmjudge.exceptions import ConfigurationError
from grmjudge.training._records import RecordLog
from grmjudge.training.data import SPCTExample

ItemJob = Callable[[SPCTExample], Awaitable[dict[str, Any] | None]]


@dataclass
class RunProgress:
    """What this run did: items recorded now, items skipped as already done, items whose backend failed."""

    recorded: int = 0
    skipped_done: int = 0
    failed_ids: list[str] = field(default_factory=list[str])
    repaired_partial_line: bool = False


async def run_items(examples: Iterable[SPCTExample], job: ItemJob, log: RecordLog, *, concurrency: int) -> RunProgress:
    """Run ``job`` on every example not yet in ``log``, ``concurrency`` at a time, appending each result."""
    if concurrency < 1:
        raise ConfigurationError(f"concurrency must be at least 1, got {concurrency}")
    progress = RunProgress()
    done = log.done_ids()
    progress.repaired_partial_line = log.repaired_partial_line
    slots = anyio.Semaphore(concurrency, fast_acquire=True)

    async def one(example: SPCTExample) -> None:
        try:
            record = await job(example)
        finally:
            slots.release()
        if record is None:
            progress.failed_ids.append(example.id)
            return
        log.append(record)
        progress.recorded += 1

    async with task_group() as tg:
        for example in examples:
            if example.id in done:
                progress.skipped_done += 1
                continue
            await slots.acquire()
            tg.start_soon(one, example)
    return progress
