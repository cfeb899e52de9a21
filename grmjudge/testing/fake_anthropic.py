"""An in-process fake of Anthropic's Messages API for testing code that talks to Claude.

Like :mod:`grmjudge.testing.fake_openai` it is a bare ASGI 3 application (stdlib only), served in-process with
``httpx.ASGITransport(app=server)`` or over TCP with ``python -m grmjudge.testing.fake_anthropic --port 8124``
(needs ``uvicorn``).

It answers ``POST /v1/messages`` and ``GET /v1/models`` and checks requests the way the real API does: a missing
``x-api-key`` is a 401 and a missing ``anthropic-version`` a 400, and the body is validated field by field
(unknown fields included), all with Anthropic's error shape ``{"type": "error", "error": {"type", "message"}}``.
Each answer comes from a reply function; the default is the OpenAI fake's :func:`default_judgement`, whose scores
follow the responses' content, so tests can check that shuffled scores map back. Only text content is served.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast

from grmjudge.testing._asgi import (
    Receive,
    Scope,
    Send,
    read_body,
    route,
    send_json,
    serve_asgi,
    serve_over_tcp,
    word_count,
)
from grmjudge.testing.fake_openai import FakeRequest, Reply, default_judgement

_MESSAGES_PATH = "/v1/messages"
_MODELS_PATH = "/v1/models"
_ALLOWED_METHODS = {_MESSAGES_PATH: "POST", _MODELS_PATH: "GET"}
_FIELDS = frozenset(
    {"model", "max_tokens", "messages", "system", "temperature", "top_p", "top_k", "stop_sequences", "metadata"}
)
"""The top-level fields this fake understands; anything else is refused as the real API refuses unknown fields."""
_TEXT_BLOCK_FIELDS = frozenset({"type", "text", "cache_control"})


@dataclass(frozen=True)
class FakeAnthropicRequest(FakeRequest):
    """One Messages API request as the server received it (``body`` is the validated JSON)."""

    @property
    def prompt_text(self) -> str:
        """The last user turn's text (text blocks joined by newlines)."""
        turns = cast(list[dict[str, Any]], self.body["messages"])
        return next((text_of(t["content"]) for t in reversed(turns) if t["role"] == "user"), "")

    @property
    def system_text(self) -> str | None:
        """The top-level ``system`` text, if the request has one."""
        system = self.body.get("system")
        return None if system is None else text_of(system)


AnthropicReplyFn = Callable[[FakeAnthropicRequest, int], Reply | Awaitable[Reply]]
"""Called once per request with ``(request, 0)``: a text (``stop_reason`` ``"end_turn"``) or ``(text, stop_reason)``.

The index is always 0 (the Messages API has no ``n``); it is there so reply functions of the OpenAI fake fit.
"""


def text_of(content: str | list[dict[str, Any]]) -> str:
    """The text of validated content: the string itself, or its text blocks joined by newlines."""
    if isinstance(content, str):
        return content
    return "\n".join(cast(str, block["text"]) for block in content)


class _Refusal(Exception):
    """A request the real API would refuse; ``status`` and ``error_type`` are what it would answer."""

    def __init__(self, message: str, status: int = 400, error_type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type


def _error(message: str, error_type: str) -> dict[str, Any]:
    """An Anthropic-style error body."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _check_headers(headers: dict[str, str], api_key: str | None) -> None:
    """Require an API key (the configured one, if any) and an API version header."""
    key = headers.get("x-api-key")
    if not key:
        raise _Refusal("x-api-key header is required", 401, "authentication_error")
    if api_key is not None and key != api_key:
        raise _Refusal("invalid x-api-key", 401, "authentication_error")
    if not headers.get("anthropic-version"):
        raise _Refusal("anthropic-version: header is required")


def _check_text_content(value: object, where: str) -> str:
    """Require a string or a non-empty list of non-empty text blocks; returns the text."""
    if isinstance(value, str):
        return value
    if not isinstance(value, list) or not value:
        raise _Refusal(f"{where}: Input should be a valid string or a non-empty list of content blocks")
    for j, block in enumerate(cast(list[object], value)):
        if not isinstance(block, dict):
            raise _Refusal(f"{where}.{j}: Input should be a valid content block")
        fields = cast(dict[str, object], block)
        if fields.get("type") != "text":
            raise _Refusal(f"{where}.{j}.type: this fake serves only 'text' blocks, got {fields.get('type')!r}")
        extra = sorted(set(fields) - _TEXT_BLOCK_FIELDS)
        if extra:
            raise _Refusal(f"{where}.{j}.{extra[0]}: Extra inputs are not permitted")
        text = fields.get("text")
        if not isinstance(text, str):
            raise _Refusal(f"{where}.{j}.text: Input should be a valid string")
        if not text:
            raise _Refusal(f"{where}.{j}.text: text content blocks must be non-empty")
    return text_of(cast(list[dict[str, Any]], value))


def _check_messages(value: object) -> None:
    """Require a non-empty list of user/assistant turns that alternate, starting with the user."""
    if not isinstance(value, list) or not value:
        raise _Refusal("messages: Input should be a non-empty list")
    turns = cast(list[object], value)
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise _Refusal(f"messages.{i}: Input should be a valid dictionary")
        fields = cast(dict[str, object], turn)
        extra = sorted(set(fields) - {"role", "content"})
        if extra:
            raise _Refusal(f"messages.{i}.{extra[0]}: Extra inputs are not permitted")
        role = fields.get("role")
        if role == "system":
            raise _Refusal(
                f'messages.{i}.role: Unexpected role "system". The Messages API accepts a top-level `system` '
                'parameter, not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            raise _Refusal(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        expected = "user" if i % 2 == 0 else "assistant"
        if role != expected:
            if i == 0:
                raise _Refusal('messages: first message must use the "user" role')
            raise _Refusal(f'messages: roles must alternate between "user" and "assistant", got two "{role}" in a row')
        if "content" not in fields:
            raise _Refusal(f"messages.{i}.content: Field required")
        text = _check_text_content(fields["content"], f"messages.{i}.content")
        final_assistant = i == len(turns) - 1 and role == "assistant"
        if not text and not final_assistant:
            raise _Refusal(
                f"messages.{i}: all messages must have non-empty content "
                "except for the optional final assistant message"
            )


def _check_number(fields: dict[str, Any], key: str, low: float, high: float) -> None:
    """Require ``fields[key]``, when given, to be a number in ``[low, high]`` (booleans are not numbers)."""
    value = fields.get(key)
    if value is not None and (type(value) not in (int, float) or not low <= value <= high):
        raise _Refusal(f"{key}: must be a number between {low:g} and {high:g}, got {value!r}")


def _check_int(fields: dict[str, Any], key: str, low: int, *, required: bool = False) -> None:
    """Require ``fields[key]`` (when given, or always if ``required``) to be an integer >= ``low``."""
    if key not in fields:
        if required:
            raise _Refusal(f"{key}: Field required")
        return
    value = fields[key]
    if type(value) is not int or value < low:
        raise _Refusal(f"{key}: must be an integer >= {low}, got {value!r}")


def _parse_body(raw: bytes) -> dict[str, Any]:
    """Decode and validate a Messages API request body, raising :class:`_Refusal` on the first problem."""
    try:
        body: object = json.loads(raw)
    except ValueError:
        raise _Refusal("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _Refusal("the request body must be a JSON object")
    fields = cast(dict[str, Any], body)
    unknown = sorted(set(fields) - _FIELDS)
    if unknown:
        raise _Refusal(f"{unknown[0]}: Extra inputs are not permitted")
    if "model" not in fields:
        raise _Refusal("model: Field required")
    if not isinstance(fields["model"], str) or not fields["model"]:
        raise _Refusal("model: Input should be a non-empty string")
    _check_int(fields, "max_tokens", 1, required=True)
    if "messages" not in fields:
        raise _Refusal("messages: Field required")
    _check_messages(fields["messages"])
    if "system" in fields:
        _check_text_content(fields["system"], "system")
    _check_number(fields, "temperature", 0.0, 1.0)
    _check_number(fields, "top_p", 0.0, 1.0)
    _check_int(fields, "top_k", 0)
    stops = fields.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in cast(list[object], stops))
    ):
        raise _Refusal("stop_sequences: Input should be a list of strings")
    if "metadata" in fields and not isinstance(fields["metadata"], dict):
        raise _Refusal("metadata: Input should be a valid dictionary")
    return fields


def _input_tokens(request: FakeAnthropicRequest) -> int:
    """Words of the system text and of every turn (the fake tokenizer is whitespace splitting)."""
    turns = cast(list[dict[str, Any]], request.body["messages"])
    return word_count(request.system_text or "") + sum(word_count(text_of(t["content"])) for t in turns)


class FakeAnthropicServer:
    """A Messages API ASGI app whose answers come from a reply function.

    Attributes:
        requests: Every *valid* Messages request, in arrival order (recorded before the reply function runs).
            Refused requests, model listings and unknown paths are not recorded; empty when ``record`` is false.
    """

    def __init__(
        self,
        reply: AnthropicReplyFn | None = None,
        *,
        model: str = "fake-claude",
        api_key: str | None = None,
        record: bool = True,
        max_context_tokens: int | None = None,
    ) -> None:
        """Serve ``reply`` (default :func:`default_judgement`) under the model name ``model``.

        With ``api_key`` set, any other ``x-api-key`` is refused with 401; without it any non-empty key passes.
        Like the API, a reply longer than ``max_tokens`` words is cut and stops with ``"max_tokens"``, and with
        ``max_context_tokens`` a longer prompt is refused with a 400 ("prompt is too long").
        """
        self.reply: AnthropicReplyFn = reply or default_judgement
        self.model = model
        self.api_key = api_key
        self.record = record
        self.max_context_tokens = max_context_tokens
        self.requests: list[FakeAnthropicRequest] = []
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"FakeAnthropicServer(model={self.model!r})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point: HTTP requests and the lifespan protocol (so uvicorn starts cleanly)."""
        await serve_asgi(scope, receive, send, self._http)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one HTTP request, check its headers and send exactly one response."""
        path = await route(scope, send, _ALLOWED_METHODS, _error, "not_found_error")
        if path is None:
            return
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        raw = await read_body(receive)
        if raw is None:
            return  # the client went away; there is no one to answer
        try:
            _check_headers(headers, self.api_key)
            if path == _MODELS_PATH:
                await send_json(send, 200, self._models())
                return
            request = FakeAnthropicRequest(path=path, body=_parse_body(raw), headers=headers)
        except _Refusal as exc:
            await send_json(send, exc.status, _error(exc.message, exc.error_type))
            return
        status, payload = await self._answer(request)
        await send_json(send, status, payload)

    def _models(self) -> dict[str, Any]:
        entry = {"type": "model", "id": self.model, "display_name": self.model, "created_at": "2025-01-01T00:00:00Z"}
        return {"data": [entry], "has_more": False, "first_id": self.model, "last_id": self.model}

    async def _answer(self, request: FakeAnthropicRequest) -> tuple[int, dict[str, Any]]:
        """Record and answer one valid request; returns ``(status, JSON body)``."""
        if self.record:
            self.requests.append(request)
        prompt_tokens = _input_tokens(request)
        if self.max_context_tokens is not None and prompt_tokens > self.max_context_tokens:
            message = f"prompt is too long: {prompt_tokens} tokens > {self.max_context_tokens} maximum"
            return 400, _error(message, "invalid_request_error")
        try:
            result = self.reply(request, 0)
            reply: Reply = await result if isinstance(result, Awaitable) else result
        except Exception as exc:
            return 500, _error(type(exc).__name__, "api_error")
        text, stop_reason = (reply, "end_turn") if isinstance(reply, str) else reply
        words = text.split()
        if len(words) > request.body["max_tokens"]:  # like the API: cut at max_tokens
            text, stop_reason = " ".join(words[: request.body["max_tokens"]]), "max_tokens"
        return 200, {
            "id": f"msg_fake_{next(self._ids)}",
            "type": "message",
            "role": "assistant",
            "model": request.body["model"],
            "content": [{"type": "text", "text": text}] if text else [],
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": _input_tokens(request), "output_tokens": word_count(text)},
        }


def main() -> None:
    """Serve the default fake Messages API over TCP with uvicorn, quietly, for benchmarks."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve a fake Anthropic Messages API.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8124)
    parser.add_argument("--model", default="fake-claude")
    parser.add_argument("--api-key", default=None, help="refuse any other x-api-key (default: accept any)")
    parser.add_argument("--no-record", action="store_true", help="do not keep received requests in memory")
    args = parser.parse_args()
    server = FakeAnthropicServer(model=args.model, api_key=args.api_key, record=not args.no_record)
    serve_over_tcp(server, args.host, args.port)


if __name__ == "__main__":
    main()
