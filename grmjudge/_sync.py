"""Run a coroutine to completion from synchronous code, refusing clearly inside a running event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from grmjudge.exceptions import SyncInAsyncContextError

T = TypeVar("T")


def run_sync(fn: Callable[[], Awaitable[T]], *, method: str) -> T:
    """Run ``fn()`` in a fresh event loop; ``method`` names the async method to await instead."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return anyio.run(fn)
    raise SyncInAsyncContextError(
        f"{method}_sync() cannot run inside a running event loop (a notebook cell or async code): "
        f"use `await {method}(...)` instead"
    )
