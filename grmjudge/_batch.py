"""The batch loop every judge shares: bounded concurrency, input order, per-item errors instead of aborts.

A batch item is a [`JudgeItem`][grmjudge.judge.JudgeItem], a mapping with ``query``, ``responses`` and an
optional ``id``, or a ``(query, responses)`` pair. Whatever else arrives (``None``, a number, a mapping with
wrong types) becomes that item's [`InvalidInputError`][grmjudge.exceptions.InvalidInputError]; the others go on.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, cast

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from grmjudge._inputs import (
    check_item_id,
    check_query,
    check_responses,
    check_text,
    lone_surrogate,
    shown,
    type_name,
)
from grmjudge._tasks import task_group
from grmjudge.exceptions import GRMJudgeError, InvalidInputError
from grmjudge.prompts import Query
from grmjudge.results import BatchResult, ItemError, ScoreResult
from grmjudge.types import Message

_ITEM_KEYS = ("query", "responses", "id")
T = TypeVar("T")
R = TypeVar("R")


class JudgeItem(BaseModel):
    """One item of a batch: a query, its responses, and an optional id (used for seeds and reporting)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str | tuple[Message, ...]
    responses: tuple[str, ...] = Field(min_length=1)
    id: str | None = None

    @field_validator("query", mode="before")
    @classmethod
    def _messages(cls, value: object) -> object:
        messages = check_query(value)
        return value if isinstance(value, str) else messages

    @field_validator("responses")
    @classmethod
    def _valid_texts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, text in enumerate(value):
            check_text(text, f"responses[{i}]")
        return value

    @field_validator("id")
    @classmethod
    def _valid_id(cls, value: str | None) -> str | None:
        return check_item_id(value, "id")


BatchItem = JudgeItem | Mapping[str, Any] | tuple[Query, Sequence[str]]
"""One item of a batch: a `JudgeItem`, a mapping with ``query``, ``responses`` and optional ``id``, or a pair."""

ItemScorer = Callable[[JudgeItem, str], Awaitable[ScoreResult]]
"""Scores one validated item given its id."""


@asynccontextmanager
async def stream_batch(
    items: Iterable[BatchItem], score_item: ItemScorer, *, concurrency: int
) -> AsyncGenerator[MemoryObjectReceiveStream[BatchResult], None]:
    """Results of ``score_item(item, item_id)`` over ``items``, in completion order, as a receive stream.

    ``items`` is read lazily: at most ``concurrency`` items are read and not yet received (running, or
    finished and waiting for the reader), so memory stays flat however long the input. An item that is
    malformed or raises a grmjudge or validation error becomes a [`BatchResult`][grmjudge.results.BatchResult]
    with ``error``; the rest go on. Items without a usable id get their position as id. Leaving the context
    early cancels the items still running.
    """
    _check_batch(items, concurrency)

    async def work(index: int, raw: object) -> BatchResult:
        return await _run_item(index, raw, score_item)

    async with stream_each(items, work, concurrency=concurrency) as results:
        yield results


@asynccontextmanager
async def stream_each(
    items: Iterable[T], work: Callable[[int, T], Awaitable[R]], *, concurrency: int
) -> AsyncGenerator[MemoryObjectReceiveStream[R], None]:
    """``work(index, item)`` over ``items``, at most ``concurrency`` at a time, results in completion order.

    The loop under [`stream_batch`][grmjudge._batch.stream_batch], for any item and result type: ``items`` is
    read lazily, at most ``concurrency`` items are read and not yet received, and leaving the context early
    cancels the work still running. An exception ``work`` raises ends the stream.
    """
    send, receive = anyio.create_memory_object_stream[R]()  # hand-over: a result waits in its worker
    pending = enumerate(items)

    async def worker(index: int, item: T, out: MemoryObjectSendStream[R]) -> None:
        """Work on items until none is left: an item is read only when its worker is free to start it."""
        async with out:
            while True:
                await out.send(await work(index, item))
                step = next(pending, None)
                if step is None:
                    return
                index, item = step

    async def produce() -> None:
        async with send, task_group() as workers:
            for _ in range(concurrency):  # workers start as items arrive, at most one per slot
                step = next(pending, None)
                if step is None:
                    return
                workers.start_soon(worker, *step, send.clone())

    async with receive, task_group() as tg:
        tg.start_soon(produce)
        yield receive
        tg.cancel_scope.cancel()


async def run_batch(items: Iterable[BatchItem], score_item: ItemScorer, *, concurrency: int) -> list[BatchResult]:
    """Every result of [`stream_batch`][grmjudge._batch.stream_batch], in input order."""
    async with stream_batch(items, score_item, concurrency=concurrency) as results:
        collected = [result async for result in results]
    return sorted(collected, key=lambda result: result.index)


def _check_batch(items: object, concurrency: object) -> None:
    """Refuse bad batch arguments once, before any item is read, rather than once per item."""
    if isinstance(concurrency, bool) or not isinstance(concurrency, int):
        raise InvalidInputError(f"concurrency must be a positive integer, got {shown(concurrency)}")
    if concurrency < 1:
        raise InvalidInputError(f"concurrency must be at least 1, got {concurrency}")
    if isinstance(items, str | bytes):
        raise InvalidInputError("items is a single string: pass a list of items")
    if isinstance(items, Mapping | JudgeItem):
        raise InvalidInputError("items is a single mapping or item: pass a list of items, e.g. [item]")
    if not isinstance(items, Iterable):
        raise InvalidInputError(f"items must be an iterable of items, got {type_name(items)}")


def _to_item(raw: object) -> JudgeItem:
    """The item ``raw`` describes, or an InvalidInputError naming what is wrong with it."""
    if isinstance(raw, JudgeItem):
        return raw
    if isinstance(raw, tuple):
        pair = cast(tuple[object, ...], raw)
        if len(pair) != 2:
            raise InvalidInputError(f"item is a tuple of {len(pair)}; a (query, responses) pair has 2")
        query, responses, item_id = pair[0], pair[1], None
    elif isinstance(raw, Mapping):
        fields = cast(Mapping[object, object], raw)
        unknown = [key for key in fields if key not in _ITEM_KEYS]
        if unknown:
            names = ", ".join(map(shown, unknown))
            raise InvalidInputError(f"item has unknown keys: {names}; an item has 'query', 'responses' and 'id'")
        for key in ("query", "responses"):
            if key not in fields:
                raise InvalidInputError(f"item has no {key!r}")
        query, responses, item_id = fields["query"], fields["responses"], fields.get("id")
    else:
        raise InvalidInputError(
            f"item is {type_name(raw)}, not a JudgeItem, a mapping with 'query' and 'responses', "
            "or a (query, responses) pair"
        )
    return JudgeItem.model_construct(
        query=check_query(query), responses=check_responses(responses), id=check_item_id(item_id, "id")
    )


async def _run_item(index: int, raw: object, score_item: ItemScorer) -> BatchResult:
    item_id = _reported_id(raw, index)
    try:
        result = await score_item(_to_item(raw), item_id)
    except (GRMJudgeError, ValidationError) as exc:
        return BatchResult(index=index, item_id=item_id, error=ItemError(type=type(exc).__name__, message=str(exc)))
    return BatchResult(index=index, item_id=item_id, result=result)


def _reported_id(raw: object, index: int) -> str:
    """The item's own id where it is a valid string, else its position, so even a bad item can be found."""
    if isinstance(raw, JudgeItem):
        raw_id = raw.id
    elif isinstance(raw, Mapping):
        raw_id = cast(Mapping[object, object], raw).get("id")
    else:
        raw_id = None
    return raw_id if isinstance(raw_id, str) and lone_surrogate(raw_id) is None else str(index)
