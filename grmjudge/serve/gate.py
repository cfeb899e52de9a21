"""The ASGI layer in front of every route: request ids, API keys, the bounded queue, access logs and metrics.

Written as plain ASGI (not Starlette's ``BaseHTTPMiddleware``) so streamed answers and cancellation on a client
disconnect pass through untouched.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from datetime import UTC, datetime
from typing import Any

from grmjudge.serve.auth import key_accepted, presented_key
from grmjudge.serve.errors import RequestError
from grmjudge.serve.metrics import Metrics

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = logging.getLogger("grmjudge.serve.access")

OPEN_PATHS = frozenset({"/healthz"})
"""Answered without a key: a liveness probe says nothing about the judge."""

_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


class Gate:
    """Wraps the app: checks the key, admits judging requests up to ``max_queue``, logs and counts every answer.

    ``routes`` names the paths counted under their own label (others count as ``other``); ``queued`` the ones
    that take a place in the queue.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        api_keys: tuple[str, ...],
        routes: frozenset[str],
        queued: frozenset[str],
        max_queue: int,
        retry_after: int,
        metrics: Metrics,
    ) -> None:
        self.app = app
        self.api_keys = api_keys
        self.routes = routes
        self.queued = queued
        self.max_queue = max_queue
        self.retry_after = retry_after
        self.metrics = metrics
        self.depth = 0
        """Judging requests admitted and not yet answered."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        request_id = given if _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        status = 499  # the client went away before an answer started
        path: str = scope["path"]

        async def tagged_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        queued = path in self.queued and scope["method"] == "POST"
        try:
            refusal = self._refusal(path, headers, queued)
            if refusal is not None:
                await _send_error(tagged_send, refusal)
                return
            if queued:
                self.depth += 1
            try:
                await self.app(scope, receive, tagged_send)
            except Exception:  # Starlette has answered 500 and re-raises; the error is logged, not the traceback
                if status == 499:
                    await _send_error(tagged_send, RequestError(500, "InternalError", "the service failed"))
            finally:
                if queued:
                    self.depth -= 1
        finally:
            seconds = time.perf_counter() - started
            route = path if path in self.routes else "other"
            self.metrics.observe_request(route, status, seconds)
            access_log.info(
                json.dumps(
                    {
                        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "client": (scope.get("client") or ("", 0))[0],
                    }
                )
            )

    def _refusal(self, path: str, headers: dict[str, str], queued: bool) -> RequestError | None:
        if self.api_keys and path not in OPEN_PATHS:
            if not key_accepted(presented_key(headers.get("authorization")), self.api_keys):
                return RequestError(
                    401,
                    "Unauthorized",
                    "a valid API key is needed: Authorization: Bearer KEY",
                    headers={"www-authenticate": 'Bearer realm="grmjudge"'},
                )
        if queued and self.depth >= self.max_queue:
            return RequestError(
                429,
                "QueueFull",
                f"{self.depth} requests are being judged, the most this service queues; retry after the pause",
                headers={"retry-after": str(self.retry_after)},
            )
        return None


async def _send_error(send: Send, error: RequestError) -> None:
    body = json.dumps(error.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.encode("latin-1"), v.encode("latin-1")) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
