"""``RayJudge``: a [`Judge`][grmjudge.judge.Judge] whose batches run on Ray Data actors.

What streams items through a judge (``grmjudge eval``'s passes, any code that calls ``stream``) can take a
``RayJudge``: the items of a batch become a Ray Dataset, [`judge_dataset`][grmjudge.integrations.ray.judge_dataset]
judges them on its actor pool, and the results come back as the same
[`BatchResult`][grmjudge.results.BatchResult]s, in completion order. ``score`` and ``score_many`` run in this process
on the judge the spec builds here (the backend is built on the driver too, so ``vllm:`` and ``hf:`` load their
model here as well as on each actor).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread

from grmjudge._batch import BatchItem, JudgeItem
from grmjudge._optional import require
from grmjudge._runtime import ReceiveStream, stream_on_runtime
from grmjudge._tasks import task_group
from grmjudge.adaptive import AdaptivePolicy
from grmjudge.integrations.ray.dataset import StageResources, judge_dataset
from grmjudge.integrations.ray.spec import JudgeSpec
from grmjudge.judge import Judge
from grmjudge.results import BatchResult
from grmjudge.settings import JudgeSettings


class RayJudge(Judge):
    """A judge built from ``spec`` here and on each of ``grm``'s actors; ``stream`` runs on the actors."""

    def __init__(self, spec: JudgeSpec, *, grm: StageResources | None = None) -> None:
        local = spec.build(meta=True)
        limit = spec.max_concurrent_requests
        super().__init__(local.backend, meta=local.meta, settings=local.settings, max_concurrent_requests=limit)
        self.spec = spec
        self.grm = grm or StageResources()

    def __repr__(self) -> str:
        return f"RayJudge(backend={self.backend!r}, meta={self.meta!r})"

    def stream(
        self,
        items: Iterable[BatchItem],
        k: int = 1,
        meta: bool = False,
        *,
        adaptive: bool | AdaptivePolicy = False,
        concurrency: int = 16,
        settings: JudgeSettings | None = None,
    ) -> AbstractAsyncContextManager[ReceiveStream[BatchResult]]:
        """The items judged on the actors, received in completion order; ``concurrency`` is per actor."""
        self._item_scorer(k, meta, adaptive, settings)  # the checks a local stream makes, up front
        given = [_as_item(raw, index) for index, raw in enumerate(items)]
        return stream_on_runtime(lambda: self._results(given, k, meta, adaptive, concurrency, settings))

    @asynccontextmanager
    async def _results(
        self,
        items: list[JudgeItem],
        k: int,
        meta: bool,
        adaptive: bool | AdaptivePolicy,
        concurrency: int,
        settings: JudgeSettings | None,
    ) -> AsyncGenerator[ReceiveStream[BatchResult]]:
        data = require("ray.data", extra="ray")
        index_of = {item.id: index for index, item in enumerate(items)}
        send, receive = anyio.create_memory_object_stream[BatchResult](len(items) or 1)
        grm = dataclasses.replace(self.grm, concurrency=concurrency)

        def run() -> None:
            rows = [_row(item) for item in items]
            source = data.from_items(rows)
            options: dict[str, Any] = {"adaptive": adaptive, "settings": settings, "grm": grm}
            judged = judge_dataset(source, self.spec, k, meta, as_results=True, **options)
            for row in judged.iter_rows():
                batch = BatchResult.model_validate_json(row["line"])
                found = batch.model_copy(update={"index": index_of[batch.item_id]})
                anyio.from_thread.run(send.send, found)

        async def pump() -> None:
            async with send:
                if items:
                    await anyio.to_thread.run_sync(run, abandon_on_cancel=True)

        with receive:
            async with task_group() as tg:
                tg.start_soon(pump)
                try:
                    yield receive
                finally:
                    tg.cancel_scope.cancel()


def _as_item(raw: BatchItem, index: int) -> JudgeItem:
    item = raw if isinstance(raw, JudgeItem) else JudgeItem.model_validate(raw)
    return item if item.id is not None else item.model_copy(update={"id": str(index)})


def _row(item: JudgeItem) -> dict[str, Any]:
    """An input row for ``judge_dataset``: the item's id, its query (or messages) and responses."""
    row: dict[str, Any] = {"id": item.id, "responses": list(item.responses)}
    if isinstance(item.query, str):
        row["query"] = item.query
    else:
        row["messages"] = [m.model_dump() for m in item.query]
    return row
