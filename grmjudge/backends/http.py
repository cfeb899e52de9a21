"""The HTTP layer shared by every HTTP backend and scorer: one client type, its retry policy, error mapping.

By default requests to plain ``http://`` servers go through grmjudge's lean HTTP/1.1 client (``_h1.py``), and
all others (``https://``, user info in the URL) through an aiohttp session. Measured on the judge workload
(``benchmarks/overhead.py --breakdown``), httpx costs about three times aiohttp's client CPU per request even
on the ``httpx-aiohttp`` transport, and its own connection pool is slower still (encode/httpx#3215). An
``httpx.AsyncClient`` handed in by the caller (tests on ``MockTransport``/``ASGITransport``, proxies,
custom TLS) is used as is.
Retries go through tenacity, entered only after a first attempt fails, with an injectable sleep.
The keys in the request headers are redacted here from whatever a server sends back (every JSON string, error
bodies), before any judge, cache or caller sees it.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field
from tenacity import AsyncRetrying, RetryCallState, stop_after_attempt

from grmjudge._redact import Redactor, header_secrets, redact_library_logs
from grmjudge._runtime import runs_on_runtime, runtime
from grmjudge.backends._h1 import ConnectionDropped, H1Pool, ProtocolError, encode_headers, plain_target
from grmjudge.backends._replicas import ReplicaPool
from grmjudge.backends.limits import RateLimits, RequestGate, current_retry_budget
from grmjudge.backends.urls import masked_url, url_secrets
from grmjudge.exceptions import (
    AuthenticationError,
    BackendConnectionError,
    BackendError,
    BackendResponseError,
    BackendStatusError,
    BackendTimeoutError,
    RateLimitError,
    ServerError,
)

if TYPE_CHECKING:
    import aiohttp
    import httpx

Sleep = Callable[[float], Awaitable[None]]

_BODY_EXCERPT = 500
_UNREADABLE = object()


class RetryPolicy(BaseModel):
    """Transport retries for one backend request.

    Connection errors, timeouts and 408/409/429/5xx are retried with exponential, jittered backoff; a server's
    ``Retry-After`` is honoured up to ``max_retry_after`` seconds. Other 4xx answers are not retried.
    ``sleep`` replaces ``anyio.sleep`` (tests inject a recorder instead of waiting).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_retries: int = Field(default=2, ge=0)
    initial_backoff: float = Field(default=0.5, ge=0.0)
    max_backoff: float = Field(default=8.0, ge=0.0)
    max_retry_after: float = Field(default=60.0, ge=0.0)
    jitter: bool = True
    sleep: Sleep | None = Field(default=None, exclude=True)


@dataclass(frozen=True)
class RawReply:
    """What a transport returns: status, body bytes and the ``Retry-After`` header."""

    status: int
    body: bytes
    retry_after: str | None


class Transport(ABC):
    """Sends one POST; failures to get any HTTP answer become typed connection or timeout errors."""

    closed: bool = False

    @abstractmethod
    async def post(self, url: str, data: bytes, headers: Mapping[str, str], *, backend: str) -> RawReply:
        """POST ``data`` and return the reply, whatever its status."""

    @abstractmethod
    async def aclose(self) -> None:
        """Release the connections this transport created."""


class AiohttpTransport(Transport):
    """The default: an aiohttp session created on first use, in the event loop that uses it."""

    def __init__(self, *, timeout: float, max_connections: int) -> None:
        self._timeout = timeout
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def post(self, url: str, data: bytes, headers: Mapping[str, str], *, backend: str) -> RawReply:
        import aiohttp

        session = self._session or self._open()
        try:
            async with session.post(url, data=data, headers=headers) as response:
                body = await response.read()
                return RawReply(response.status, body, response.headers.get("retry-after"))
        except TimeoutError as exc:
            raise BackendTimeoutError(f"request to {masked_url(url)} timed out", backend=backend) from exc
        except aiohttp.ClientError as exc:
            raise BackendConnectionError(
                f"request to {masked_url(url)} failed: {type(exc).__name__}", backend=backend
            ) from exc

    async def aclose(self) -> None:
        self.closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    def _open(self) -> aiohttp.ClientSession:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self._max_connections)
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        self._session = aiohttp.ClientSession(connector=connector, timeout=timeout)
        return self._session


class HttpxTransport(Transport):
    """The caller's ``httpx.AsyncClient``, used as is and never closed here."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(self, url: str, data: bytes, headers: Mapping[str, str], *, backend: str) -> RawReply:
        import httpx  # a base dependency, imported only by those who hand in a client: it costs 90 ms to import

        try:
            response = await self.client.post(url, content=data, headers=headers)
        except httpx.TimeoutException as exc:
            if _masked_connection_error(exc):
                cause = type(exc.__cause__).__name__
                raise BackendConnectionError(f"request to {masked_url(url)} failed: {cause}", backend=backend) from exc
            raise BackendTimeoutError(f"request to {masked_url(url)} timed out", backend=backend) from exc
        except httpx.TransportError as exc:
            raise BackendConnectionError(
                f"request to {masked_url(url)} failed: {type(exc).__name__}", backend=backend
            ) from exc
        except httpx.DecodingError as exc:
            raise BackendResponseError(
                f"{masked_url(url)} answered with an undecodable body: {exc}", backend=backend
            ) from exc
        except Exception as exc:
            if not _is_aiohttp_error(exc):
                raise
            # an injected httpx-aiohttp client passes on aiohttp errors it does not map, e.g. a reply that is not HTTP
            raise BackendConnectionError(
                f"request to {masked_url(url)} failed: {type(exc).__name__}", backend=backend
            ) from exc
        return RawReply(response.status_code, response.content, response.headers.get("retry-after"))

    async def aclose(self) -> None:
        self.closed = True


class LeanTransport(Transport):
    """Plain ``http://`` URLs through grmjudge's lean HTTP/1.1 client (``backends/_h1.py``), others through aiohttp.

    The servers a judge hammers with thousands of requests a second are local or on the cluster network, over
    plain HTTP; there the lean client's third of aiohttp's CPU per request shows. Hosted APIs (``https://``)
    answer in seconds, so aiohttp's cost does not matter there, and its TLS and proxy handling does.
    """

    def __init__(self, *, timeout: float, max_connections: int) -> None:
        self._timeout = timeout
        self._pool = H1Pool(max_connections=max_connections)
        self._fallback = AiohttpTransport(timeout=timeout, max_connections=max_connections)

    async def post(self, url: str, data: bytes, headers: Mapping[str, str], *, backend: str) -> RawReply:
        target = plain_target(url)
        if target is None:
            return await self._fallback.post(url, data, headers, backend=backend)
        try:
            async with asyncio.timeout(self._timeout):
                reply = await self._pool.post(target, data, encode_headers(headers))
        except TimeoutError as exc:
            raise BackendTimeoutError(f"request to {masked_url(url)} timed out", backend=backend) from exc
        except (OSError, ConnectionDropped, ProtocolError) as exc:
            reason = str(exc) if isinstance(exc, (ConnectionDropped, ProtocolError)) else type(exc).__name__
            raise BackendConnectionError(f"request to {masked_url(url)} failed: {reason}", backend=backend) from exc
        return RawReply(reply.status, reply.body, reply.retry_after)

    async def aclose(self) -> None:
        self.closed = True
        await self._pool.aclose()
        await self._fallback.aclose()


def default_transport(*, timeout: float, max_connections: int) -> Transport:
    """The transport a client creates for itself: the lean client for plain HTTP, aiohttp for the rest."""
    return LeanTransport(timeout=timeout, max_connections=max_connections)


class HTTPClient:
    """One backend's way to its server (or its replicas): JSON POSTs with flow control, typed errors, retries.

    It uses the caller's ``http_client`` if given, else a transport it creates on first use, on grmjudge's
    event loop, where it lives until :meth:`aclose` (or the end of the process); a caller's client is never
    closed here. Requests and closing always run on that loop, whichever loop awaits them. Each request goes to
    the least busy healthy replica of ``base_urls`` and passes the
    [`RequestGate`][grmjudge.backends.limits.RequestGate] first. Header names are lower-cased so that a
    caller's header and one a backend sets cannot both be sent under different spellings. The credentials in
    those headers (and in a caller's client's default headers), and the user info of the base URLs, are redacted
    from everything the server returns; messages show URLs through ``masked_url`` (user info hidden).
    """

    def __init__(
        self,
        *,
        backend: str,
        base_urls: Sequence[str],
        timeout: float,
        max_connections: int,
        retry: RetryPolicy | None,
        headers: Mapping[str, str],
        http_client: httpx.AsyncClient | None,
        rate_limits: RateLimits | None = None,
        replica_cool_down: float = 10.0,
    ) -> None:
        self.backend = backend
        self.retry = retry or RetryPolicy()
        self.headers = {"content-type": "application/json", **{k.lower(): v for k, v in headers.items()}}
        self.replicas = ReplicaPool(base_urls, cool_down=replica_cool_down)
        self.gate = RequestGate(rate_limits or RateLimits(), max_in_flight=max_connections)
        self._timeout = timeout
        self._max_connections = max_connections
        self._adopted = HttpxTransport(http_client) if http_client is not None else None
        self._own: Transport | None = None
        self._own_pid = os.getpid()
        client_secrets = header_secrets(http_client.headers) if http_client is not None else ()
        user_infos = [secret for url in base_urls for secret in url_secrets(url)]
        self.redact = Redactor([*client_secrets, *header_secrets(self.headers), *user_infos])
        redact_library_logs(self.redact)

    def transport(self) -> Transport:
        """The transport the next request will use."""
        if self._adopted is not None:
            return self._adopted
        if self._own is None or self._own_pid != os.getpid():  # a forked child must not share the parent's sockets
            self._own = default_transport(timeout=self._timeout, max_connections=self._max_connections)
            self._own_pid = os.getpid()
            runtime().adopt(self, self._own)
        return self._own

    @runs_on_runtime
    async def post_json(self, path: str, body: Mapping[str, Any], *, estimated_tokens: float = 0.0) -> dict[str, Any]:
        """POST ``body`` as JSON to ``path`` on a replica; the decoded JSON object (keys redacted), or a typed error.

        ``estimated_tokens`` is charged against a tokens-per-minute limit, if one is set.
        """
        data = json.dumps(body).encode()
        try:
            return await self._post_once(path, data, estimated_tokens)
        except BackendError as exc:
            if not self._may_retry(exc, attempts_made=1):
                raise
            first_failure = exc
        return await self._retry(path, data, estimated_tokens, first_failure)

    @runs_on_runtime
    async def aclose(self) -> None:
        """Close the transport this client created (a later request would create a new one)."""
        if self._own is not None:
            transport, self._own = self._own, None
            runtime().release(transport)
            await transport.aclose()

    async def _post_once(self, path: str, data: bytes, estimated_tokens: float) -> dict[str, Any]:
        replica = self.replicas.pick()
        url = replica.url + path
        await self.gate.admit(estimated_tokens)
        replica.outstanding += 1
        status: int | None = None
        try:
            reply = await self.transport().post(url, data, self.headers, backend=self.backend)
            status = reply.status
        except (BackendConnectionError, BackendResponseError):
            self.replicas.failed(replica)
            raise
        finally:
            replica.outstanding -= 1
            self.gate.done(status)
        if reply.status >= 500:
            self.replicas.failed(replica)
        if reply.status >= 400:
            raise status_error(url, reply, backend=self.backend, redact=self.redact)
        return self.redact.json(decode_json_object(url, reply, backend=self.backend, redact=self.redact))

    def _may_retry(self, failure: BaseException | None, *, attempts_made: int) -> bool:
        """Whether to try again: a retryable error, attempts left, and the item's retry budget allows it."""
        if not isinstance(failure, BackendError) or not failure.retryable:
            return False
        if attempts_made > self.retry.max_retries:
            return False
        budget = current_retry_budget.get()
        return budget is None or budget.spend()

    async def _retry(
        self, path: str, data: bytes, estimated_tokens: float, first_failure: BackendError
    ) -> dict[str, Any]:
        sleep = self.retry.sleep or anyio.sleep
        await sleep(backoff(self.retry, first_failure, attempt=1))

        def should_retry(state: RetryCallState) -> bool:
            failure = state.outcome.exception() if state.outcome else None
            return self._may_retry(failure, attempts_made=state.attempt_number + 1)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self.retry.max_retries),
            wait=lambda state: _retry_wait(self.retry, state),
            retry=should_retry,
            sleep=sleep,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._post_once(path, data, estimated_tokens)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


def decode_json_object(url: str, reply: RawReply, *, backend: str, redact: Redactor) -> dict[str, Any]:
    """The reply body as a JSON object, or a BackendResponseError quoting the start of the body (redacted).

    Bodies Python's decoder cannot read count as not JSON: a syntax error, bytes that are not UTF-8, an integer
    of more than 4,300 digits (``ValueError``) or nesting deeper than the interpreter's recursion limit. The
    error has no cause: ``JSONDecodeError.doc`` would hold the whole body, unredacted.
    """
    payload: object = _UNREADABLE
    try:
        payload = json.loads(reply.body)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        pass  # raised below, outside the handler, so that not even __context__ keeps the body
    if payload is _UNREADABLE:
        raise BackendResponseError(
            f"{masked_url(url)} answered {reply.status} with a body that is not JSON: {body_excerpt(reply, redact)!r}",
            backend=backend,
        )
    if not isinstance(payload, dict):
        raise BackendResponseError(f"{masked_url(url)} answered with JSON that is not an object", backend=backend)
    return payload  # pyright: ignore[reportUnknownVariableType]


def status_error(url: str, reply: RawReply, *, backend: str, redact: Redactor) -> BackendStatusError:
    """The typed error for a non-2xx reply (the URL is named; headers are not, and keys are redacted)."""
    code = reply.status
    body = body_excerpt(reply, redact)
    message = f"{masked_url(url)} answered HTTP {code}: {body}"
    retry_after = parse_retry_after(reply.retry_after)
    cls: type[BackendStatusError] = BackendStatusError
    if code in (401, 403):
        cls = AuthenticationError
    elif code == 429:
        cls = RateLimitError
    elif code >= 500:
        cls = ServerError
    return cls(message, status_code=code, body=body, retry_after=retry_after, backend=backend)


def body_excerpt(reply: RawReply, redact: Redactor) -> str:
    """The start of a reply's body as text, redacted before it is cut so that no key straddles the cut."""
    return redact(reply.body.decode(errors="replace"))[:_BODY_EXCERPT]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date); ``None`` if absent/bad."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff(policy: RetryPolicy, failure: BaseException | None, *, attempt: int) -> float:
    """The wait before retry number ``attempt``: the server's Retry-After (capped), else jittered exponential."""
    hint = getattr(failure, "retry_after", None)
    if isinstance(hint, float):
        return min(hint, policy.max_retry_after)
    delay = min(policy.max_backoff, policy.initial_backoff * 2 ** (attempt - 1))
    return delay * random.uniform(0.5, 1.0) if policy.jitter else delay


def _retry_wait(policy: RetryPolicy, state: RetryCallState) -> float:
    failure = state.outcome.exception() if state.outcome else None
    return backoff(policy, failure, attempt=state.attempt_number + 1)  # the first retry happened before tenacity


def _masked_connection_error(exc: httpx.TimeoutException) -> bool:
    """Whether httpx-aiohttp reported an aiohttp connection error that is no timeout (a refused connection).

    Its exception map turns every ``aiohttp.ClientConnectionError`` into ``httpx.ConnectTimeout``; aiohttp's real
    timeouts derive from ``TimeoutError``.
    """
    return _is_aiohttp_error(exc.__cause__) and not isinstance(exc.__cause__, TimeoutError)


def _is_aiohttp_error(exc: BaseException | None) -> bool:
    return type(exc).__module__.split(".")[0] == "aiohttp"
