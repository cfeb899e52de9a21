"""Task groups whose failure surfaces as the first task's exception, not an ExceptionGroup."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
from anyio.abc import TaskGroup


@asynccontextmanager
async def task_group() -> AsyncGenerator[TaskGroup, None]:
    """Like ``anyio.create_task_group()``, but re-raises the first failure itself (the group is its cause).

    Callers then catch [`InvalidInputError`][grmjudge.exceptions.InvalidInputError] or a backend's error
    directly; sibling tasks that failed the same way stay visible on ``__cause__``.
    """
    try:
        async with anyio.create_task_group() as tg:
            yield tg
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from group


class RuntimeTaskGroup:
    """``start_soon`` on asyncio's own ``TaskGroup``, as ``runtime_task_group`` yields it."""

    def __init__(self, group: asyncio.TaskGroup) -> None:
        self._group = group

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn(*args)`` as a task of the group."""
        self._group.create_task(_run(fn, *args))


@asynccontextmanager
async def runtime_task_group() -> AsyncGenerator[RuntimeTaskGroup, None]:
    """[`task_group`][grmjudge._tasks.task_group] for the per-item hot path, which runs only on grmjudge's own loop.

    That loop is always asyncio's (``grmjudge._runtime``), so asyncio's ``TaskGroup`` serves: it costs about a
    third of anyio's group per spawned task, and a judge call spawns one per distinct response order. Cancelling
    the caller (an anyio cancel scope included) cancels the group's tasks.
    """
    try:
        async with asyncio.TaskGroup() as tg:
            yield RuntimeTaskGroup(tg)
    except BaseExceptionGroup as group:
        raise group.exceptions[0] from group


async def _run(fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
    await fn(*args)
