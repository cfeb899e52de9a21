"""Reading bodies and answering: the size limit, JSON decoding, NDJSON streams and cancellation on disconnect."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from grmjudge._tasks import task_group
from grmjudge.serve.errors import RequestError

T = TypeVar("T")

Write = Callable[[bytes], Awaitable[None]]


class ClientGone(Exception):
    """The client disconnected before its answer was ready; its judge call was cancelled."""


async def read_json(request: Request, limit: int) -> Any:
    """The body as JSON, read up to ``limit`` bytes (413 beyond, 400 if it is not JSON)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):
        raise RequestError(400, "InvalidJSON", "the body is not a JSON document") from None


def _too_large(limit: int) -> RequestError:
    return RequestError(413, "BodyTooLarge", f"the body is larger than {limit:,} bytes")


async def unless_disconnected(receive: Receive, work: Callable[[], Awaitable[T]]) -> T:
    """``await work()``, cancelled if the client disconnects first (then `ClientGone`).

    Called once the body has been read, so the next ASGI message can only be the disconnect.
    """
    outcome: list[T] = []
    async with task_group() as tg:

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(watch)
        outcome.append(await work())
        tg.cancel_scope.cancel()
    if not outcome:
        raise ClientGone
    return outcome[0]


class NDJSONResponse(Response):
    """A 200 whose lines ``produce(write)`` writes as they are ready; a disconnect cancels the producer."""

    media_type = "application/x-ndjson"

    def __init__(self, produce: Callable[[Write], Awaitable[None]]) -> None:
        super().__init__(media_type=self.media_type)
        self.produce = produce

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(k, v) for k, v in self.raw_headers if k != b"content-length"]
        await send({"type": "http.response.start", "status": 200, "headers": headers})

        async def write(line: bytes) -> None:
            await send({"type": "http.response.body", "body": line, "more_body": True})

        try:
            await unless_disconnected(receive, lambda: self.produce(write))
        except ClientGone:
            return
        with anyio.CancelScope(shield=True):
            await send({"type": "http.response.body", "body": b"", "more_body": False})
