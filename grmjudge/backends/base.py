"""The backend contract: one abstract async method that generates n completions for one request."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import ClassVar, Self

from grmjudge.exceptions import ConfigurationError
from grmjudge.types import Generation, GenerationRequest


class Backend(ABC):
    """A source of generations: a server, a hosted API, a local model or a plain function.

    ``supports_n`` says whether one request can return ``request.n`` completions; when it is false the judge
    sends ``n`` requests of one completion each, with distinct seeds. Backends are async context managers;
    `aclose` releases what the backend created (never what the caller handed in).
    """

    name: ClassVar[str] = "backend"
    supports_n: bool = False
    model: str = "unknown"
    _closed: bool = False

    @abstractmethod
    async def generate(self, request: GenerationRequest) -> Generation:
        """Generate ``request.n`` completions (or exactly one when ``supports_n`` is false)."""

    async def aclose(self) -> None:
        """Release resources; the backend refuses further requests."""
        self._closed = True

    async def reset_connections(self) -> None:
        """Drop connections bound to the current event loop; the backend stays usable on a new loop.

        The synchronous facade calls this before its loop ends, so the next sync call starts clean.
        """

    @property
    def closed(self) -> bool:
        """Whether `aclose` has been called."""
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ConfigurationError(f"{type(self).__name__} is closed")

    async def __aenter__(self) -> Self:
        self._check_open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
