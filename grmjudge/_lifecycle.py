"""An explicit open/closed state for the objects that hold connections or models (backends, classifiers)."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from grmjudge.exceptions import ConfigurationError


class Closable:
    """``aclose()`` marks the object closed; later use raises; ``async with`` closes it on exit."""

    _closed: bool = False

    async def aclose(self) -> None:
        """Release resources; the object refuses further requests."""
        self._closed = True

    async def reset_connections(self) -> None:
        """Drop connections bound to the current event loop; the object stays usable on a new loop.

        The synchronous facades call this before their loop ends, so the next call starts clean.
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
