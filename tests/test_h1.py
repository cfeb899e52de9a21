"""The lean HTTP/1.1 client (``grmjudge/backends/_h1.py``) against real TCP servers that reply byte by byte.

Each server below speaks a scripted reply: framed by Content-Length, chunked, gzip, HTTP/1.0 to the end of
the connection, after an interim 100, or broken in one way or another. Where aiohttp (the transport for
``https://``) reads the reply too, both transports must give the same status, body and ``Retry-After``, or the
same error type: the lean client is a drop-in for aiohttp on what GRM servers send.
"""

from __future__ import annotations

import contextlib
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import anyio
import anyio.abc
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from grmjudge.backends.http import AiohttpTransport, LeanTransport, RawReply, Transport
from grmjudge.exceptions import BackendConnectionError, BackendTimeoutError

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "uvloop"])
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, bool]]:
    """Plain asyncio, and uvloop (which hosts such as Ray Serve install): their transports differ."""
    if request.param == "uvloop":
        pytest.importorskip("uvloop", reason="uvloop is not installed (uvicorn's and Ray's extras bring it)")
    return "asyncio", {"use_uvloop": request.param == "uvloop"}


Reply = Callable[[int], bytes]
"""The bytes a server sends for its n-th request (counted from 0 over the server's life)."""


def ok(body: bytes, *, extra: str = "") -> bytes:
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        + body
    )


def chunked(*parts: bytes) -> bytes:
    chunks = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) for p in parts)
    return b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\nX-Trailer: t\r\n\r\n"


@dataclass
class ScriptedServer:
    """A TCP server that reads each request whole, then writes ``reply(n)`` and maybe closes (or holds the
    connection without a word, or closes it unanswered)."""

    reply: Reply
    close_after_reply: bool = False
    answer: bool = True
    hold: bool = False
    answers_per_connection: int | None = None
    connections: int = 0
    requests: int = 0
    bodies: list[bytes] = field(default_factory=list[bytes])

    async def handle(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        answered = 0
        reader = BufferedByteReceiveStream(stream)
        async with stream:
            with contextlib.suppress(anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
                while True:
                    head = await reader.receive_until(b"\r\n\r\n", 65536)
                    lines = head.lower().split(b"\r\n")
                    length = next(int(line.split(b":")[1]) for line in lines if line.startswith(b"content-length"))
                    self.bodies.append(await reader.receive_exactly(length))
                    n, self.requests = self.requests, self.requests + 1
                    if self.hold:
                        await anyio.sleep_forever()
                    if not self.answer or answered == self.answers_per_connection:
                        return
                    await stream.send(self.reply(n))
                    answered += 1
                    if self.close_after_reply:
                        return


Start = Callable[[ScriptedServer], Awaitable[str]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Serves scripted servers for the test; every listener and connection is closed at its end."""
    async with anyio.create_task_group() as tg:

        async def serve(script: ScriptedServer) -> str:
            listener = await anyio.create_tcp_listener(local_host="127.0.0.1")

            async def run() -> None:
                async with listener:
                    await listener.serve(script.handle)

            tg.start_soon(run)
            return f"http://127.0.0.1:{listener.extra(anyio.abc.SocketAttribute.local_port)}/v1/chat/completions"

        yield serve
        tg.cancel_scope.cancel()


def transports(timeout: float = 10.0) -> list[tuple[str, Transport]]:
    """The lean client, and aiohttp forced onto the same plain-HTTP URL."""
    return [
        ("lean", LeanTransport(timeout=timeout, max_connections=4)),
        ("aiohttp", AiohttpTransport(timeout=timeout, max_connections=4)),
    ]


async def post_both(url: str, body: bytes = b'{"n": 1}') -> dict[str, RawReply]:
    replies: dict[str, RawReply] = {}
    for name, transport in transports():
        try:
            replies[name] = await transport.post(url, body, {"content-type": "application/json"}, backend="t")
        finally:
            await transport.aclose()
    return replies


JSON = b'{"choices": [{"message": {"content": "Scores: \\\\boxed{7, 3}"}}]}'


@pytest.mark.parametrize(
    "reply",
    [
        ok(JSON),
        chunked(JSON[:10], JSON[10:]),
        ok(gzip.compress(JSON), extra="Content-Encoding: gzip\r\n"),
        ok(zlib.compress(JSON), extra="Content-Encoding: deflate\r\n"),
        b"HTTP/1.1 100 Continue\r\n\r\n" + ok(JSON),
        b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy",
        b"HTTP/1.1 204 No Content\r\n\r\n",
    ],
    ids=["content-length", "chunked", "gzip", "deflate", "interim-100", "503-retry-after", "204"],
)
async def test_both_transports_read_the_same_reply(start: Start, reply: bytes) -> None:
    script = ScriptedServer(lambda n: reply)
    replies = await post_both(await start(script))
    assert replies["lean"] == replies["aiohttp"]
    assert replies["lean"].status in (200, 503, 204)
    assert script.bodies == [b'{"n": 1}', b'{"n": 1}']


async def test_a_reply_framed_by_the_end_of_the_connection(start: Start) -> None:
    script = ScriptedServer(lambda n: b"HTTP/1.0 200 OK\r\n\r\n" + JSON, close_after_reply=True)
    replies = await post_both(await start(script))
    assert replies["lean"] == replies["aiohttp"] == RawReply(200, JSON, None)


async def test_keep_alive_reuses_one_connection(start: Start) -> None:
    script = ScriptedServer(lambda n: ok(b'{"n": %d}' % n))
    url = await start(script)
    transport = LeanTransport(timeout=10, max_connections=4)
    try:
        bodies = [(await transport.post(url, b"{}", {}, backend="t")).body for _ in range(5)]
    finally:
        await transport.aclose()
    assert bodies == [b'{"n": %d}' % n for n in range(5)]
    assert script.connections == 1


async def test_a_connection_the_server_closed_while_idle_is_replaced(start: Start) -> None:
    """The server closes after each reply without saying so: the next request finds out and goes again."""
    script = ScriptedServer(lambda n: ok(b'{"n": %d}' % n), close_after_reply=True)
    url = await start(script)
    transport = LeanTransport(timeout=10, max_connections=4)
    try:
        first = await transport.post(url, b"{}", {}, backend="t")
        await anyio.sleep(0.05)  # the close reaches the client
        second = await transport.post(url, b"{}", {}, backend="t")
    finally:
        await transport.aclose()
    assert (first.body, second.body) == (b'{"n": 0}', b'{"n": 1}')
    assert script.connections == 2 and script.requests == 2  # no request sent twice


async def test_a_reused_connection_closed_as_the_request_went_out_is_replaced_once(start: Start) -> None:
    """The server reads the request on the kept-alive connection, then closes it without a word: the request goes
    again on a fresh connection (a GRM request has no side effect but compute). A fresh connection that does
    the same is an error (see the broken replies below)."""
    script = ScriptedServer(lambda n: ok(b'{"n": %d}' % n), answers_per_connection=1)
    url = await start(script)
    transport = LeanTransport(timeout=10, max_connections=4)
    try:
        first = await transport.post(url, b"{}", {}, backend="t")
        second = await transport.post(url, b"{}", {}, backend="t")
    finally:
        await transport.aclose()
    assert (first.body, second.body) == (b'{"n": 0}', b'{"n": 2}')
    assert script.connections == 2 and script.requests == 3


async def test_concurrent_requests_are_capped_at_max_connections(start: Start) -> None:
    script = ScriptedServer(lambda n: ok(b"{}"))
    url = await start(script)
    transport = LeanTransport(timeout=10, max_connections=3)
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(lambda: transport.post(url, b"{}", {}, backend="t"))
    finally:
        await transport.aclose()
    assert script.requests == 30
    assert script.connections == 3


@pytest.mark.parametrize(
    ("script", "error", "message"),
    [
        (ScriptedServer(lambda n: b"", answer=False), BackendConnectionError, "before replying"),
        (ScriptedServer(lambda n: b"GARBAGE, NOT HTTP\r\n\r\n"), BackendConnectionError, "status line"),
        (ScriptedServer(lambda n: ok(JSON)[:-5], close_after_reply=True), BackendConnectionError, "mid-reply"),
        (ScriptedServer(lambda n: b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000), BackendConnectionError, "bytes"),
        (ScriptedServer(lambda n: ok(b"not gzip", extra="Content-Encoding: gzip\r\n")), BackendConnectionError, "gzip"),
    ],
    ids=["closed-unanswered", "not-http", "cut-body", "endless-headers", "bad-gzip"],
)
async def test_broken_replies_are_connection_errors_from_both_transports(
    start: Start, script: ScriptedServer, error: type[Exception], message: str
) -> None:
    url = await start(script)
    for name, transport in transports():
        try:
            with pytest.raises(error) as caught:
                await transport.post(url, b"{}", {}, backend="t")
        finally:
            await transport.aclose()
        assert type(caught.value) is error, name
        if name == "lean":
            assert message in str(caught.value)


async def test_a_silent_server_times_out(start: Start) -> None:
    url = await start(ScriptedServer(lambda n: b"", hold=True))
    transport = LeanTransport(timeout=0.2, max_connections=2)
    try:
        with pytest.raises(BackendTimeoutError, match="timed out"):
            await transport.post(url, b"{}", {}, backend="t")
    finally:
        await transport.aclose()


async def test_a_header_with_a_line_break_is_refused_before_sending(start: Start) -> None:
    script = ScriptedServer(lambda n: ok(b"{}"))
    url = await start(script)
    transport = LeanTransport(timeout=10, max_connections=2)
    try:
        with pytest.raises(ValueError, match="'authorization'") as caught:
            await transport.post(url, b"{}", {"authorization": "Bearer sk-1\r\nX-Evil: 1"}, backend="t")
    finally:
        await transport.aclose()
    assert "sk-1" not in str(caught.value)
    assert script.requests == 0
