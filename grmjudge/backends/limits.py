"""Client-side flow control for HTTP backends: rate limits, adaptive concurrency and per-item retry budgets.

- Requests-per-minute and tokens-per-minute limits are token buckets refilled continuously; a request waits
  until both hold enough. Tokens are estimated before sending (prompt characters / 4 + ``max_tokens`` x ``n``),
  as hosted APIs count them against a quota.
- Requests in flight never exceed the connection pool (queued in the pool, they would spend their timeout
  waiting), and the limit adapts AIMD-style: each 429 or 503 halves the number of requests allowed in
  flight (at most once per second, so one burst of throttling counts once), and each success adds
  ``1 / limit``, so the limit grows back by about one per round of requests.
- A retry budget caps the transport retries of all the requests of one judged item.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextvars import ContextVar

import anyio
from pydantic import BaseModel, ConfigDict, Field

Clock = Callable[[], float]


class RateLimits(BaseModel):
    """Client-side flow control for an HTTP backend.

    ``requests_per_minute`` and ``tokens_per_minute`` are token buckets (tokens estimated before sending as
    prompt characters / 4 + ``max_tokens`` x ``n``). With ``adaptive``, the requests in flight are halved on
    each 429/503 (at most once a second) and grow back by one per round of successes, never below
    ``min_concurrency``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    adaptive: bool = True
    min_concurrency: int = Field(default=1, ge=1)


class TokenBucket:
    """``per_minute`` units per minute, refilled continuously, holding at most one minute's worth."""

    def __init__(self, per_minute: float, *, clock: Clock = time.monotonic) -> None:
        self.capacity = per_minute
        self._rate = per_minute / 60.0
        self._clock = clock
        self._level = per_minute
        self._stamp = clock()
        self._lock = anyio.Lock()

    async def take(self, amount: float) -> None:
        """Wait until ``amount`` units are available and take them (more than the capacity waits for a full one)."""
        amount = min(amount, self.capacity)
        async with self._lock:  # first come, first served
            self._refill()
            while self._level < amount:
                await anyio.sleep((amount - self._level) / self._rate)
                self._refill()
            self._level -= amount

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._stamp) * self._rate)
        self._stamp = now


class AdaptiveConcurrency:
    """How many requests may be in flight: halved on throttling, grown back by one per round of successes."""

    def __init__(self, maximum: int, *, minimum: int = 1, clock: Clock = time.monotonic) -> None:
        self.maximum = maximum
        self.minimum = minimum
        self.limit = float(maximum)
        self.in_flight = 0
        self._clock = clock
        self._last_decrease = -math.inf
        self._changed = anyio.Event()

    async def acquire(self) -> None:
        """Wait for an in-flight slot; pair with :meth:`release`."""
        while self.in_flight >= int(self.limit):
            changed = self._changed
            await changed.wait()
        self.in_flight += 1

    def release(self) -> None:
        """Give back a slot taken by :meth:`acquire`."""
        self.in_flight -= 1
        self._notify()

    def throttled(self) -> None:
        """The server said slow down (429 or 503)."""
        now = self._clock()
        if now - self._last_decrease >= 1.0:
            self.limit = max(float(self.minimum), math.floor(self.limit / 2))
            self._last_decrease = now

    def succeeded(self) -> None:
        """A request went through."""
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1.0 / self.limit)
            self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


class RequestGate:
    """Everything a request passes before it is sent: the adaptive concurrency and the rate-limit buckets."""

    def __init__(self, limits: RateLimits, *, max_in_flight: int, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.concurrency = AdaptiveConcurrency(max_in_flight, minimum=limits.min_concurrency, clock=clock)
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        self._requests = TokenBucket(rpm, clock=clock) if rpm is not None else None
        self._tokens = TokenBucket(tpm, clock=clock) if tpm is not None else None

    async def admit(self, estimated_tokens: float) -> None:
        """Wait for the rate limits and an in-flight slot; pair with :meth:`done`."""
        if self._requests is not None:
            await self._requests.take(1)
        if self._tokens is not None:
            await self._tokens.take(estimated_tokens)
        await self.concurrency.acquire()  # requests queued in the pool would spend their timeout waiting

    def done(self, status: int | None) -> None:
        """Free the request's slot and feed its status (``None``: no answer) into the adaptive concurrency."""
        self.concurrency.release()
        if status is not None:
            self.record(status)

    def record(self, status: int) -> None:
        """Feed a reply's status back into the adaptive concurrency."""
        if not self.limits.adaptive:
            return
        if status in (429, 503):
            self.concurrency.throttled()
        elif status < 400:
            self.concurrency.succeeded()


class RetryBudget:
    """Retries left for the requests of one judged item."""

    def __init__(self, retries: int) -> None:
        self.left = retries

    def spend(self) -> bool:
        """Take one retry; false when none is left."""
        if self.left <= 0:
            return False
        self.left -= 1
        return True


current_retry_budget: ContextVar[RetryBudget | None] = ContextVar("grmjudge_retry_budget", default=None)
"""The budget of the item being judged; tasks started while judging it inherit it."""
