"""An anyio task group whose failure surfaces as the first task's exception, not an ExceptionGroup."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

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
