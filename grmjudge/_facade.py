"""What every judge type offers besides scoring: blocking facades and ``async with`` use."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

from grmjudge._batch import BatchItem
from grmjudge._sync import run_sync
from grmjudge.prompts import Query
from grmjudge.results import BatchResult, ScoreResult

T = TypeVar("T")


class JudgeFacade(ABC):
    """Blocking ``score_sync``/``score_many_sync`` and ``async with``, over a judge's async methods.

    Each blocking call runs in a fresh event loop and then drops what is bound to that loop
    (``_release_loop_resources``), so the next call starts clean.
    """

    score: Callable[..., Awaitable[ScoreResult]]
    """Judge one query's responses (each judge type defines it)."""
    score_many: Callable[..., Awaitable[list[BatchResult]]]
    """Judge many items, in input order (each judge type defines it)."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release everything the judge holds."""

    @abstractmethod
    async def _release_loop_resources(self) -> None:
        """Drop connections and limiters bound to the current event loop."""

    def score_sync(
        self, query: Query, responses: Sequence[str], k: int = 1, meta: bool = False, **kw: Any
    ) -> ScoreResult:
        """Blocking `score` for scripts; raises `SyncInAsyncContextError` inside an event loop."""
        return run_sync(self._in_fresh_loop(lambda: self.score(query, responses, k, meta, **kw)), method="judge.score")

    def score_many_sync(
        self, items: Iterable[BatchItem], k: int = 1, meta: bool = False, **kw: Any
    ) -> list[BatchResult]:
        """Blocking `score_many`; raises `SyncInAsyncContextError` inside an event loop."""
        return run_sync(self._in_fresh_loop(lambda: self.score_many(items, k, meta, **kw)), method="judge.score_many")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _in_fresh_loop(self, make: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        async def run() -> T:
            try:
                return await make()
            finally:
                await self._release_loop_resources()

        return run
