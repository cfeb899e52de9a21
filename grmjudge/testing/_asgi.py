"""The small ASGI plumbing the fake servers share: types, body reading, JSON responses, lifespan."""

from __future__ import annotations

import json
import sys
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

ASGIMessage = MutableMapping[str, Any]
Scope = Mapping[str, Any]
Receive = Callable[[], Awaitable[ASGIMessage]]
Send = Callable[[ASGIMessage], Awaitable[None]]

_JSON_HEADERS = [(b"content-type", b"application/json")]


def word_count(text: str) -> int:
    """The fake tokenizer: whitespace-separated words, cheap and deterministic."""
    return len(text.split())


async def read_body(receive: Receive) -> bytes | None:
    """Collect every ``http.request`` chunk; ``None`` if the client disconnected first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_json(
    send: Send, status: int, payload: dict[str, Any], extra_headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Send ``payload`` as a complete JSON response."""
    data = json.dumps(payload, separators=(",", ":")).encode()
    headers = [*_JSON_HEADERS, (b"content-length", str(len(data)).encode()), *(extra_headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


async def lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown; the server holds no resources."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


ErrorBody = Callable[[str, str], dict[str, Any]]
"""Builds a server's error body from (message, error type)."""


async def serve_asgi(
    scope: Scope, receive: Receive, send: Send, http: Callable[[Scope, Receive, Send], Awaitable[None]]
) -> None:
    """The ASGI 3 entry point of a fake server: HTTP goes to ``http``; lifespan is acknowledged for uvicorn."""
    if scope["type"] == "http":
        await http(scope, receive, send)
    elif scope["type"] == "lifespan":
        await lifespan(receive, send)
    else:
        raise ValueError(f"unsupported ASGI scope type {scope['type']!r}")


async def route(
    scope: Scope, send: Send, methods: Mapping[str, str], error: ErrorBody, not_found_type: str
) -> str | None:
    """The request's path if ``methods`` allows its method there; else answers 404 or 405 and returns None."""
    path: str = scope["path"]
    allowed = methods.get(path)
    if allowed is None:
        await send_json(send, 404, error(f"no route for {path}", not_found_type))
        return None
    if scope["method"] != allowed:
        body = error(f"method {scope['method']} not allowed on {path}", "invalid_request_error")
        await send_json(send, 405, body, [(b"allow", allowed.encode())])
        return None
    return path


def serve_over_tcp(app: Callable[[Scope, Receive, Send], Awaitable[None]], host: str, port: int) -> None:
    """Serve ``app`` with uvicorn until interrupted; without uvicorn, exit 2 with the install hint.

    Only the TCP mode of the fake servers needs uvicorn (the ``testing`` extra); in-process use does not.
    """
    from grmjudge._optional import require
    from grmjudge.exceptions import MissingDependencyError

    try:
        uvicorn = require("uvicorn", extra="testing")
    except MissingDependencyError as exc:
        sys.stderr.write(f"error: {exc}\n")
        raise SystemExit(2) from None
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
