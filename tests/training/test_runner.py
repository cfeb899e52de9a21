"""The training samplers' item loop: the core batch loop, the shared journal, and the shared progress line."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from grmjudge.exceptions import ConfigurationError
from grmjudge.journal import Journal
from grmjudge.training._runner import run_items
from grmjudge.training.data import SPCTExample

pytestmark = pytest.mark.anyio

EXAMPLES = [SPCTExample(id=f"item-{i}", query="q", responses=("a", "b"), best=0) for i in range(10)]


class Job:
    """Records each item after a pause, failing the ids it is told to, and measures how many run at once."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.failing = failing
        self.running = 0
        self.most = 0
        self.seen: list[str] = []

    async def __call__(self, example: SPCTExample) -> dict[str, Any] | None:
        self.running += 1
        self.most = max(self.most, self.running)
        await anyio.sleep(0.01)
        self.running -= 1
        self.seen.append(example.id)
        return None if example.id in self.failing else {"id": example.id, "n": example.n}


async def test_items_run_a_bounded_number_at_a_time_and_each_finished_one_is_recorded(tmp_path: Path) -> None:
    job, stream = Job(failing=frozenset({"item-3"})), io.StringIO()
    journal = Journal(tmp_path / "records.jsonl")
    run = await run_items(EXAMPLES, job, journal, concurrency=3, progress=stream, progress_every=0)

    assert job.most == 3 and sorted(job.seen) == sorted(e.id for e in EXAMPLES)
    assert (run.recorded, run.skipped_done, run.failed_ids, run.total) == (9, 0, ["item-3"], 10)
    assert sorted(r["id"] for r in journal.read()) == sorted(e.id for e in EXAMPLES if e.id != "item-3")
    last = stream.getvalue().splitlines()[-1]  # a pipe gets whole lines; the last one is drawn at the end
    assert last.startswith("items 10/10 | recorded 9 | backend failed 1 | ") and "items/s" in last


async def test_a_rerun_skips_what_is_recorded_and_retries_what_failed(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "records.jsonl")
    await run_items(EXAMPLES[:4], Job(failing=frozenset({"item-3"})), journal, concurrency=2)
    text = journal.path.read_text()
    journal.path.write_text(text + '{"id": "item-9", "n"')  # a kill mid-write: that item is not done

    again, stream = Job(), io.StringIO()
    run = await run_items(EXAMPLES, again, journal, concurrency=4, progress=stream, progress_every=0)

    assert sorted(again.seen) == sorted(f"item-{i}" for i in range(3, 10))
    assert run.skipped_done == 3 and run.recorded == 7 and run.repaired_partial_line
    ids = [json.loads(line)["id"] for line in journal.path.read_text().splitlines()]
    assert sorted(ids) == sorted(e.id for e in EXAMPLES)  # each once, every line whole
    assert "resumed 3" in stream.getvalue().splitlines()[-1]


async def test_a_run_shorter_than_the_interval_prints_nothing(tmp_path: Path) -> None:
    stream = io.StringIO()
    run = await run_items(EXAMPLES, Job(), Journal(tmp_path / "r.jsonl"), concurrency=5, progress=stream)
    assert run.recorded == 10 and stream.getvalue() == ""  # the default interval is 5 s


async def test_concurrency_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="concurrency must be at least 1"):
        await run_items(EXAMPLES, Job(), Journal(tmp_path / "r.jsonl"), concurrency=0)
