"""Run one pass of a judge over a benchmark's calls: bounded concurrency, a journal line per call, progress.

A [`Judge`][grmjudge.judge.Judge] runs through [`Judge.stream`][grmjudge.judge.Judge.stream]; a
[`ScalarJudge`][grmjudge.scalar.ScalarJudge] (same call shape, no ``stream``) through the same batch loop. Calls
that must keep their order (JudgeBench's two games) run in a second stream with shuffling off.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncGenerator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from grmjudge._batch import JudgeItem, stream_batch
from grmjudge._runtime import ReceiveStream
from grmjudge.eval.items import Call, LoadedBenchmark
from grmjudge.eval.journal import journal_record, record_of
from grmjudge.eval.progress import PassCounts, Progress
from grmjudge.eval.scaling import CallRecord
from grmjudge.journal import Journal
from grmjudge.judge import Judge
from grmjudge.results import BatchResult, ScoreResult
from grmjudge.scalar import ScalarJudge
from grmjudge.settings import JudgeSettings, ShuffleMode

AnyJudge = Judge | ScalarJudge


@dataclass(frozen=True)
class PassPlan:
    """One pass over every call: ``greedy`` (k=1, temperature 0) or ``sampled`` (the largest k)."""

    name: str
    k: int
    meta: bool
    settings: JudgeSettings | None
    fingerprint: str


@dataclass(frozen=True)
class RunOptions:
    """How calls are run and recorded."""

    concurrency: int = 16
    texts: bool = True


async def run_pass(
    judge: AnyJudge,
    benchmark: LoadedBenchmark,
    plan: PassPlan,
    done: dict[str, CallRecord],
    journal: Path,
    progress: Progress,
    options: RunOptions,
) -> PassCounts:
    """Judge every call not in ``done``, appending each result to ``journal`` and to ``done`` as it arrives."""
    item_of = {call.id: item.id for item in benchmark.items for call in item.calls}
    waiting = Counter(item_of[call.id] for call in benchmark.calls() if call.id not in done)
    counts = PassCounts(items=len(benchmark.items), calls=len(item_of))
    counts.resumed_calls = counts.calls_done = len(item_of) - sum(waiting.values())
    counts.items_done = len(benchmark.items) - len(waiting)
    progress.start(plan.name, counts)
    todo = [call for call in benchmark.calls() if call.id not in done]
    with Journal(journal, kind="grmjudge eval journal").writer() as out:
        for fixed in (False, True):
            group = [call for call in todo if call.fixed_order is fixed]
            if not group:
                continue
            async with _stream(judge, group, plan, fixed, options.concurrency) as results:
                async for batch in results:
                    item_id = item_of[batch.item_id]
                    out.append(journal_record(plan.name, plan.fingerprint, item_id, batch, texts=options.texts))
                    record = record_of(batch)
                    if record is not None:
                        done[batch.item_id] = record
                    counts.add_batch(batch)
                    waiting[item_id] -= 1
                    counts.items_done += waiting[item_id] == 0
                    progress.tick()
    progress.end()
    return counts


def _judge_items(calls: Iterable[Call]) -> Iterable[JudgeItem]:
    return (JudgeItem(query=call.query, responses=call.responses, id=call.id) for call in calls)


@asynccontextmanager
async def _stream(
    judge: AnyJudge, calls: list[Call], plan: PassPlan, fixed: bool, concurrency: int
) -> AsyncGenerator[ReceiveStream[BatchResult]]:
    items = _judge_items(calls)
    if isinstance(judge, Judge):
        settings = plan.settings or judge.settings
        if fixed:
            settings = settings.model_copy(update={"shuffle": ShuffleMode.NONE})
        async with judge.stream(items, plan.k, plan.meta, concurrency=concurrency, settings=settings) as results:
            yield results
        return

    async def score_item(item: JudgeItem, item_id: str) -> ScoreResult:
        return await judge.score(item.query, item.responses, plan.k, plan.meta, item_id=item_id)

    async with stream_batch(items, score_item, concurrency=concurrency) as results:
        yield results
