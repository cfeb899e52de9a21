"""An in-process OpenAI-compatible server for testing code that talks to a GRM.

It is a bare ASGI 3 application (stdlib only), so it costs nothing to import and can be served two ways:

* in-process, with no sockets: ``httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://fake")``;
* over TCP for benchmarks: ``python -m grmjudge.testing.fake_openai --port 8123`` (needs ``uvicorn``).

It answers ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions``, validates request
bodies the way a real server does (400 with an OpenAI-style error), and produces each choice by calling a reply
function. The default reply, :func:`default_judgement`, is a well-formed judgement whose scores depend on the
length of each response in the prompt, so tests can check that scores of shuffled responses map back correctly.
"""

from __future__ import annotations

import itertools
import json
import re
import time
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

Reply = str | tuple[str, str]
"""A choice's text, or ``(text, finish_reason)``; a bare text finishes with ``"stop"``."""


_CHAT_PATH = "/v1/chat/completions"
_COMPLETIONS_PATH = "/v1/completions"
_MODELS_PATH = "/v1/models"
_ALLOWED_METHODS = {_CHAT_PATH: "POST", _COMPLETIONS_PATH: "POST", _MODELS_PATH: "GET"}

# One block per response, matched as whole lines so neutralised delimiters inside a response cannot fool it.
_RESPONSE_BLOCK = re.compile(
    r"^\[The Begin of Response((?: \d+)?)\]\n(.*?)\n\[The End of Response\1\]$", re.MULTILINE | re.DOTALL
)


@dataclass(frozen=True)
class FakeRequest:
    """One generation request as the server received it."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def prompt_text(self) -> str:
        """The last user message's content (chat), or the prompt string (completions)."""
        if self.path == _COMPLETIONS_PATH:
            return cast(str, self.body["prompt"])
        messages = cast(list[dict[str, str]], self.body["messages"])
        return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


ReplyFn = Callable[[FakeRequest, int], Reply | Awaitable[Reply]]
"""Called once per choice with ``(request, choice index 0..n-1)``; may be sync or async."""


class _InvalidRequest(Exception):
    """A request body that a real server would reject with 400."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def default_judgement(request: FakeRequest, index: int) -> str:
    """A deterministic, well-formed judgement: response i scores ``1 + len(text_i) % 10``.

    Scores follow the responses' content, not their position, so a caller that shuffles responses
    between samples must map the scores back to get the same totals. Without numbered response
    blocks the one score comes from the unnumbered block, or from the whole prompt if there is none.
    """
    del index  # every choice gives the same judgement
    text = request.prompt_text
    blocks = cast(list[tuple[str, str]], _RESPONSE_BLOCK.findall(text))
    numbered = sorted((int(label), len(body)) for label, body in blocks if label)
    if numbered:
        lengths = [length for _, length in numbered]
    else:
        lengths = [len(blocks[0][1]) if blocks else len(text)]
    scores = ", ".join(str(1 + length % 10) for length in lengths)
    return f"Specific Criteria: Fake criteria (Weight: 100%).\nAnalysis: Fake analysis.\nScores: \\boxed{{{scores}}}"


def _check_count(body: dict[str, Any], key: str) -> None:
    """Require ``body[key]``, when given, to be an int >= 1 (``true`` is not an int here, as in JSON)."""
    value = body.get(key)
    if value is not None and (type(value) is not int or value < 1):
        raise _InvalidRequest(f"'{key}' must be an integer >= 1, got {value!r}", key)


def _check_temperature(body: dict[str, Any]) -> None:
    """Require ``temperature``, when given, to be a number in [0, 2] like the OpenAI API."""
    value = body.get("temperature")
    if value is None:
        return
    if type(value) not in (int, float) or not 0 <= value <= 2:
        raise _InvalidRequest(f"'temperature' must be a number between 0 and 2, got {value!r}", "temperature")


def _check_messages(body: dict[str, Any]) -> None:
    """Require a non-empty list of ``{"role": str, "content": str}`` messages."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _InvalidRequest("'messages' must be a non-empty list", "messages")
    for i, message in enumerate(cast(list[Any], messages)):
        if not isinstance(message, dict):
            raise _InvalidRequest(f"messages[{i}] must be an object", "messages")
        fields = cast(dict[str, Any], message)
        if not isinstance(fields.get("role"), str) or not isinstance(fields.get("content"), str):
            raise _InvalidRequest(f"messages[{i}] must have a string 'role' and a string 'content'", "messages")


def _parse_body(path: str, raw: bytes) -> dict[str, Any]:
    """Decode and validate a generation request body, raising :class:`_InvalidRequest` on the first problem."""
    try:
        body: object = json.loads(raw)
    except ValueError:
        raise _InvalidRequest("the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise _InvalidRequest("the request body must be a JSON object")
    fields = cast(dict[str, Any], body)
    if not isinstance(fields.get("model"), str) or not fields["model"]:
        raise _InvalidRequest("'model' is required", "model")
    if path == _CHAT_PATH:
        _check_messages(fields)
    elif not isinstance(fields.get("prompt"), str):
        raise _InvalidRequest("'prompt' must be a string", "prompt")
    _check_count(fields, "n")
    _check_count(fields, "max_tokens")
    _check_temperature(fields)
    return fields


def _prompt_tokens(request: FakeRequest) -> int:
    """Tokens of the whole prompt: every message for chat, the prompt string for completions."""
    if request.path == _COMPLETIONS_PATH:
        return word_count(request.prompt_text)
    return sum(word_count(m["content"]) for m in cast(list[dict[str, str]], request.body["messages"]))


def _error(message: str, error_type: str, param: str | None = None) -> dict[str, Any]:
    """An OpenAI-style error body."""
    return {"error": {"message": message, "type": error_type, "param": param}}


class FakeOpenAIServer:
    """An OpenAI-compatible ASGI app whose completions come from a reply function.

    Attributes:
        requests: Every *valid* generation request, in arrival order (recorded before the reply
            function runs, so a request whose reply raised is still listed). Rejected bodies, model
            listings and unknown paths are not recorded. Stays empty when ``record`` is false.
    """

    def __init__(
        self,
        reply: ReplyFn | None = None,
        *,
        model: str = "fake-grm",
        record: bool = True,
        max_model_len: int | None = None,
    ) -> None:
        """Serve ``reply`` (default [`default_judgement`][grmjudge.testing.fake_openai.default_judgement]) as ``model``.

        Like a real server, a reply longer than the request's ``max_tokens`` is cut to that many words and
        finishes with ``"length"``, and with ``max_model_len`` a prompt whose words plus ``max_tokens`` exceed
        it is refused with a 400. ``record=False`` keeps ``requests`` empty, so a long benchmark run does not
        grow memory.
        """
        self.reply: ReplyFn = reply or default_judgement
        self.model = model
        self.record = record
        self.max_model_len = max_model_len
        self.requests: list[FakeRequest] = []
        self._ids = itertools.count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The ASGI 3 entry point: HTTP requests and the lifespan protocol (so uvicorn starts cleanly)."""
        await serve_asgi(scope, receive, send, self._http)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route one HTTP request and send exactly one response."""
        path = await route(scope, send, _ALLOWED_METHODS, _error, "invalid_request_error")
        if path is None:
            return
        if path == _MODELS_PATH:
            await send_json(send, 200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
            return
        raw = await read_body(receive)
        if raw is None:
            return  # the client went away; there is no one to answer
        status, payload = await self._generate(scope, path, raw)
        await send_json(send, status, payload)

    async def _generate(self, scope: Scope, path: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        """Validate, record and answer one generation request; returns ``(status, JSON body)``."""
        try:
            body = _parse_body(path, raw)
        except _InvalidRequest as exc:
            return 400, _error(exc.message, "invalid_request_error", exc.param)
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        request = FakeRequest(path=path, body=body, headers=headers)
        if self.record:
            self.requests.append(request)
        too_long = self._context_error(request)
        if too_long is not None:
            return 400, _error(too_long, "invalid_request_error", "messages" if path == _CHAT_PATH else "prompt")
        try:
            replies = [await self._reply(request, i) for i in range(body.get("n") or 1)]
        except Exception as exc:
            return 500, _error(type(exc).__name__, "server_error")
        return 200, self._completion(request, replies)

    async def _reply(self, request: FakeRequest, index: int) -> tuple[str, str]:
        """Call the reply function (sync or async) and normalise its answer to ``(text, finish_reason)``."""
        result = self.reply(request, index)
        reply: Reply = await result if isinstance(result, Awaitable) else result
        text, finish = (reply, "stop") if isinstance(reply, str) else reply
        limit = request.body.get("max_tokens")
        words = text.split()
        if limit is not None and len(words) > limit:
            return " ".join(words[:limit]), "length"
        return text, finish

    def _context_error(self, request: FakeRequest) -> str | None:
        """The refusal vLLM gives a prompt that, with its ``max_tokens``, does not fit the context; else None."""
        if self.max_model_len is None:
            return None
        wanted = _prompt_tokens(request) + (request.body.get("max_tokens") or 0)
        if wanted <= self.max_model_len:
            return None
        return (
            f"This model's maximum context length is {self.max_model_len} tokens. However, you requested "
            f"{wanted} tokens. Please reduce the length of the messages or completion."
        )

    def _completion(self, request: FakeRequest, replies: list[tuple[str, str]]) -> dict[str, Any]:
        """The 200 body: one choice per reply, plus word-count usage."""
        chat = request.path == _CHAT_PATH
        choices = [
            {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
            if chat
            else {"index": i, "text": text, "finish_reason": finish}
            for i, (text, finish) in enumerate(replies)
        ]
        prompt_tokens = _prompt_tokens(request)
        completion_tokens = sum(word_count(text) for text, _ in replies)
        return {
            "id": f"{'chatcmpl' if chat else 'cmpl'}-fake-{next(self._ids)}",
            "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()),
            "model": request.body["model"],
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def main() -> None:
    """Serve the default fake GRM over TCP with uvicorn, quietly, for benchmarks."""
    import argparse

    parser = argparse.ArgumentParser(description="Serve a fake OpenAI-compatible GRM.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8123)
    parser.add_argument("--model", default="fake-grm")
    parser.add_argument("--no-record", action="store_true", help="do not keep received requests in memory")
    args = parser.parse_args()
    server = FakeOpenAIServer(model=args.model, record=not args.no_record)
    serve_over_tcp(server, args.host, args.port)


if __name__ == "__main__":
    main()
