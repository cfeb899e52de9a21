"""`RemoteJudge`: a judge served by ``grmjudge serve``, called the way a [`Judge`][grmjudge.judge.Judge] is.

Application code switches between judging in process and judging on a service by one line::

    judge = Judge.from_spec("openai:my-grm", base_url=...)          # in process
    judge = RemoteJudge("http://grm.internal:8080", api_key=KEY)     # served

Requests go through the SDK's HTTP layer: retries with backoff on 429/5xx and connection errors (honouring
the service's ``Retry-After`` when its queue is full), least-busy balancing over several service URLs, and the
key redacted from anything the service sends back. A refused input raises
[`InvalidInputError`][grmjudge.exceptions.InvalidInputError] naming the field; a GRM backend the service could
not use raises the status error (``ServerError`` for its 502/503/504).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from grmjudge._batch import BatchItem, ItemScorer, JudgeItem, run_batch, stream_batch
from grmjudge._facade import JudgeFacade
from grmjudge._runtime import ReceiveStream, run_blocking, runs_on_runtime, stream_on_runtime
from grmjudge.backends.http import HTTPClient, RetryPolicy
from grmjudge.backends.urls import check_base_urls, masked_url
from grmjudge.exceptions import BackendStatusError, InvalidInputError
from grmjudge.prompts import Query
from grmjudge.results import BatchResult, ScoreResult
from grmjudge.types import Message

if TYPE_CHECKING:
    import httpx

__all__ = ["RemoteJudge"]


class RemoteJudge(JudgeFacade):
    """A judge behind ``grmjudge serve``.

    Args:
        url: The service's base URL (``http://host:8080``), or a list of them (replicas).
        api_key: The service's key, sent as a bearer token.
        timeout: Seconds per request (a k=32 judgement can take minutes).
        max_connections: Requests in flight at once.
        retry: Retries of 429, 5xx and connection failures (default: the SDK's `RetryPolicy`).
        http_client: An ``httpx.AsyncClient`` to send through (proxies, custom TLS, tests); never closed here.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        api_key: str | None = None,
        timeout: float = 600.0,
        max_connections: int = 64,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.urls = check_base_urls(url)
        self.http = HTTPClient(
            backend="grmjudge-serve",
            base_urls=self.urls,
            timeout=timeout,
            max_connections=max_connections,
            retry=retry,
            headers={"authorization": f"Bearer {api_key}"} if api_key else {},
            http_client=http_client,
        )

    def __repr__(self) -> str:
        return f"RemoteJudge(url={', '.join(masked_url(u) for u in self.urls)!r})"

    @runs_on_runtime
    async def score(
        self,
        query: Query,
        responses: Sequence[str],
        k: int | None = None,
        meta: bool = False,
        *,
        adaptive: bool | None = None,
        item_id: str | None = None,
    ) -> ScoreResult:
        """Judge ``responses`` to ``query`` on the service; ``k`` and ``adaptive`` default to the service's own."""
        self._check_open()
        body: dict[str, Any] = {**_query_field(query), "responses": list(responses), "meta": meta}
        body |= {
            name: value for name, value in (("k", k), ("adaptive", adaptive), ("item_id", item_id)) if value is not None
        }
        try:
            return ScoreResult.model_validate(await self.http.post_json("/v1/score", body))
        except BackendStatusError as exc:
            raise _refusal(exc) or exc from None

    @runs_on_runtime
    async def score_many(
        self,
        items: Iterable[BatchItem],
        k: int | None = None,
        meta: bool = False,
        *,
        adaptive: bool | None = None,
        concurrency: int = 16,
    ) -> list[BatchResult]:
        """Judge many items, ``concurrency`` requests at a time; results in input order, a refused item its error."""
        return await run_batch(items, self._scorer(k, meta, adaptive), concurrency=concurrency)

    def stream(
        self,
        items: Iterable[BatchItem],
        k: int | None = None,
        meta: bool = False,
        *,
        adaptive: bool | None = None,
        concurrency: int = 16,
    ) -> AbstractAsyncContextManager[ReceiveStream[BatchResult]]:
        """Results in completion order as they arrive: ``async with judge.stream(items) as results: ...``."""
        scorer = self._scorer(k, meta, adaptive)
        return stream_on_runtime(lambda: stream_batch(items, scorer, concurrency=concurrency))

    def score_sync(
        self, query: Query, responses: Sequence[str], k: int | None = None, meta: bool = False, **kw: Any
    ) -> ScoreResult:
        """Blocking `score`; ``k`` defaults to the service's, as in `score`."""
        return run_blocking(lambda: self.score(query, responses, k, meta, **kw))

    def score_many_sync(
        self, items: Iterable[BatchItem], k: int | None = None, meta: bool = False, **kw: Any
    ) -> list[BatchResult]:
        """Blocking `score_many`; ``k`` defaults to the service's."""
        return run_blocking(lambda: self.score_many(items, k, meta, **kw))

    async def aclose(self) -> None:
        """Close the connections to the service."""
        await self.http.aclose()
        await super().aclose()

    def _scorer(self, k: int | None, meta: bool, adaptive: bool | None) -> ItemScorer:
        async def score_item(item: JudgeItem, item_id: str) -> ScoreResult:
            return await self.score(item.query, item.responses, k, meta, adaptive=adaptive, item_id=item_id)

        return score_item


def _query_field(query: Query) -> dict[str, Any]:
    if isinstance(query, str):
        return {"query": query}
    return {"messages": [m.model_dump() if isinstance(m, Message) else dict(m) for m in query]}


def _refusal(exc: BackendStatusError) -> InvalidInputError | None:
    """The service's 413/422 as the `InvalidInputError` a judge would raise, naming the field."""
    if exc.status_code not in (400, 413, 422):
        return None
    try:
        detail = json.loads(exc.body)["error"]
        message, field = str(detail["message"]), detail.get("field")
    except (ValueError, KeyError, TypeError):
        return InvalidInputError(str(exc))
    return InvalidInputError(f"{field}: {message}" if field else message)
