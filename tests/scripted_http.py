"""Scripted HTTP for fault tests: a MockTransport handler that plays steps, and a sleep that records waits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

Step = Callable[[httpx.Request], httpx.Response]
MockClient = Callable[["Script"], httpx.AsyncClient]


def recorder() -> tuple[list[float], Callable[[float], Any]]:
    """An injected backoff sleep that records the delay instead of waiting."""
    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)

    return waits, sleep


def raise_read_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("read timed out", request=request)


class Script:
    """A MockTransport handler that plays its steps in order and repeats the last one; it records each request."""

    def __init__(self, *steps: Step) -> None:
        self.steps = steps
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.steps[min(len(self.requests), len(self.steps)) - 1](request)

    @property
    def calls(self) -> int:
        return len(self.requests)
