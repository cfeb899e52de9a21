"""The batch loop every judge shares: bounded concurrency, input order, per-item errors instead of aborts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import anyio
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


async def run_batch(
    items: Iterable[JudgeItem | Mapping[str, Any]], score_item: ItemScorer, *, concurrency: int
) -> list[BatchResult]:
    """Run ``score_item(item, item_id)`` over a batch, at most ``concurrency`` at a time, in input order.

    An item that raises a grmjudge or validation error becomes a [`BatchResult`][grmjudge.results.BatchResult]
    with ``error``; the rest of the batch goes on. Items without an id get their position as id.
    """
    if concurrency < 1:
        raise InvalidInputError(f"concurrency must be at least 1, got {concurrency}")
    batch = list(items)
    results: list[BatchResult | None] = [None] * len(batch)
    limiter = anyio.Semaphore(concurrency, fast_acquire=True)

    async def run_one(index: int, raw: JudgeItem | Mapping[str, Any]) -> None:
        async with limiter:
            results[index] = await _run_item(index, raw, score_item)

    async with task_group() as tg:
        for index, raw in enumerate(batch):
            tg.start_soon(run_one, index, raw)
    return [r for r in results if r is not None]


async def _run_item(index: int, raw: JudgeItem | Mapping[str, Any], score_item: ItemScorer) -> BatchResult:
    raw_id = raw.id if isinstance(raw, JudgeItem) else raw.get("id")
    item_id = raw_id if isinstance(raw_id, str) else str(index)
    try:
        item = raw if isinstance(raw, JudgeItem) else JudgeItem.model_validate(raw)
        result = await score_item(item, item_id)
    except (GRMJudgeError, ValidationError) as exc:
        return BatchResult(index=index, item_id=item_id, error=ItemError(type=type(exc).__name__, message=str(exc)))
    return BatchResult(index=index, item_id=item_id, result=result)
