"""HTTPBackend: what every JSON-over-HTTP backend shares, built on one ``HTTPClient``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from grmjudge.backends._http import HTTPClient
from grmjudge.backends.base import Backend
from grmjudge.settings import RetryPolicy


class HTTPBackend(Backend):
    """A backend that POSTs JSON to a server: client ownership, headers and retries live in ``self.http``."""

    def __init__(
        self,
        *,
        timeout: float,
        max_connections: int,
        retry: RetryPolicy | None,
        headers: Mapping[str, str],
        http_client: httpx.AsyncClient | None,
    ) -> None:
        self.http = HTTPClient(
            backend=self.name,
            timeout=timeout,
            max_connections=max_connections,
            retry=retry,
            headers=headers,
            http_client=http_client,
        )

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of this backend's requests."""
        return self.http.retry

    async def _post(self, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``url`` under the retry policy; the decoded JSON object, or a typed BackendError."""
        return await self.http.post_json(url, body)

    async def reset_connections(self) -> None:
        await self.http.reset()

    async def aclose(self) -> None:
        await self.http.reset()
        await super().aclose()
