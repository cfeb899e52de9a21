"""A lean HTTP/1.1 client for JSON POSTs to plain ``http://`` servers, on keep-alive asyncio connections.

A judge on a fast local server (vLLM or SGLang on the same host or the cluster network) spends most of its
client CPU in the HTTP client: a request and its JSON reply cost about 330 microseconds of CPU through
aiohttp's ``ClientSession`` on the benchmark machine, about a third of that here. It does only what a GRM
request needs: one POST with a body, a reply framed by ``Content-Length``, chunked encoding or the end of the
connection, an optional gzip/deflate body, and a pool of keep-alive connections per origin. No redirects
(a 3xx is returned as it is), no proxies, no cookies; ``https://`` URLs and URLs with user info are left to
aiohttp (see [`H1Transport`][grmjudge.backends._h1.H1Transport]).

It runs only on grmjudge's own loop (``grmjudge._runtime``), which is asyncio's (or uvloop, where a host such as
Ray Serve installs uvloop's policy): that is why it uses asyncio's protocols directly.
"""

from __future__ import annotations

import asyncio
import zlib
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

MAX_HEADER_BYTES = 64 * 1024
"""A reply whose status line and headers take more than this is refused (no GRM server sends so much)."""

_NO_BODY_STATUSES = frozenset({204, 304})


class ProtocolError(Exception):
    """The server's bytes are not an HTTP/1.1 reply this client can read (the message quotes none of them)."""


class ConnectionDropped(Exception):
    """The connection closed before the whole reply arrived; ``started`` says whether any of it had."""

    def __init__(self, started: bool) -> None:
        super().__init__("the server closed the connection " + ("mid-reply" if started else "before replying"))
        self.started = started


@dataclass(frozen=True)
class Reply:
    """A whole reply: status, body (decoded from gzip/deflate if it was), and the ``Retry-After`` header."""

    status: int
    body: bytes
    retry_after: str | None


@dataclass(frozen=True)
class Target:
    """Where a URL's request goes: the origin's host and port, and the request's head up to its length."""

    host: str
    port: int
    head: bytes
    """``POST path HTTP/1.1`` and the ``Host`` header, with the line break after it."""


@lru_cache(maxsize=256)
def plain_target(url: str) -> Target | None:
    """The request target of a plain ``http://`` URL without user info; ``None`` for any other URL."""
    parts = urlsplit(url)
    if parts.scheme != "http" or parts.hostname is None or "@" in parts.netloc:
        return None
    port = parts.port or 80
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    authority = host if port == 80 else f"{host}:{port}"
    head = f"POST {path} HTTP/1.1\r\nHost: {authority}\r\n".encode("ascii")
    return Target(parts.hostname, port, head)


def encode_headers(headers: Mapping[str, str]) -> bytes:
    """The caller's headers as HTTP/1.1 header lines; a line break in a name or value is refused."""
    lines: list[str] = []
    for name, value in headers.items():
        if any(c in name or c in value for c in "\r\n\0"):
            raise ValueError(f"the header {name!r} holds a line break or NUL, which would split the request")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


def _decompress(body: bytes, encoding: str) -> bytes:
    """A gzip or deflate body, decoded (deflate with or without its zlib header, as servers differ)."""
    for wbits in (47, -15):  # 47: a gzip or zlib header, detected; -15: raw deflate
        try:
            return zlib.decompress(body, wbits=wbits)
        except zlib.error:
            continue
    raise ProtocolError(f"the {encoding} body does not decompress")


class _Connection(asyncio.Protocol):
    """One keep-alive connection: sends a request, gathers its reply, reports whether it can be reused."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.open = False
        self.reusable = True
        self._buffer = bytearray()
        self._waiter: asyncio.Future[None] | None = None
        self._eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not asyncio.Transport subclasses
        self.open = True

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        self._wake()

    def eof_received(self) -> bool:
        self._eof = True
        self.open = False
        self._wake()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self.open = False
        self._wake()

    def close(self) -> None:
        self.open = False
        if self.transport is not None:
            self.transport.close()

    async def request(self, data: bytes) -> Reply:
        """Send the request bytes and read the reply (skipping any 1xx interim replies)."""
        if self._buffer:  # bytes nobody asked for: the server is out of step with us
            self.reusable = False
            raise ProtocolError("the server sent bytes before the request")
        if self.transport is None:
            raise ConnectionDropped(started=False)
        self.transport.write(data)
        while True:
            status, headers = await self._read_head()
            if not 100 <= status < 200:
                break
        body = await self._read_body(status, headers)
        if headers.get("connection", "").lower() == "close" or self._buffer:  # bytes past the reply: out of step
            self.reusable = False
        encoding = headers.get("content-encoding", "identity").lower()
        if encoding in ("gzip", "deflate"):
            body = _decompress(body, encoding)
        elif encoding != "identity":
            raise ProtocolError("the body has a content encoding this client does not decode")
        return Reply(status, body, headers.get("retry-after"))

    async def _read_head(self) -> tuple[int, dict[str, str]]:
        end = await self._until(b"\r\n\r\n", limit=MAX_HEADER_BYTES, started=False)
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status_line, *lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        if not version.startswith("HTTP/1."):
            self.reusable = False
            raise ProtocolError("the reply does not start with an HTTP/1.x status line")
        code = rest[:3]
        if not code.isdigit():
            self.reusable = False
            raise ProtocolError("the status line has no status code")
        if version == "HTTP/1.0":
            self.reusable = False
        headers: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition(":")
            if not sep:
                self.reusable = False
                raise ProtocolError("a header line has no colon")
            key = name.strip().lower()
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
        return int(code), headers

    async def _read_body(self, status: int, headers: dict[str, str]) -> bytes:
        if status in _NO_BODY_STATUSES:
            return b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return await self._read_chunked()
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                self.reusable = False
                raise ProtocolError("the Content-Length is not a number")
            return await self._take(int(length))
        self.reusable = False  # framed by the end of the connection
        while not self._eof:
            await self._wait()
        body = bytes(self._buffer)
        self._buffer.clear()
        return body

    async def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            end = await self._until(b"\r\n", limit=1024, started=True)
            size_text = bytes(self._buffer[:end]).split(b";", 1)[0].strip()
            del self._buffer[: end + 2]
            try:
                size = int(size_text, 16)
            except ValueError:
                self.reusable = False
                raise ProtocolError("a chunk size is not hexadecimal") from None
            if size == 0:
                while True:  # trailers, then the empty line that ends them
                    end = await self._until(b"\r\n", limit=MAX_HEADER_BYTES, started=True)
                    del self._buffer[: end + 2]
                    if end == 0:
                        return b"".join(parts)
            parts.append(await self._take(size))
            if bytes(await self._take(2)) != b"\r\n":
                self.reusable = False
                raise ProtocolError("a chunk not followed by a line break")

    async def _take(self, count: int) -> bytes:
        while len(self._buffer) < count:
            if self._eof:
                self.reusable = False
                raise ConnectionDropped(started=True)
            await self._wait()
        taken = bytes(self._buffer[:count])
        del self._buffer[:count]
        return taken

    async def _until(self, marker: bytes, *, limit: int, started: bool) -> int:
        """The index of ``marker`` in the buffer, waiting for more bytes until it arrives."""
        while True:
            found = self._buffer.find(marker)
            if found >= 0:
                return found
            if len(self._buffer) > limit:
                self.reusable = False
                raise ProtocolError(f"no end of line within {limit} bytes")
            if self._eof:
                self.reusable = False
                raise ConnectionDropped(started=started or bool(self._buffer))
            await self._wait()

    async def _wait(self) -> None:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class H1Pool:
    """Keep-alive connections per origin, at most ``max_connections`` requests in flight in all."""

    def __init__(self, *, max_connections: int) -> None:
        self._slots = asyncio.Semaphore(max_connections)
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}
        self._closed = False

    async def post(self, target: Target, data: bytes, headers: bytes) -> Reply:
        """Send one POST; a reused connection the server closed before replying is replaced once."""
        request = b"".join((target.head, headers, b"content-length: %d\r\n\r\n" % len(data), data))
        async with self._slots:
            connection, reused = await self._connection(target)
            try:
                reply = await connection.request(request)
            except ConnectionDropped as exc:
                connection.close()
                if not reused or exc.started:
                    raise
                connection, _ = await self._connect(target)  # the server closed an idle connection as we sent
                try:
                    reply = await connection.request(request)
                except BaseException:
                    connection.close()
                    raise
            except BaseException:
                connection.close()  # cancelled or failed mid-reply: its stream position is unknown
                raise
            if connection.reusable and connection.open and not self._closed:
                self._idle.setdefault((target.host, target.port), deque()).append(connection)
            else:
                connection.close()
            return reply

    async def aclose(self) -> None:
        """Close every idle connection; connections in use close when their request ends."""
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()

    async def _connection(self, target: Target) -> tuple[_Connection, bool]:
        idle = self._idle.get((target.host, target.port))
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to have timed out on the server
            if connection.open:
                return connection, True
            connection.close()
        return await self._connect(target)

    async def _connect(self, target: Target) -> tuple[_Connection, bool]:
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, target.host, target.port)
        return connection, False
