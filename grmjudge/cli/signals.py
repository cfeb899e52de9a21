"""Ctrl-C (SIGINT) and ``kill`` (SIGTERM) stop a ``grmjudge score`` run the same way, writing what is finished.

The judging is cancelled, every finished item is written, and the command exits with 128 + the signal's
number (130, 143).

While ``StopSignals`` is installed, neither signal raises anywhere: the first one cancels the judging (through
the event loop, so no write is cut short), and any further one is only noted. The flush of finished items,
the closing of the files and the summary therefore always run to the end.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from contextlib import suppress
from types import FrameType, TracebackType

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
"""The signals that stop a run with its finished work written: Ctrl-C, and what ``kill`` and schedulers send."""

_Handler = Callable[[int, FrameType | None], object] | int | None


class StopSignals:
    """Catches SIGINT and SIGTERM while installed (``with``); ``received`` is the first one caught, if any."""

    def __init__(self) -> None:
        self.received: signal.Signals | None = None
        self._previous: dict[signal.Signals, _Handler] = {}
        self._stop: Callable[[], object] | None = None

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._caught)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def arm(self, stop: Callable[[], object]) -> None:
        """Call ``stop`` in the running event loop on the first signal (at once if one came already)."""
        loop = asyncio.get_running_loop()
        self._stop = lambda: loop.call_soon_threadsafe(stop)
        if self.received is not None:
            stop()

    def disarm(self) -> None:
        """The event loop is ending: a signal from now on is only noted."""
        self._stop = None

    def _caught(self, signum: int, _: FrameType | None) -> None:
        if self.received is not None:
            return  # already stopping: the flush must not be cut short
        self.received = signal.Signals(signum)
        if self._stop is not None:
            with suppress(RuntimeError):  # the loop closed in between
                self._stop()
