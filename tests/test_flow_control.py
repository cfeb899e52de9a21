"""Rate limits, adaptive concurrency, per-item retry budgets and replicas, against real HTTP handling."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import anyio
import httpx
import pytest

from grmjudge import Judge, JudgeSettings, RetryPolicy
from grmjudge.backends import OpenAIBackend
from grmjudge.backends._replicas import ReplicaPool
from grmjudge.backends.limits import AdaptiveConcurrency, RateLimits, RequestGate, TokenBucket
from grmjudge.testing.fake_openai import FakeOpenAIServer

from .servers import serve

pytestmark = pytest.mark.anyio

QUERY = "How do I sort a list?"
PAIR = ["Use sorted(xs).", "xs.sort() sorts in place."]


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def no_wait(_: float) -> None:
    return None


def fast_retries(max_retries: int = 2) -> RetryPolicy:
    return RetryPolicy(max_retries=max_retries, sleep=no_wait)


def routed_client(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


async def test_token_bucket_waits_for_refill() -> None:
    bucket = TokenBucket(per_minute=6000)  # 100 per second, 6000 at most
    started = time.monotonic()
    await bucket.take(6000)
    assert time.monotonic() - started < 0.05  # a full bucket answers at once
    await bucket.take(5)
    assert time.monotonic() - started >= 0.045  # then 5 units take 50 ms to refill


async def test_token_bucket_caps_a_request_larger_than_its_capacity() -> None:
    bucket = TokenBucket(per_minute=6000)
    with anyio.fail_after(1):
        await bucket.take(10**9)  # waits for a full bucket, not forever


async def test_adaptive_concurrency_halves_on_throttling_and_grows_back() -> None:
    clock = FakeClock()
    concurrency = AdaptiveConcurrency(16, clock=clock)
    concurrency.throttled()
    concurrency.throttled()  # the same burst: counted once
    assert concurrency.limit == 8
    clock.now += 1.5
    concurrency.throttled()
    assert concurrency.limit == 4
    for _ in range(5):
        concurrency.succeeded()
    assert int(concurrency.limit) == 5  # about one round of successes adds one
    for _ in range(10_000):
        concurrency.succeeded()
    assert concurrency.limit == 16
    for _ in range(10):
        clock.now += 2
        concurrency.throttled()
    assert concurrency.limit == 1


async def test_adaptive_concurrency_blocks_beyond_the_limit() -> None:
    concurrency = AdaptiveConcurrency(2)
    peak = 0

    async def request() -> None:
        nonlocal peak
        await concurrency.acquire()
        try:
            peak = max(peak, concurrency.in_flight)
            await anyio.sleep(0.01)
        finally:
            concurrency.release()

    async with anyio.create_task_group() as tg:
        for _ in range(8):
            tg.start_soon(request)
    assert peak == 2 and concurrency.in_flight == 0


async def test_429s_shrink_the_requests_in_flight_and_successes_restore_them() -> None:
    in_flight = 0
    peaks: list[int] = []
    throttle = True

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight
        in_flight += 1
        peaks.append(in_flight)
        await anyio.sleep(0.002)
        in_flight -= 1
        if throttle:
            return httpx.Response(429, headers={"retry-after": "0"}, json={"error": {"message": "slow down"}})
        return httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": "x"}}]})

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        backend = OpenAIBackend("http://a/v1", "m", http_client=client, retry=fast_retries(0), max_connections=32)
        judge = Judge(backend, settings=JudgeSettings(max_resample_rounds=0))
        await judge.score_many([{"query": f"q{i}", "responses": ["a"]} for i in range(64)])
        gate = backend.http.gate
        assert gate.concurrency.limit < 32
        throttle = False
        await judge.score_many([{"query": f"r{i}", "responses": ["a"]} for i in range(400)])
        assert gate.concurrency.limit > 8


async def test_requests_per_minute_limit_paces_requests() -> None:
    app = FakeOpenAIServer()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake") as client:
        limits = RateLimits(requests_per_minute=600)  # 10 per second, 600 at first
        backend = OpenAIBackend("http://fake/v1", "fake-grm", http_client=client, rate_limits=limits)
        gate = backend.http.gate
        assert gate._requests is not None  # pyright: ignore[reportPrivateUsage]
        await gate._requests.take(600)  # pyright: ignore[reportPrivateUsage]  # spend the first minute's burst
        started = time.monotonic()
        await Judge(backend).score(QUERY, PAIR, k=2)  # two requests need 0.2 s of refill
    assert time.monotonic() - started >= 0.18


async def test_tokens_per_minute_limit_counts_the_estimate() -> None:
    clock = FakeClock()
    gate = RequestGate(RateLimits(tokens_per_minute=1000), max_in_flight=4, clock=clock)
    await gate.admit(900)
    gate.done(200)
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.05):
            await gate.admit(200)  # 100 short; the fake clock never refills it
    clock.now += 60
    await gate.admit(200)
    gate.done(200)
    assert gate.concurrency.in_flight == 0


async def test_the_retry_budget_is_shared_by_an_items_requests() -> None:
    attempts = 0

    def always_busy(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        return httpx.Response(503, json={"error": {"message": "busy"}})

    async with routed_client(always_busy) as client:
        backend = OpenAIBackend("http://a/v1", "m", http_client=client, retry=fast_retries(5))
        settings = JudgeSettings(retry_budget_per_item=3, max_resample_rounds=0)
        result = await Judge(backend, settings=settings).score(QUERY, PAIR, k=2)
        assert not result.ok
        assert attempts == 2 + 3  # two requests (one per order), three retries between them
        attempts = 0
        await Judge(backend, settings=JudgeSettings(max_resample_rounds=0)).score(QUERY, PAIR, k=2)
        assert attempts == 2 * 6  # without a budget each request gets its own 5 retries


async def test_replica_pool_prefers_the_least_busy_healthy_replica() -> None:
    clock = FakeClock()
    pool = ReplicaPool(["http://a/v1", "http://b/v1/"], cool_down=5, clock=clock)
    a, b = pool.replicas
    assert b.url == "http://b/v1"
    a.outstanding = 3
    assert pool.pick() is b
    pool.failed(b)
    assert pool.pick() is a
    clock.now += 1
    pool.failed(a)
    assert pool.pick() is b  # both out: the one due back first
    clock.now += 5
    assert pool.pick() is b  # back in rotation, and a is busier
    fresh = ReplicaPool(["http://a/v1", "http://b/v1"])
    assert [fresh.pick().url for _ in range(4)] == ["http://a/v1", "http://b/v1"] * 2  # ties take turns


async def test_requests_are_spread_over_replicas_and_avoid_a_dead_one() -> None:
    hosts: Counter[str] = Counter()
    app = FakeOpenAIServer()
    asgi = httpx.ASGITransport(app=app)

    async def handler(request: httpx.Request) -> httpx.Response:
        hosts[request.url.host] += 1
        if request.url.host == "dead":
            raise httpx.ConnectError("connection refused", request=request)
        return await asgi.handle_async_request(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        backend = OpenAIBackend(["http://a/v1", "http://b/v1"], "fake-grm", http_client=client)
        results = await Judge(backend).score_many([{"query": f"q{i}", "responses": PAIR} for i in range(40)], k=2)
        assert all(r.result is not None and r.result.ok for r in results)
        assert hosts["a"] > 10 and hosts["b"] > 10

        hosts.clear()
        backend = OpenAIBackend(["http://dead/v1", "http://b/v1"], "fake-grm", http_client=client, retry=fast_retries())
        results = await Judge(backend).score_many([{"query": f"q{i}", "responses": PAIR} for i in range(40)], k=2)
        assert all(r.result is not None and r.result.ok for r in results)
        assert hosts["dead"] <= 2  # tried, then out of rotation for the cool-down
        assert "dead" in repr(backend)


@pytest.mark.slow
async def test_a_replica_killed_mid_batch_costs_no_verdict() -> None:
    pytest.importorskip("uvicorn")
    with serve() as first, serve() as second:
        retry = RetryPolicy(max_retries=3, initial_backoff=0.01, max_backoff=0.05)
        backend = OpenAIBackend([first.base_url, second.base_url], "fake-grm", retry=retry)
        items = [{"query": f"Question {i}?", "responses": PAIR, "id": str(i)} for i in range(600)]
        seen: list[str] = []
        async with Judge(backend) as judge, judge.stream(items, k=2, concurrency=32) as results:
            async for batch in results:
                seen.append(batch.item_id)
                if len(seen) == 100:
                    first.process.kill()
                assert batch.result is not None and batch.result.ok, batch
        assert sorted(seen, key=int) == [str(i) for i in range(600)]
        assert backend.http.replicas.replicas[0].failures >= 1
