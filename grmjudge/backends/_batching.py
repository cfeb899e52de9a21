"""Gather concurrent requests into padded batches, run by one worker thread at a time.

A local model is fastest when many prompts share one padded forward pass, but callers arrive one at a time
from concurrent judge calls. [`BatchGatherer`][grmjudge.backends._batching.BatchGatherer] queues each call
as a *ticket* and lets the queue fill for a short window (or until the budget is full), then runs the oldest
ticket's group in one call of ``run_batch`` in a worker thread. Tickets are grouped by a key (the sampling
parameters): only tickets with equal keys share a batch.

There is no background task, so nothing outlives the callers and nothing needs starting or stopping. One
waiting caller is the *leader*: it runs batches until its own ticket is answered, then hands the lead to the
oldest ticket still queued. The other callers just wait for their answer. A cancelled caller leaves the queue
(or, if it was leading, hands the lead on); a batch already running always finishes and answers every ticket
in it. The queue lives on grmjudge's event loop, where every `submit` runs whichever loop awaits it, so one
leader at a time means one batch at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import anyio
import anyio.to_thread

from grmjudge._runtime import runs_on_runtime

KeyT = TypeVar("KeyT", bound=Hashable)
ItemT = TypeVar("ItemT")
OutT = TypeVar("OutT")


@dataclass(frozen=True)
class BatchBudget:
    """How much one batch may hold: ``max_rows`` sequences and ``max_tokens`` padded tokens (rows × widest row).

    ``None`` means no limit. A single ticket larger than the budget still runs, alone.
    """

    max_rows: int | None = 64
    max_tokens: int | None = None

    def fits(self, rows: int, width: int) -> bool:
        """Whether a batch of ``rows`` rows padded to ``width`` tokens stays within the budget."""
        return (self.max_rows is None or rows <= self.max_rows) and (
            self.max_tokens is None or rows * width <= self.max_tokens
        )

    def full(self, rows: int, width: int) -> bool:
        """Whether a batch this size has reached the budget, so waiting for more tickets is pointless."""
        return (self.max_rows is not None and rows >= self.max_rows) or (
            self.max_tokens is not None and rows * width >= self.max_tokens
        )


@dataclass(eq=False)
class _Ticket(Generic[KeyT, ItemT, OutT]):
    key: KeyT
    item: ItemT
    rows: int
    width: int
    arrived: float
    wake: anyio.Event = field(default_factory=anyio.Event)
    taken: bool = False
    done: bool = False
    result: OutT | None = None
    error: Exception | None = None


class _Queue(Generic[KeyT, ItemT, OutT]):
    """The tickets waiting, which of them leads, and an event set on every change."""

    def __init__(self) -> None:
        self.tickets: list[_Ticket[KeyT, ItemT, OutT]] = []
        self.leader: _Ticket[KeyT, ItemT, OutT] | None = None
        self.changed = anyio.Event()


class BatchGatherer(Generic[KeyT, ItemT, OutT]):
    """Batch concurrent `submit` calls into ``run_batch(key, items)`` calls, one at a time.

    Args:
        run_batch: Blocking function run in a worker thread; returns one output per item, in order. An
            exception it raises is delivered to every caller of that batch, through ``wrap_error``.
        window: Seconds the oldest queued ticket waits for company before its batch runs.
        budget: The most one batch may hold.
        wrap_error: Turns a ``run_batch`` exception into the exception each caller raises (``from`` it).
    """

    def __init__(
        self,
        run_batch: Callable[[KeyT, list[ItemT]], Sequence[OutT]],
        *,
        window: float,
        budget: BatchBudget,
        wrap_error: Callable[[Exception], Exception],
    ) -> None:
        self._run_batch = run_batch
        self.window = window
        self.budget = budget
        self._wrap_error = wrap_error
        self._queue: _Queue[KeyT, ItemT, OutT] | None = None

    @runs_on_runtime
    async def submit(self, key: KeyT, item: ItemT, *, rows: int, width: int) -> OutT:
        """Queue ``item`` (``rows`` sequences of up to ``width`` tokens) and wait for its output."""
        if self._queue is None:
            self._queue = _Queue()  # its events belong to the runtime's loop
        queue = self._queue
        ticket: _Ticket[KeyT, ItemT, OutT] = _Ticket(key, item, rows, width, anyio.current_time())
        queue.tickets.append(ticket)
        queue.changed.set()
        if queue.leader is None:
            self._promote(queue, ticket)
        try:
            await ticket.wake.wait()
            if not ticket.done:  # woken to lead
                await self._lead(queue, ticket)
        finally:
            self._leave(queue, ticket)
        if ticket.error is not None:
            raise self._wrap_error(ticket.error) from ticket.error
        return ticket.result  # pyright: ignore[reportReturnType]  # set together with done

    def _promote(self, queue: _Queue[KeyT, ItemT, OutT], ticket: _Ticket[KeyT, ItemT, OutT]) -> None:
        queue.leader = ticket
        ticket.wake.set()

    def _leave(self, queue: _Queue[KeyT, ItemT, OutT], ticket: _Ticket[KeyT, ItemT, OutT]) -> None:
        if not ticket.taken and ticket in queue.tickets:
            queue.tickets.remove(ticket)
            queue.changed.set()
        if queue.leader is not ticket:
            return
        queue.leader = None
        if queue.tickets:
            self._promote(queue, queue.tickets[0])

    async def _lead(self, queue: _Queue[KeyT, ItemT, OutT], ticket: _Ticket[KeyT, ItemT, OutT]) -> None:
        while not ticket.done:
            await self._fill(queue)
            batch = self._take(queue)
            with anyio.CancelScope(shield=True):  # a started batch answers all of its callers
                await self._run(batch)

    async def _fill(self, queue: _Queue[KeyT, ItemT, OutT]) -> None:
        """Wait until the oldest ticket's window has passed or its group fills the budget."""
        deadline = queue.tickets[0].arrived + self.window
        with anyio.move_on_after(deadline - anyio.current_time()):
            while not self._group_full(queue):
                queue.changed = anyio.Event()
                await queue.changed.wait()

    def _group_full(self, queue: _Queue[KeyT, ItemT, OutT]) -> bool:
        key = queue.tickets[0].key
        group = [t for t in queue.tickets if t.key == key]
        return self.budget.full(sum(t.rows for t in group), max(t.width for t in group))

    def _take(self, queue: _Queue[KeyT, ItemT, OutT]) -> list[_Ticket[KeyT, ItemT, OutT]]:
        """The oldest ticket and, in arrival order, every queued ticket with its key that fits the budget."""
        key = queue.tickets[0].key
        batch: list[_Ticket[KeyT, ItemT, OutT]] = []
        rows = width = 0
        for ticket in queue.tickets:
            if ticket.key != key:
                continue
            if batch and not self.budget.fits(rows + ticket.rows, max(width, ticket.width)):
                continue
            batch.append(ticket)
            rows, width = rows + ticket.rows, max(width, ticket.width)
            ticket.taken = True
        queue.tickets = [t for t in queue.tickets if not t.taken]
        return batch

    async def _run(self, batch: list[_Ticket[KeyT, ItemT, OutT]]) -> None:
        items = [t.item for t in batch]
        answered = False
        try:
            outputs = await anyio.to_thread.run_sync(self._run_batch, batch[0].key, items)
            if len(outputs) != len(batch):
                raise RuntimeError(f"run_batch returned {len(outputs)} outputs for {len(batch)} items")
            for ticket, output in zip(batch, outputs, strict=True):
                ticket.result = output
            answered = True
        except Exception as exc:  # delivered to every caller of the batch, typed by wrap_error
            for ticket in batch:
                ticket.error = exc
            answered = True
        finally:  # even a KeyboardInterrupt in the worker must not leave callers waiting forever
            for ticket in batch:
                if not answered:
                    ticket.error = RuntimeError("the batch was interrupted before it finished")
                ticket.done = True
                ticket.wake.set()
