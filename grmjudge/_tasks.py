"""An anyio task group whose lone failure surfaces as itself, not wrapped in an ExceptionGroup."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from anyio.abc import TaskGroup


@asynccontextmanager
async def task_group() -> AsyncIterator[TaskGroup]:
    """Like ``anyio.create_task_group()``, but a single failed task re-raises its own exception.

    Callers then catch :class:`~grmjudge.exceptions.InvalidInputError` or a backend's error directly.
    """
    try:
        async with anyio.create_task_group() as tg:
            yield tg
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from group
        raise
