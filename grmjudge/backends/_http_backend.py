"""HTTPBackend: what every JSON-over-HTTP backend shares, built on one ``HTTPClient``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from grmjudge.backends.base import Backend
from grmjudge.backends.http import HTTPClient, RetryPolicy
from grmjudge.backends.limits import RateLimits
from grmjudge.types import GenerationRequest

if TYPE_CHECKING:
    import httpx


class HTTPBackend(Backend):
    """A backend that POSTs JSON to a server: client ownership, headers and retries live in ``self.http``."""

    def __init__(
        self,
        *,
        base_urls: Sequence[str],
        timeout: float,
        max_connections: int,
        retry: RetryPolicy | None,
        headers: Mapping[str, str],
        http_client: httpx.AsyncClient | None,
        rate_limits: RateLimits | None,
    ) -> None:
        self.http = HTTPClient(
            backend=self.name,
            base_urls=base_urls,
            timeout=timeout,
            max_connections=max_connections,
            retry=retry,
            headers=headers,
            http_client=http_client,
            rate_limits=rate_limits,
        )

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of this backend's requests."""
        return self.http.retry

    async def _post(self, path: str, body: Mapping[str, Any], request: GenerationRequest) -> dict[str, Any]:
        """POST ``body`` to ``path`` on a replica; the decoded JSON object, or a typed BackendError."""
        return await self.http.post_json(path, body, estimated_tokens=estimate_tokens(request))

    async def aclose(self) -> None:
        await self.http.aclose()
        await super().aclose()


def estimate_tokens(request: GenerationRequest) -> float:
    """Tokens a request may use, counted before it is sent: prompt characters / 4 plus what it may generate."""
    prompt_chars = sum(len(m.content) for m in request.messages)
    return prompt_chars / 4 + request.max_tokens * request.n
