"""What every judge type offers besides scoring: blocking facades and ``async with`` use."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from typing import Any

from grmjudge._batch import BatchItem
from grmjudge._lifecycle import Closable
from grmjudge._runtime import run_blocking
from grmjudge.prompts import Query
from grmjudge.results import BatchResult, ScoreResult


class JudgeFacade(Closable, ABC):
    """Blocking ``score_sync``/``score_many_sync``/``close`` over a judge's async methods.

    The blocking calls run on grmjudge's own event loop (`grmjudge._runtime`), where the judge's connections
    live for the life of the process, so they also work inside a running loop (a notebook cell).
    """

    @abstractmethod
    async def score(
        self, query: Query, responses: Sequence[str], k: int = 1, meta: bool = False, *, item_id: str | None = None
    ) -> ScoreResult:
        """Judge one query's responses; ``item_id`` seeds and names the call."""

    @abstractmethod
    async def score_many(
        self, items: Iterable[BatchItem], k: int = 1, meta: bool = False, *, concurrency: int = 16
    ) -> list[BatchResult]:
        """Judge many items, at most ``concurrency`` at a time, in input order."""

    def score_sync(
        self, query: Query, responses: Sequence[str], k: int = 1, meta: bool = False, **kw: Any
    ) -> ScoreResult:
        """Blocking `score`, for scripts and notebooks."""
        return run_blocking(lambda: self.score(query, responses, k, meta, **kw))

    def score_many_sync(
        self, items: Iterable[BatchItem], k: int = 1, meta: bool = False, **kw: Any
    ) -> list[BatchResult]:
        """Blocking `score_many`."""
        return run_blocking(lambda: self.score_many(items, k, meta, **kw))
