"""AnthropicBackend: Claude models through Anthropic's Messages API, over httpx (no vendor SDK)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypeGuard, cast

from grmjudge.backends._http_backend import HTTPBackend
from grmjudge.backends.http import RetryPolicy
from grmjudge.backends.limits import RateLimits
from grmjudge.backends.urls import check_base_url, masked_url
from grmjudge.exceptions import BackendResponseError, ConfigurationError, InvalidInputError
from grmjudge.types import Completion, FinishReason, Generation, GenerationRequest, Message, Usage

if TYPE_CHECKING:
    import httpx

MESSAGES_PATH = "/v1/messages"
API_KEY_ENV = "ANTHROPIC_API_KEY"
MAX_TEMPERATURE = 1.0
"""The Messages API accepts temperatures in [0, 1]; higher ones are refused before anything is sent."""

_FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    # the output was cut off by the context window: as truncated as a max_tokens stop
    "model_context_window_exceeded": "length",
}


class AnthropicBackend(HTTPBackend):
    """Anthropic's Messages API (``POST {base_url}/v1/messages``).

    The API has no ``n``, so ``supports_n`` is false and the judge sends one request per sample, all under its
    concurrency limit. It has no seed either: requests' seeds are dropped and sampling is not reproducible.
    Leading ``system`` messages become the top-level ``system`` field; consecutive turns of one role are sent as
    one turn of several text blocks, as the API itself would merge them. A temperature above 1 (the API's
    maximum) is a :class:`ConfigurationError` raised before anything is sent.

    The API key comes from ``api_key`` or ``ANTHROPIC_API_KEY`` (a missing key is a :class:`ConfigurationError`)
    and travels only in the ``x-api-key`` header, never in reprs or errors. ``base_url`` is the API's root,
    without ``/v1``; a malformed one is a :class:`ConfigurationError` here. A client you pass as
    ``http_client`` is used as is and left open by :meth:`aclose`.
    """

    name: ClassVar[str] = "anthropic"
    supports_n = False

    def __init__(
        self,
        model: str,
        api_key: str | None = None,
        base_url: str = "https://api.anthropic.com",
        *,
        anthropic_version: str = "2023-06-01",
        timeout: float = 300.0,
        max_connections: int = 256,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        http_client: httpx.AsyncClient | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        if not model:
            raise ConfigurationError("model must name a Claude model, e.g. model='claude-sonnet-4-5'")
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key:
            raise ConfigurationError(f"AnthropicBackend needs an API key: pass api_key=... or set {API_KEY_ENV}")
        root = check_base_url(base_url)
        super().__init__(
            base_urls=[root],
            timeout=timeout,
            max_connections=max_connections,
            retry=retry,
            headers={**(headers or {}), "anthropic-version": anthropic_version, "x-api-key": key},
            http_client=http_client,
            rate_limits=rate_limits,
        )
        self.model = model
        self.base_url = root
        self.anthropic_version = anthropic_version
        self.extra_body = dict(extra_body or {})

    def __repr__(self) -> str:
        return f"AnthropicBackend(model={self.model!r}, base_url={masked_url(self.base_url)!r})"

    @property
    def url(self) -> str:
        """The endpoint this backend posts to."""
        return self.base_url + MESSAGES_PATH

    async def generate(self, request: GenerationRequest) -> Generation:
        self._check_open()
        payload = await self._post(MESSAGES_PATH, self._request_body(request), request)
        return self._parse_response(payload)

    def _request_body(self, request: GenerationRequest) -> dict[str, Any]:
        if request.n != 1:
            raise ConfigurationError(
                f"AnthropicBackend makes one completion per request (the Messages API has no n), got n={request.n}"
            )
        if request.temperature > MAX_TEMPERATURE:
            raise ConfigurationError(
                f"the Messages API accepts temperature between 0 and {MAX_TEMPERATURE:g}, "
                f"got {request.temperature:g}: set JudgeSettings(temperature=...) to at most {MAX_TEMPERATURE:g}"
            )
        system, turns = to_messages_api(request.messages)
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": turns,
            "temperature": request.temperature,
        }
        if system is not None:
            body["system"] = system
        if request.top_p is not None:
            body["top_p"] = request.top_p
        body.update(self.extra_body)
        body.update(request.extra_body or {})
        return body

    def _parse_response(self, payload: dict[str, Any]) -> Generation:
        text = _joined_text(payload.get("content"))
        if text is None:
            raise BackendResponseError(
                f"{self.url} answered without a list of content blocks with string texts", backend=self.name
            )
        model = payload.get("model")
        completion = Completion(text=text, finish_reason=_finish_reason(payload.get("stop_reason")))
        return Generation(
            completions=(completion,),
            usage=_usage(payload.get("usage")),
            model=model if isinstance(model, str) else None,
        )


TextContent = str | list[dict[str, str]]


def to_messages_api(messages: Sequence[Message]) -> tuple[TextContent | None, list[dict[str, Any]]]:
    """Split a chat into the Messages API's ``system`` field and its user/assistant ``messages``.

    System messages must come first (the API has no place for one mid-conversation). A single text is sent as a
    string, several (several leading system messages, consecutive turns of one role) as a list of text blocks.
    """
    system: list[str] = []
    turns: list[tuple[str, list[str]]] = []
    for i, message in enumerate(messages):
        if message.role == "system":
            if turns:
                raise InvalidInputError(
                    f"messages[{i}] is a system message after the conversation started: "
                    "the Messages API takes system text only before the first user turn"
                )
            system.append(message.content)
        elif turns and turns[-1][0] == message.role:
            turns[-1][1].append(message.content)
        else:
            turns.append((message.role, [message.content]))
    if not turns:
        raise InvalidInputError("the Messages API needs at least one user message besides the system text")
    if turns[0][0] != "user":
        raise InvalidInputError(f"the Messages API needs the first turn to be the user's, got {turns[0][0]!r}")
    return (
        _text_content(system) if system else None,
        [{"role": role, "content": _text_content(texts)} for role, texts in turns],
    )


def _text_content(texts: list[str]) -> TextContent:
    return texts[0] if len(texts) == 1 else [{"type": "text", "text": text} for text in texts]


def _joined_text(content: object) -> str | None:
    """The text blocks of a response, concatenated; other block types (thinking, tool use) are skipped.

    ``None`` when ``content`` is not a list of blocks or a text block has no string ``text``.
    """
    if not isinstance(content, list):
        return None
    texts: list[str] = []
    for block in cast(list[object], content):
        if not isinstance(block, dict):
            return None
        fields = cast(dict[str, object], block)
        if fields.get("type") != "text":
            continue
        text = fields.get("text")
        if not isinstance(text, str):
            return None
        texts.append(text)
    return "".join(texts)


def _finish_reason(value: object) -> FinishReason:
    return _FINISH_REASONS.get(value, "other") if isinstance(value, str) else "other"


def _usage(raw: object) -> Usage:
    """Input tokens include cache writes and reads, so ``prompt_tokens`` is the whole prompt as elsewhere."""
    if not isinstance(raw, dict):
        return Usage(requests=1)
    fields = cast(dict[str, object], raw)
    input_tokens = fields.get("input_tokens")
    output_tokens = fields.get("output_tokens")
    prompt_tokens = None
    if _is_count(input_tokens):
        cached = (fields.get(key) for key in ("cache_creation_input_tokens", "cache_read_input_tokens"))
        prompt_tokens = input_tokens + sum(n for n in cached if _is_count(n))
    return Usage(
        requests=1,
        prompt_tokens=prompt_tokens,
        completion_tokens=output_tokens if _is_count(output_tokens) else None,
    )


def _is_count(value: object) -> TypeGuard[int]:
    return type(value) is int
