"""The one async-closable base: backends, classifiers, meta scorers, caches and judges all close the same way."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from grmjudge._runtime import run_blocking
from grmjudge.exceptions import ConfigurationError


class Closable:
    """``aclose()`` marks the object closed and releases what it holds; later use raises where it is checked.

    ``async with`` closes it on exit, and `close` does the same from synchronous code. Subclasses that hold
    resources override `aclose` and call ``super().aclose()``.
    """

    _closed: bool = False

    async def aclose(self) -> None:
        """Release resources; the object refuses further requests."""
        self._closed = True

    def close(self) -> None:
        """Blocking `aclose`, for scripts."""
        run_blocking(self.aclose)

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
