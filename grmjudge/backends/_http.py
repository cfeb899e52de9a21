"""The HTTP layer shared by HTTP backends: a fast default client, error mapping and retries.

httpx's own async connection pool is slow under high concurrency (encode/httpx#3215), so the default client
keeps httpx's API over an aiohttp transport (``httpx-aiohttp``) and uses httpx's transport only when that
package is missing. Retries go through tenacity with an injectable sleep.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import anyio
import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

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
from grmjudge.settings import RetryPolicy

_BODY_EXCERPT = 500


def create_client(*, timeout: float, max_connections: int) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on the aiohttp transport when available, else on httpx's own."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
    try:
        from httpx_aiohttp import HttpxAiohttpClient
    except ImportError:
        return httpx.AsyncClient(timeout=timeout, limits=limits)
    return HttpxAiohttpClient(timeout=timeout, limits=limits)


async def post_json(
    client: httpx.AsyncClient,
    url: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str],
    retry: RetryPolicy,
    backend: str,
) -> dict[str, Any]:
    """POST ``body`` as JSON and return the decoded JSON object, retrying what ``retry`` allows."""
    retrying = AsyncRetrying(
        stop=stop_after_attempt(retry.max_retries + 1),
        wait=_Backoff(retry),
        retry=retry_if_exception(lambda exc: isinstance(exc, BackendError) and exc.retryable),
        sleep=retry.sleep or anyio.sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await _post_once(client, url, body, headers=headers, backend=backend)
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


async def _post_once(
    client: httpx.AsyncClient, url: str, body: Mapping[str, Any], *, headers: Mapping[str, str], backend: str
) -> dict[str, Any]:
    try:
        response = await client.post(url, json=body, headers=dict(headers))
    except httpx.TimeoutException as exc:
        if _masked_connection_error(exc):
            cause = type(exc.__cause__).__name__
            raise BackendConnectionError(f"request to {url} failed: {cause}", backend=backend) from exc
        raise BackendTimeoutError(f"request to {url} timed out", backend=backend) from exc
    except httpx.TransportError as exc:
        raise BackendConnectionError(f"request to {url} failed: {type(exc).__name__}", backend=backend) from exc
    except httpx.DecodingError as exc:
        raise BackendResponseError(f"{url} answered with a body that cannot be decoded: {exc}", backend=backend) from exc
    except Exception as exc:
        if not _is_aiohttp_error(exc):
            raise
        # httpx-aiohttp passes on aiohttp errors it does not map, e.g. a reply that is not HTTP
        raise BackendConnectionError(f"request to {url} failed: {type(exc).__name__}", backend=backend) from exc
    if response.status_code >= 400:
        raise status_error(response, backend=backend)
    try:
        payload = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BackendResponseError(
            f"{url} answered {response.status_code} with a body that is not JSON: {response.text[:_BODY_EXCERPT]!r}",
            backend=backend,
        ) from exc
    if not isinstance(payload, dict):
        raise BackendResponseError(f"{url} answered with JSON that is not an object", backend=backend)
    return payload  # pyright: ignore[reportUnknownVariableType]


def _masked_connection_error(exc: httpx.TimeoutException) -> bool:
    """Whether httpx-aiohttp reported an aiohttp connection error that is no timeout (a refused connection).

    Its exception map turns every ``aiohttp.ClientConnectionError`` into ``httpx.ConnectTimeout``; aiohttp's real
    timeouts derive from ``TimeoutError``.
    """
    return _is_aiohttp_error(exc.__cause__) and not isinstance(exc.__cause__, TimeoutError)


def _is_aiohttp_error(exc: BaseException | None) -> bool:
    return type(exc).__module__.split(".")[0] == "aiohttp"


def status_error(response: httpx.Response, *, backend: str) -> BackendStatusError:
    """The typed error for a non-2xx response (the request URL is named; headers, and so keys, are not)."""
    code = response.status_code
    body = response.text[:_BODY_EXCERPT]
    message = f"{response.request.url} answered HTTP {code}: {body}"
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    cls: type[BackendStatusError] = BackendStatusError
    if code in (401, 403):
        cls = AuthenticationError
    elif code == 429:
        cls = RateLimitError
    elif code >= 500:
        cls = ServerError
    return cls(message, status_code=code, body=body, retry_after=retry_after, backend=backend)


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


class _Backoff:
    """Tenacity wait: the server's Retry-After (capped) if given, else jittered exponential backoff."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy

    def __call__(self, state: RetryCallState) -> float:
        policy = self._policy
        exc = state.outcome.exception() if state.outcome else None
        hint = getattr(exc, "retry_after", None)
        if isinstance(hint, float):
            return min(hint, policy.max_retry_after)
        delay = min(policy.max_backoff, policy.initial_backoff * 2 ** (state.attempt_number - 1))
        return delay * random.uniform(0.5, 1.0) if policy.jitter else delay
