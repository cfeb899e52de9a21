"""OpenAIBackend: any OpenAI-compatible server (vLLM, SGLang, OpenAI) over its chat or completions endpoint."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from grmjudge._records import validated
from grmjudge.backends._http_backend import HTTPBackend
from grmjudge.backends.http import RetryPolicy
from grmjudge.backends.limits import RateLimits
from grmjudge.backends.urls import check_base_urls, masked_url
from grmjudge.exceptions import BackendResponseError, ConfigurationError
from grmjudge.types import Completion, FinishReason, Generation, GenerationRequest, Message, Usage

if TYPE_CHECKING:
    import httpx

Endpoint = Literal["chat", "completions"]
PromptRenderer = Callable[[Sequence[Message]], str]


class OpenAIBackend(HTTPBackend):
    """An OpenAI-compatible HTTP server.

    ``endpoint="chat"`` lets the server apply the model's chat template. ``endpoint="completions"`` sends raw
    text: the filled judge template as is, or ``render_prompt(messages)`` when you own the template.
    ``base_url`` (one URL, or a list of replicas) must be an http(s) URL; a malformed one is a
    :class:`ConfigurationError` here, not a failure of every request.
    The API key comes from ``api_key`` or ``OPENAI_API_KEY`` and is sent only as a header, never stored in
    reprs or errors. A client you pass as ``http_client`` is used as is and left open by :meth:`aclose`.
    """

    name: ClassVar[str] = "openai"

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str,
        api_key: str | None = None,
        *,
        endpoint: Endpoint = "chat",
        supports_n: bool = True,
        timeout: float = 300.0,
        max_connections: int = 256,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
        render_prompt: PromptRenderer | None = None,
        http_client: httpx.AsyncClient | None = None,
        rate_limits: RateLimits | None = None,
    ) -> None:
        if endpoint not in ("chat", "completions"):
            raise ConfigurationError(f"endpoint must be 'chat' or 'completions', got {endpoint!r}")
        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        auth = {"authorization": f"Bearer {key}"} if key else {}
        self.base_urls = check_base_urls(base_url)
        super().__init__(
            base_urls=self.base_urls,
            timeout=timeout,
            max_connections=max_connections,
            retry=retry,
            headers={**(headers or {}), **auth},
            http_client=http_client,
            rate_limits=rate_limits,
        )
        self.base_url = self.base_urls[0]
        self.model = model
        self.endpoint: Endpoint = endpoint
        self.supports_n = supports_n
        self.extra_body = dict(extra_body or {})
        self._render_prompt = render_prompt or _single_user_prompt

    def __repr__(self) -> str:
        masked = [masked_url(url) for url in self.base_urls]
        urls = masked[0] if len(masked) == 1 else masked
        return f"OpenAIBackend(base_url={urls!r}, model={self.model!r}, endpoint={self.endpoint!r})"

    @property
    def path(self) -> str:
        """The endpoint's path under each base URL."""
        return "/chat/completions" if self.endpoint == "chat" else "/completions"

    @property
    def url(self) -> str:
        """The endpoint on the first base URL (named in error messages)."""
        return self.base_url + self.path

    async def generate(self, request: GenerationRequest) -> Generation:
        self._check_open()
        payload = await self._post(self.path, self._request_body(request), request)
        return self._parse_response(payload, request.n)

    def _request_body(self, request: GenerationRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "n": request.n,
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
        }
        if self.endpoint == "chat":
            body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        else:
            body["prompt"] = self._render_prompt(request.messages)
        if request.top_p is not None:
            body["top_p"] = request.top_p
        if request.seed is not None:
            body["seed"] = request.seed
        body.update(self.extra_body)
        body.update(request.extra_body or {})
        return body

    def _parse_response(self, payload: dict[str, Any], n: int) -> Generation:
        try:
            choices = sorted(payload["choices"], key=lambda choice: choice.get("index", 0))
            completions = tuple(self._completion(choice) for choice in choices)
        except (KeyError, TypeError, AttributeError) as exc:
            raise BackendResponseError(
                f"{self.url} answered without the expected choices ({type(exc).__name__}: {exc})", backend=self.name
            ) from exc
        if len(completions) != n:
            raise BackendResponseError(f"{self.url} returned {len(completions)} choices for n={n}", backend=self.name)
        usage = _usage(payload.get("usage"))
        return validated(Generation, completions=completions, usage=usage, model=payload.get("model"))

    def _completion(self, choice: dict[str, Any]) -> Completion:
        text = choice["message"]["content"] if self.endpoint == "chat" else choice["text"]
        if text is not None and not isinstance(text, str):
            raise TypeError(f"choice content is {type(text).__name__}, not a string")
        return validated(Completion, text=text or "", finish_reason=_finish_reason(choice.get("finish_reason")))


def _single_user_prompt(messages: Sequence[Message]) -> str:
    if len(messages) != 1 or messages[0].role != "user":
        raise ConfigurationError(
            "the completions endpoint sends raw text: pass render_prompt= to turn a multi-message chat into a prompt"
        )
    return messages[0].content


def _finish_reason(value: object) -> FinishReason:
    if value in ("stop", "length"):
        return value  # pyright: ignore[reportReturnType]
    return "other"


def _usage(raw: object) -> Usage:
    if not isinstance(raw, dict):
        return validated(Usage, requests=1)
    prompt = raw.get("prompt_tokens")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    completion = raw.get("completion_tokens")  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
    return validated(
        Usage,
        requests=1,
        prompt_tokens=prompt if isinstance(prompt, int) else None,
        completion_tokens=completion if isinstance(completion, int) else None,
    )
