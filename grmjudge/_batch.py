"""The batch loop every judge shares: bounded concurrency, input order, per-item errors instead of aborts."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grmjudge._tasks import task_group
from grmjudge.exceptions import GRMJudgeError, InvalidInputError
from grmjudge.prompts import normalise_query
from grmjudge.results import BatchResult, ItemError, ScoreResult
from grmjudge.types import Message


class JudgeItem(BaseModel):
    """One item of a batch: a query, its responses, and an optional id (used for seeds and reporting)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str | tuple[Message, ...]
    responses: tuple[str, ...] = Field(min_length=1)
    id: str | None = None

    @field_validator("query", mode="before")
    @classmethod
    def _messages(cls, value: object) -> object:
        return value if isinstance(value, str) else normalise_query(value)  # pyright: ignore[reportArgumentType]


ItemScorer = Callable[[JudgeItem, str], Awaitable[ScoreResult]]
"""Scores one validated item given its id."""


@asynccontextmanager
async def stream_batch(
    items: Iterable[JudgeItem | Mapping[str, Any]], score_item: ItemScorer, *, concurrency: int
) -> AsyncGenerator[MemoryObjectReceiveStream[BatchResult], None]:
    """Results of ``score_item(item, item_id)`` over ``items``, in completion order, as a receive stream.

    ``items`` is read lazily: at most ``concurrency`` items are in flight or waiting to be received, so memory
    stays flat however long the input. An item that raises a grmjudge or validation error becomes a
    [`BatchResult`][grmjudge.results.BatchResult] with ``error``; the rest go on. Items without an id get
    their position as id. Leaving the context early cancels the items still running.
    """
    if concurrency < 1:
        raise InvalidInputError(f"concurrency must be at least 1, got {concurrency}")
    send, receive = anyio.create_memory_object_stream[BatchResult](concurrency)
    slots = anyio.Semaphore(concurrency, fast_acquire=True)

    async def work(index: int, raw: JudgeItem | Mapping[str, Any], out: MemoryObjectSendStream[BatchResult]) -> None:
        async with out:
            await out.send(await _run_item(index, raw, score_item))
        slots.release()

    async def produce() -> None:
        async with send, task_group() as workers:
            for index, raw in enumerate(items):
                await slots.acquire()
                workers.start_soon(work, index, raw, send.clone())

    async with receive, task_group() as tg:
        tg.start_soon(produce)
        yield receive
        tg.cancel_scope.cancel()


async def run_batch(
    items: Iterable[JudgeItem | Mapping[str, Any]], score_item: ItemScorer, *, concurrency: int
) -> list[BatchResult]:
    """Every result of [`stream_batch`][grmjudge._batch.stream_batch], in input order."""
    async with stream_batch(items, score_item, concurrency=concurrency) as results:
        collected = [result async for result in results]
    return sorted(collected, key=lambda result: result.index)


async def _run_item(index: int, raw: JudgeItem | Mapping[str, Any], score_item: ItemScorer) -> BatchResult:
    raw_id = raw.id if isinstance(raw, JudgeItem) else raw.get("id")
    item_id = raw_id if isinstance(raw_id, str) else str(index)
    try:
        item = raw if isinstance(raw, JudgeItem) else JudgeItem.model_validate(raw)
        result = await score_item(item, item_id)
    except (GRMJudgeError, ValidationError) as exc:
        return BatchResult(index=index, item_id=item_id, error=ItemError(type=type(exc).__name__, message=str(exc)))
    return BatchResult(index=index, item_id=item_id, result=result)
