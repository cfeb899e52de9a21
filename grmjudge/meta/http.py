"""A one-label sequence classifier served by vLLM, over its ``/classify`` endpoint, and the meta RM on it.

Checked against vLLM 0.32: a checkpoint whose architecture ends in ``ForSequenceClassification`` is served
as a classifier without extra flags (the explicit form is ``--runner pooling --convert classify``);
``POST /classify`` (at the server root, not under ``/v1``) takes one chat as ``messages`` and applies the
model's chat template itself, without a generation prompt, as the local classifier does.
``use_activation: false`` returns the raw logit in ``probs`` instead of its sigmoid.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, Unpack

import anyio

from grmjudge.backends.http import HTTPClient, RetryPolicy
from grmjudge.backends.urls import check_base_url, masked_url
from grmjudge.exceptions import BackendResponseError, BackendStatusError, ConfigurationError, GRMJudgeError
from grmjudge.meta.base import ChatClassifier, ChatScores, ClassifierMetaScorer, InputTooLongError, check_chats
from grmjudge.types import Message, Usage

if TYPE_CHECKING:
    import httpx

CLASSIFY_PATH = "/classify"
_CONTEXT = re.compile(r"maximum context length is (\d+) tokens")
_PROMPT = re.compile(r"contains (at least )?(\d+) input tokens")


class HTTPClassifierOptions(TypedDict, total=False):
    """The keyword options of the served classifier and of the meta RM on it, listed once for both.

    ``timeout`` (300 s) bounds each request; ``max_connections`` (64) caps requests in flight; ``retry``
    (default ``RetryPolicy()``) governs transport retries; ``headers`` are sent with every request;
    ``extra_body`` is merged into every request body; an ``http_client`` you pass is used as is and left open.
    """

    timeout: float
    max_connections: int
    retry: RetryPolicy | None
    headers: Mapping[str, str] | None
    extra_body: Mapping[str, Any] | None
    http_client: httpx.AsyncClient | None


class HTTPChatClassifier(ChatClassifier):
    """A one-label classifier behind a vLLM server: one ``/classify`` request per chat, sent concurrently.

    ``base_url`` is the server root; a trailing ``/v1`` (the OpenAI base URL of the same server) is dropped,
    because vLLM serves ``/classify`` at the root only. The key, if any, travels only as a bearer header;
    it is never read from the environment, so no OpenAI key reaches a classifier server by accident. A chat
    longer than the server's ``max_model_len`` raises :class:`InputTooLongError` (vLLM rejects it; grmjudge
    never asks it to truncate). A client you pass as ``http_client`` is used as is and left open.
    """

    name: ClassVar[str] = "http-classifier"

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, **options: Unpack[HTTPClassifierOptions]
    ) -> None:
        max_connections = options.get("max_connections", 64)
        if max_connections < 1:
            raise ConfigurationError(f"max_connections must be at least 1, got {max_connections}")
        self.base_url = _server_root(base_url)
        self.model = model
        self.extra_body = dict(options.get("extra_body") or {})
        self._max_connections = max_connections
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = HTTPClient(
            backend=self.name,
            base_urls=[self.base_url],
            timeout=options.get("timeout", 300.0),
            max_connections=max_connections,
            retry=options.get("retry"),
            headers={**(options.get("headers") or {}), **auth},
            http_client=options.get("http_client"),
        )

    def __repr__(self) -> str:
        return f"HTTPChatClassifier(base_url={masked_url(self.base_url)!r}, model={self.model!r})"

    @property
    def url(self) -> str:
        """The endpoint this classifier posts to."""
        return self.base_url + CLASSIFY_PATH

    async def classify(self, chats: Sequence[Sequence[Message]]) -> ChatScores:
        self._check_open()
        checked = check_chats(chats)
        results: list[tuple[float, Usage] | None] = [None] * len(checked)
        errors: list[tuple[int, GRMJudgeError]] = []
        limiter = anyio.CapacityLimiter(self._max_connections)  # queued requests must not time out in the pool

        async def run_one(index: int, chat: tuple[Message, ...], scope: anyio.CancelScope) -> None:
            async with limiter:
                try:
                    results[index] = await self._classify_one(index, chat)
                except GRMJudgeError as exc:  # one failed chat fails the call: stop the others
                    errors.append((index, exc))
                    scope.cancel()

        async with anyio.create_task_group() as tg:
            for index, chat in enumerate(checked):
                tg.start_soon(run_one, index, chat, tg.cancel_scope)
        if errors:
            raise min(errors, key=lambda error: error[0])[1]
        done = [r for r in results if r is not None]
        usage = sum((u for _, u in done), Usage(requests=0, prompt_tokens=0, completion_tokens=0))
        return ChatScores(scores=tuple(score for score, _ in done), usage=usage)

    async def aclose(self) -> None:
        await self.http.aclose()
        await super().aclose()

    async def _classify_one(self, index: int, chat: tuple[Message, ...]) -> tuple[float, Usage]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": m.role, "content": m.content} for m in chat],
            "add_generation_prompt": False,
            "use_activation": False,
            **self.extra_body,
        }
        try:
            payload = await self.http.post_json(CLASSIFY_PATH, body)
        except BackendStatusError as exc:
            too_long = _too_long(exc, index)
            if too_long is None:
                raise
            raise too_long from exc
        return self._parse(payload), _usage(payload.get("usage"))

    def _parse(self, payload: dict[str, Any]) -> float:
        try:
            (item,) = payload["data"]
            (score,) = item["probs"]
        except (KeyError, TypeError, ValueError) as exc:
            if _num_classes(payload) not in (None, 1):
                raise ConfigurationError(
                    f"{self.model} at {masked_url(self.url)} has {_num_classes(payload)} labels; a scalar reward "
                    "model needs exactly 1 (num_labels=1)"
                ) from exc
            raise BackendResponseError(
                f"{masked_url(self.url)} answered without one data item holding one score "
                f"({type(exc).__name__}: {exc})",
                backend=self.name,
            ) from exc
        if isinstance(score, bool) or not isinstance(score, int | float):
            raise BackendResponseError(
                f"{masked_url(self.url)} answered a score that is not a number: {score!r}", backend=self.name
            )
        return float(score)


class HTTPMetaScorer(ClassifierMetaScorer):
    """A meta RM behind a vLLM server: one ``/classify`` request per judgement, raw logits (METHOD.md §8).

    The arguments are those of [`HTTPChatClassifier`][grmjudge.meta.http.HTTPChatClassifier]; ``base_url`` is
    the server root (a trailing ``/v1`` is dropped) and the server applies the model's own chat template.
    """

    def __init__(
        self, base_url: str, model: str, api_key: str | None = None, **options: Unpack[HTTPClassifierOptions]
    ) -> None:
        super().__init__(HTTPChatClassifier(base_url, model, api_key, **options))


def _server_root(base_url: object) -> str:
    """The checked base URL without a trailing ``/v1``."""
    return check_base_url(base_url).removesuffix("/v1")


def _too_long(exc: BackendStatusError, index: int) -> InputTooLongError | None:
    """The 400 vLLM gives a prompt over ``max_model_len`` as an :class:`InputTooLongError`, else ``None``."""
    context = _CONTEXT.search(exc.body)
    if exc.status_code != 400 or context is None:
        return None
    prompt = _PROMPT.search(exc.body)
    # vLLM stops tokenizing one token past the limit and then reports "at least" that many: only a bound
    length = int(prompt.group(2)) if prompt and not prompt.group(1) else None
    size = f"{prompt.group(1) or ''}{prompt.group(2)} tokens long, more" if prompt else "longer"
    return InputTooLongError(
        f"chats[{index}] is {size} than the classifier server's context of {context.group(1)} tokens; shorten it "
        "(grmjudge never truncates a chat it scores)",
        index=index,
        length=length,
        max_length=int(context.group(1)),
    )


def _num_classes(payload: dict[str, Any]) -> int | None:
    try:
        value = payload["data"][0]["num_classes"]
    except (KeyError, IndexError, TypeError):
        return None
    return value if isinstance(value, int) else None


def _usage(raw: object) -> Usage:
    prompt = raw.get("prompt_tokens") if isinstance(raw, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return Usage(requests=1, prompt_tokens=prompt if isinstance(prompt, int) else None, completion_tokens=0)
