"""The service's routes over one shared judge: scoring, batches, RL rewards, health, metrics and the schema.

[`create_app`][grmjudge.serve.app.create_app] returns an ASGI app: Starlette behind the ``Gate`` of
``grmjudge.serve.gate``. Every judge call runs on grmjudge's own event loop, whichever loop
uvicorn runs, so one judge (its connections, limits and cache) serves every request. A request that is
cancelled (deadline, client gone) cancels its call.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import anyio
import httpx
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from grmjudge._redact import Redactor
from grmjudge.backends import HTTPBackend
from grmjudge.exceptions import GRMJudgeError, InvalidInputError
from grmjudge.integrations.rewarder import Mode, Normalisation, Reward, RewardItem, query_of
from grmjudge.judge import Judge
from grmjudge.results import BatchResult, ScoreResult
from grmjudge.serve.config import ServiceConfig, ServiceLimits
from grmjudge.serve.errors import RequestError, backend_failure, from_exception, from_validation, invalid
from grmjudge.serve.gate import Gate
from grmjudge.serve.metrics import Metrics
from grmjudge.serve.openapi import openapi_schema
from grmjudge.serve.rewards import GroupedRewards, RewardService, group_key
from grmjudge.serve.schemas import (
    BatchRequest,
    OpenRLHFRequest,
    RewardsRequest,
    ScoreItem,
    ScoreRequest,
)
from grmjudge.serve.wire import ClientGone, NDJSONResponse, Write, read_json, unless_disconnected

logger = logging.getLogger("grmjudge.serve")
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

JUDGING = frozenset({"/v1/score", "/v1/score/batch", "/v1/rewards", "/get_reward"})
"""The routes that call the judge, and so take a place in the queue."""


def create_app(
    judge: Judge,
    config: ServiceConfig | None = None,
    *,
    close_judge: bool = False,
    groups: GroupedRewards | None = None,
) -> Gate:
    """The service as an ASGI app; ``close_judge=True`` closes the judge when the app shuts down.

    ``groups`` judges the reward groups collected across requests (default: this process); on Ray Serve it
    sends each group to the one replica that collects it.
    """
    return Service(judge, config or ServiceConfig(), close_judge=close_judge, groups=groups).asgi


class Service:
    """One judge, its limits and counters, and the handlers of every route."""

    def __init__(
        self, judge: Judge, config: ServiceConfig, *, close_judge: bool, groups: GroupedRewards | None = None
    ) -> None:
        self.judge = judge
        self.config = config
        self.limits: ServiceLimits = config.limits
        self.metrics = Metrics()
        self.rewards = RewardService(judge, k=config.k, adaptive=config.adaptive, defaults=config.rewards)
        self.groups: GroupedRewards = groups or self.rewards
        self.redact = Redactor([*config.api_keys, *Redactor.from_environment().secrets])
        routes = [
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", self.readyz, methods=["GET"]),
            Route("/metrics", self.metrics_text, methods=["GET"]),
            Route("/openapi.json", self.openapi, methods=["GET"]),
            Route("/v1/score", self.score, methods=["POST"]),
            Route("/v1/score/batch", self.score_batch, methods=["POST"]),
            Route("/v1/rewards", self.reward, methods=["POST"]),
            Route("/get_reward", self.get_reward, methods=["POST"]),
        ]

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncGenerator[None]:
            yield
            if close_judge:
                await judge.aclose()

        app = Starlette(
            routes=routes,
            lifespan=lifespan,
            exception_handlers={
                RequestError: self._request_error,
                HTTPException: self._http_error,
                ClientGone: self._client_gone,
                Exception: self._internal_error,
            },
        )
        self.asgi = Gate(
            app,
            api_keys=config.api_keys,
            routes=frozenset(route.path for route in routes),
            queued=JUDGING,
            max_queue=self.limits.max_queue,
            retry_after=self.limits.retry_after,
            metrics=self.metrics,
        )

    # -- probes and documents -------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        """The process is up."""
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """The backend answers: some replica of an HTTP backend gives any HTTP reply; a local engine is loaded."""
        backend = self.judge.backend
        if not isinstance(backend, HTTPBackend):
            return JSONResponse({"status": "ready"})
        urls = [replica.url for replica in backend.http.replicas.replicas]
        async with httpx.AsyncClient(timeout=2.0) as client:
            for url in urls:
                try:
                    await client.get(url + "/models")
                except httpx.HTTPError:
                    continue
                return JSONResponse({"status": "ready"})
        raise RequestError(503, "BackendConnectionError", f"none of the backend's {len(urls)} server(s) answered")

    async def metrics_text(self, request: Request) -> Response:
        """Prometheus text."""
        text = self.metrics.render(
            queue_depth=self.asgi.depth, groups_waiting=self.rewards.groups_waiting, rewards=self.rewards.stats()
        )
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def openapi(self, request: Request) -> Response:
        """The OpenAPI 3.1 document."""
        return JSONResponse(openapi_schema())

    # -- judging ----------------------------------------------------------------------------------------------

    async def score(self, request: Request) -> Response:
        """``POST /v1/score``: one item -> its ``ScoreResult``."""
        body = await self._body(request, ScoreRequest)
        item = self._checked_item(body.item(), "")
        k = self._k(body.k)
        self._check_meta(body.meta)
        result = await self._judged(
            request,
            lambda: self.judge.score(
                item.conversation,
                item.responses,
                k,
                body.meta,
                adaptive=self._adaptive(body.adaptive),
                item_id=body.item_id,
            ),
        )
        self.metrics.observe_result(result)
        failure = backend_failure(result)
        if failure is not None:
            raise failure
        return self._json(result.model_dump(mode="json"))

    async def score_batch(self, request: Request) -> Response:
        """``POST /v1/score/batch``: NDJSON lines in completion order, each with its item's index."""
        body = await self._body(request, BatchRequest)
        if len(body.items) > self.limits.max_batch_items:
            raise invalid(f"at most {self.limits.max_batch_items} items per request", "items")
        k = self._k(body.k)
        self._check_meta(body.meta)
        early: list[bytes] = []
        accepted: list[tuple[int, ScoreItem]] = []
        for index, raw in enumerate(body.items):
            try:
                item = self._checked_item(ScoreItem.model_validate(raw), f"items.{index}.")
            except ValidationError as exc:
                early.append(self._line(index, None, None, from_validation(exc, f"items.{index}")))
            except RequestError as exc:
                early.append(self._line(index, None, None, exc))
            else:
                accepted.append((index, item))
        positions = [index for index, _ in accepted]
        ids = [item.id or str(index) for index, item in accepted]
        items = [
            {"query": item.conversation, "responses": item.responses, "id": item_id}
            for (_, item), item_id in zip(accepted, ids, strict=True)
        ]

        async def produce(write: Write) -> None:
            for line in early:
                await write(line)
            pending = set(positions)
            with anyio.move_on_after(self.limits.deadline):
                async with self.judge.stream(
                    items,
                    k,
                    body.meta,
                    adaptive=self._adaptive(body.adaptive),
                    concurrency=self.limits.batch_concurrency,
                ) as results:
                    async for batch_result in results:
                        index = positions[batch_result.index]
                        pending.discard(index)
                        await write(self._batch_line(index, batch_result))
            late = RequestError(504, "DeadlineExceeded", f"not judged within {self.limits.deadline:g} s")
            for slot, index in enumerate(positions):
                if index in pending:
                    await write(self._line(index, ids[slot], None, late))

        return NDJSONResponse(produce)

    async def reward(self, request: Request) -> Response:
        """``POST /v1/rewards``: one reward per completion, groups collected across requests by ``group_id``."""
        body = await self._body(request, RewardsRequest)
        defaults = self.config.rewards
        mode = body.mode or defaults.mode
        self._check_texts(body.completions, "completions")
        if isinstance(body.prompt, str):
            self._check_texts([body.prompt], "prompt")
        else:
            self._check_texts([m.content for m in body.prompt], "prompt")
        if body.reference is not None:
            self._check_texts([body.reference], "reference")
        if mode == "reference" and body.reference is None:
            raise invalid("reference mode judges each completion against a reference: give reference", "reference")
        size = (body.group_size or defaults.group_size) if body.group_id is not None else None
        if body.group_id is not None and size is None:
            raise invalid("a group_id needs the group's size: give group_size (the rollout n)", "group_size")
        if size is not None and size > self.limits.max_responses:
            raise invalid(f"at most {self.limits.max_responses} completions per group", "group_size")
        query = self._query(body.prompt, "prompt")
        key = group_key(body.group_id, request.state.request_id, query)
        items = [RewardItem(query, text, key, body.reference) for text in body.completions]
        normalisation = body.normalisation or defaults.normalisation
        rewards = await self._judged(
            request, lambda: self._rewarded(items, mode=mode, normalisation=normalisation, group_size=size)
        )
        fallback = body.fallback if body.fallback is not None else defaults.fallback
        return self._json(
            {
                "rewards": [fallback if reward is None else reward for reward in rewards],
                "no_verdict": [reward is None for reward in rewards],
            }
        )

    async def get_reward(self, request: Request) -> Response:
        """OpenRLHF's ``POST /get_reward``: ``{query, prompts, labels}`` -> ``{rewards, scores, extra_logs}``."""
        body = await self._body(request, OpenRLHFRequest)
        defaults = self.config.rewards
        count = len(body.query)
        if count > self.limits.max_batch_items:
            raise invalid(f"at most {self.limits.max_batch_items} texts per request", "query")
        if len(body.prompts) != count:
            raise invalid(f"got {count} query texts and {len(body.prompts)} prompts", "prompts")
        if body.labels is not None and len(body.labels) != count:
            raise invalid(f"got {count} query texts and {len(body.labels)} labels", "labels")
        self._check_texts(body.query, "query")
        items: list[RewardItem] = []
        for index, (text, prompt) in enumerate(zip(body.query, body.prompts, strict=True)):
            if not text.startswith(prompt):
                raise invalid("each query text must start with its prompt (prompt + response)", f"query.{index}")
            reference = None
            if defaults.mode == "reference":
                label = body.labels[index] if body.labels is not None else None
                if not isinstance(label, str):
                    raise invalid("reference mode needs a string label per text", f"labels.{index}")
                reference = label
            query = self._query(prompt, f"prompts.{index}")
            key: Hashable = (
                ("openrlhf", prompt) if defaults.group_size else ("request", request.state.request_id, prompt)
            )
            items.append(RewardItem(query, text[len(prompt) :], key, reference))
        rewards = await self._judged(
            request,
            lambda: self._rewarded(
                items, mode=defaults.mode, normalisation=defaults.normalisation, group_size=defaults.group_size
            ),
        )
        fallback = defaults.fallback if defaults.fallback is not None else 0.0
        values = [fallback if reward is None else reward for reward in rewards]
        missing = [1.0 if reward is None else 0.0 for reward in rewards]
        return self._json({"rewards": values, "scores": values, "extra_logs": {"grm_no_verdict": missing}})

    # -- shared steps -----------------------------------------------------------------------------------------

    async def _rewarded(
        self, items: list[RewardItem], *, mode: Mode, normalisation: Normalisation, group_size: int | None
    ) -> list[Reward]:
        """Rewards of a request's own group here; of groups collected across requests where they are collected."""
        judged = self.rewards if group_size is None else self.groups
        return await judged.rewards(items, mode=mode, normalisation=normalisation, group_size=group_size)

    async def _body(self, request: Request, model: type[M]) -> M:
        data = await read_json(request, self.limits.max_body_bytes)
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise from_validation(exc) from None

    async def _judged(self, request: Request, call: Callable[[], Awaitable[T]]) -> T:
        """``call()`` under the deadline, cancelled if the client goes; SDK errors become JSON errors."""
        try:
            with anyio.fail_after(self.limits.deadline):
                return await unless_disconnected(request.receive, call)
        except TimeoutError:
            raise RequestError(504, "DeadlineExceeded", f"not judged within {self.limits.deadline:g} s") from None
        except GRMJudgeError as exc:
            raise from_exception(exc) from exc

    def _checked_item(self, item: ScoreItem, where: str) -> ScoreItem:
        if len(item.responses) > self.limits.max_responses:
            raise invalid(f"at most {self.limits.max_responses} responses per item", f"{where}responses")
        self._check_texts(item.responses, f"{where}responses")
        if isinstance(item.query, str):
            self._check_texts([item.query], f"{where}query")
        else:
            field = "query" if item.query is not None else "messages"
            self._check_texts([m.content for m in item.query or item.messages or []], f"{where}{field}")
        return item

    def _check_texts(self, texts: Sequence[str], field: str) -> None:
        for index, text in enumerate(texts):
            if len(text) > self.limits.max_text_chars:
                raise invalid(f"a text is longer than {self.limits.max_text_chars:,} characters", f"{field}.{index}")

    def _k(self, k: int | None) -> int:
        chosen = k if k is not None else self.config.k
        cap = min(self.limits.max_k, self.judge.settings.max_k)
        if chosen > cap:
            raise invalid(f"k is at most {cap} on this service", "k")
        return chosen

    def _adaptive(self, asked: bool | None) -> bool:
        return self.config.adaptive if asked is None else asked

    def _check_meta(self, meta: bool) -> None:
        if meta and self.judge.meta is None:
            raise invalid("this service has no meta RM (start it with --meta)", "meta")

    def _query(self, prompt: object, field: str) -> Any:
        try:
            return query_of(prompt if isinstance(prompt, str) else _plain(prompt), field)
        except InvalidInputError as exc:
            raise invalid(str(exc), field) from None

    def _json(self, payload: Any) -> Response:
        return JSONResponse(self.redact.json(payload))

    def _batch_line(self, index: int, batch_result: BatchResult) -> bytes:
        result: ScoreResult | None = batch_result.result
        if result is not None:
            self.metrics.observe_result(result)
            failure = backend_failure(result)
            if failure is not None:
                return self._line(index, batch_result.item_id, None, failure)
            return self._line(index, batch_result.item_id, result, None)
        assert batch_result.error is not None  # a batch result holds one or the other
        error = RequestError(422, batch_result.error.type, batch_result.error.message)
        return self._line(index, batch_result.item_id, None, error)

    def _line(self, index: int, item_id: str | None, result: ScoreResult | None, error: RequestError | None) -> bytes:
        line: dict[str, Any] = {"index": index, "item_id": item_id}
        if result is not None:
            line["result"] = result.model_dump(mode="json")
        if error is not None:
            line |= {**error.body(), "status": error.status}
            line["error"]["message"] = self.redact(error.message)
        return json.dumps(self.redact.json(line)).encode() + b"\n"

    # -- errors -----------------------------------------------------------------------------------------------

    async def _request_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestError)
        body = exc.body()
        body["error"]["message"] = self.redact(exc.message)  # pyright: ignore[reportIndexIssue]
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error = RequestError(exc.status_code, "HTTPError", exc.detail, headers=exc.headers)
        return JSONResponse(error.body(), status_code=exc.status_code, headers=error.headers)

    async def _client_gone(self, request: Request, exc: Exception) -> Response:
        return Response(status_code=499)  # nobody reads it; the access log records the cancelled call

    async def _internal_error(self, request: Request, exc: Exception) -> Response:
        logger.error("unexpected %s while answering %s", type(exc).__name__, request.url.path)
        error = RequestError(500, "InternalError", "the service failed; the error is in its log")
        return JSONResponse(error.body(), status_code=500)


def _plain(messages: Any) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]
