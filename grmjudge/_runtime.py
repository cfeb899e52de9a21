"""The library's one event loop: an anyio loop in a daemon thread, reached through a blocking portal.

Everything bound to an event loop (HTTP sessions, limiters, batch queues, collected reward groups) lives on
this loop for the life of the process, so nothing has to be reset between calls. Blocking callers
(``score_sync``, the reward functions of RL trainers, a notebook cell) wait on it from their own thread, even
while that thread runs a loop of its own; async callers on other loops hand their call over with
[`runs_on_runtime`][grmjudge._runtime.runs_on_runtime] and await it there, so cancellation and timeouts cross
over in both directions. Code already running on the loop calls straight through.

The loop starts on first use, again in a forked child (a thread does not survive ``fork``), and stops at
interpreter exit after closing the resources registered with [`Runtime.track`][grmjudge._runtime.Runtime.track].
"""

from __future__ import annotations

import atexit
import functools
import os
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import Future
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from dataclasses import dataclass, field
from types import CoroutineType
from typing import Any, Generic, ParamSpec, Protocol, TypeVar

import anyio
import anyio.abc
from anyio.from_thread import BlockingPortal, start_blocking_portal

from grmjudge.exceptions import ConfigurationError

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
P = ParamSpec("P")

_SHUTDOWN_SECONDS = 10.0


class AsyncClosable(Protocol):
    """Anything with an ``aclose`` coroutine: what the runtime closes at exit."""

    async def aclose(self) -> None: ...


class ReceiveStream(Protocol[T_co]):
    """What a result stream offers its reader, on the runtime's loop or handed over to another one."""

    def __aiter__(self) -> AsyncIterator[T_co]: ...

    async def receive(self) -> T_co: ...

    def receive_nowait(self) -> T_co: ...

    async def aclose(self) -> None: ...


class Runtime:
    """One event loop in a daemon thread, and the resources that must be closed on it before it stops."""

    def __init__(self) -> None:
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal(
            "asyncio", name="grmjudge-runtime"
        )
        self.portal = self._portal_cm.__enter__()
        self.thread_id: int = self.portal.call(threading.get_ident)
        self._tracked: weakref.WeakSet[AsyncClosable] = weakref.WeakSet()
        self._host_done, self._host = self.portal.start_task(_host_tasks)

    def is_current(self) -> bool:
        """Whether the calling code runs on this runtime's loop."""
        return threading.get_ident() == self.thread_id

    def adopt(self, owner: object, resource: AsyncClosable) -> None:
        """Close ``resource`` on this loop once ``owner`` is garbage collected, or when the runtime stops.

        So a judge dropped without ``aclose`` leaves no open session behind (and no "unclosed" warning).
        """
        self._tracked.add(resource)
        finalizer = weakref.finalize(owner, self._close_soon, resource)
        finalizer.atexit = False  # `stop` closes what is left

    def release(self, resource: AsyncClosable) -> None:
        """Forget ``resource``: its owner is closing it."""
        self._tracked.discard(resource)

    def _close_soon(self, resource: AsyncClosable) -> None:
        """Schedule ``resource.aclose()`` on the loop, from whatever thread the garbage collector runs in."""
        if resource not in self._tracked:
            return
        self._tracked.discard(resource)
        try:
            if self.is_current():
                self._host.start_soon(resource.aclose)
            else:
                self.portal.start_task_soon(resource.aclose)
        except RuntimeError:  # the loop has stopped: nothing is left to close it on
            pass

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` on the loop and wait for it; an exception here (Ctrl-C) cancels it there."""
        if self.is_current():
            raise ConfigurationError(
                "a blocking grmjudge call was made on grmjudge's own event loop (from a callback or backend that "
                "runs on it), where it would wait for itself: await the async method instead"
            )
        future: Future[T] = self.portal.start_task_soon(fn)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    async def call_async(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Await ``fn()`` run on the loop, from any other loop; cancelling the caller cancels it there."""
        if self.is_current():
            return await fn()
        return await self.portal.call_async(fn)

    async def hold(self, open_stream: Callable[[], AbstractAsyncContextManager[ReceiveStream[T]]]) -> _Held[T]:
        """Open a stream on the loop and keep it open, beyond this call, until `_Held.release`."""
        return await self._host.start(_hold_open, open_stream)

    def stop(self) -> None:
        """Close what is still tracked, then stop the loop and join its thread."""
        try:
            self.portal.call(self._close_tracked)
            self.portal.call(self.portal.stop, True)  # cancel what still runs: exit must not hang on it
        finally:
            self._portal_cm.__exit__(None, None, None)

    async def _close_tracked(self) -> None:
        with anyio.move_on_after(_SHUTDOWN_SECONDS, shield=True):
            for resource in list(self._tracked):
                await resource.aclose()


_lock = threading.Lock()
_current: Runtime | None = None
_current_pid: int | None = None


def runtime() -> Runtime:
    """The process's runtime, started on first use (and anew in a forked child)."""
    global _current, _current_pid
    current = _current
    if current is not None and _current_pid == os.getpid():
        return current
    with _lock:
        if _current is None or _current_pid != os.getpid():
            _current, _current_pid = Runtime(), os.getpid()
        return _current


def on_runtime_loop() -> bool:
    """Whether the calling code already runs on the runtime's loop (cheap: no runtime is started)."""
    current = _current
    return current is not None and current.is_current()


def shutdown() -> None:
    """Stop the runtime (closing what it tracks); the next call starts a new one. Runs at interpreter exit."""
    global _current, _current_pid
    with _lock:
        current, pid = _current, _current_pid
        _current = _current_pid = None
    if current is not None and pid == os.getpid():
        current.stop()


atexit.register(shutdown)


def run_blocking(fn: Callable[[], Awaitable[T]]) -> T:
    """Run ``fn()`` on the runtime's loop from synchronous code (a running loop in this thread is fine)."""
    return runtime().call(fn)


async def run_on_runtime(fn: Callable[[], Awaitable[T]]) -> T:
    """Await ``fn()`` on the runtime's loop: directly when already there, handed over from any other loop."""
    if on_runtime_loop():
        return await fn()
    return await runtime().call_async(fn)


def runs_on_runtime(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, CoroutineType[Any, Any, T]]:
    """Make an async function always run on the runtime's loop, whichever loop awaits it."""

    @functools.wraps(method)
    async def on_runtime(*args: P.args, **kwargs: P.kwargs) -> T:
        if on_runtime_loop():
            return await method(*args, **kwargs)
        return await runtime().call_async(functools.partial(method, *args, **kwargs))

    return on_runtime


async def _host_tasks(*, task_status: anyio.abc.TaskStatus[anyio.abc.TaskGroup]) -> None:
    """The task group where streams handed to other loops stay open between their callers' calls."""
    async with anyio.create_task_group() as tg:
        task_status.started(tg)
        await anyio.sleep_forever()


@dataclass(eq=False)
class _Held(Generic[T]):
    """A stream held open on the runtime's loop for a reader on another loop."""

    stream: ReceiveStream[T] | None = None
    opened: bool = False
    error: Exception | None = None
    leave: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)

    async def release(self) -> None:
        """Leave the stream's context (cancelling what still runs) and raise what failed inside it."""
        self.leave.set()
        await self.done.wait()
        if self.error is not None:
            raise self.error


async def _hold_open(
    open_stream: Callable[[], AbstractAsyncContextManager[ReceiveStream[T]]],
    *,
    task_status: anyio.abc.TaskStatus[_Held[T]],
) -> None:
    held: _Held[T] = _Held()
    try:
        async with open_stream() as stream:
            held.stream, held.opened = stream, True
            task_status.started(held)
            await held.leave.wait()
    except Exception as exc:
        if not held.opened:
            raise  # start() hands it to the caller
        held.error = exc
    finally:
        held.done.set()


class _HandedOver(Generic[T]):
    """A stream on the runtime's loop, read from another loop: each receive is one call over."""

    def __init__(self, rt: Runtime, inner: ReceiveStream[T]) -> None:
        self._rt = rt
        self._inner = inner

    def __aiter__(self) -> AsyncIterator[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def receive(self) -> T:
        return await self._rt.call_async(self._inner.receive)

    def receive_nowait(self) -> T:
        return self._rt.portal.call(self._inner.receive_nowait)

    async def aclose(self) -> None:
        await self._rt.call_async(self._inner.aclose)


@asynccontextmanager
async def stream_on_runtime(
    open_stream: Callable[[], AbstractAsyncContextManager[ReceiveStream[T]]],
) -> AsyncGenerator[ReceiveStream[T]]:
    """``open_stream()`` entered on the runtime's loop, readable from whichever loop enters this."""
    if on_runtime_loop():
        async with open_stream() as stream:
            yield stream
        return
    rt = runtime()
    held = await rt.call_async(lambda: rt.hold(open_stream))
    assert held.stream is not None  # set before started
    try:
        yield _HandedOver(rt, held.stream)
    finally:
        with anyio.CancelScope(shield=True):
            await rt.call_async(held.release)
