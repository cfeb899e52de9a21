"""The fault-injecting server: each fault as the wire and grmjudge see it, then 10,000 items through 20 % faults."""

from __future__ import annotations

import json
import math
import socket
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from grmjudge import (
    BackendConnectionError,
    BackendResponseError,
    BackendTimeoutError,
    GenerationRequest,
    Judge,
    JudgeSettings,
    Message,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from grmjudge.backends import OpenAIBackend
from grmjudge.results import BatchResult, Sample, SampleError
from grmjudge.testing.fake_openai import FakeOpenAIServer
from grmjudge.testing.faults import (
    STATS_PATH,
    ConnectionDropped,
    FaultKind,
    FaultPlan,
    FaultStats,
    FaultyOpenAIServer,
    main,
)

from .servers import LocalServer, serve

MODEL = "fake-grm"
BASE_URL = "http://fake/v1"
CHAT = "/v1/chat/completions"
QUERY = "What is 2 + 2?"
A = "Four."  # the fake scores 1 + len % 10 = 6
B = "It is 4, as two plus two is four."  # scores 4
PARSE_REASON = {FaultKind.LENGTH: "truncated", FaultKind.WRONG_COUNT: "wrong_count", FaultKind.NO_BOX: "no_boxed"}


def fake_score(text: str) -> int:
    return 1 + len(text) % 10


def chat_body(text: str = "Hello", n: int = 1) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": text}], "n": n}


def user_request(n: int = 1) -> GenerationRequest:
    return GenerationRequest(messages=(Message(role="user", content="Hello"),), n=n, temperature=0.5, seed=1)


def recorder() -> tuple[list[float], Callable[[float], Any]]:
    """An injected backoff sleep that records the delay instead of waiting."""
    waits: list[float] = []

    async def sleep(delay: float) -> None:
        waits.append(delay)

    return waits, sleep


@pytest.fixture
async def connect() -> AsyncIterator[Callable[[FaultyOpenAIServer], httpx.AsyncClient]]:
    """In-process clients on fault servers (no sockets), closed after the test."""
    clients: list[httpx.AsyncClient] = []

    def make(server: FaultyOpenAIServer) -> httpx.AsyncClient:
        clients.append(httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://fake"))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()


Connect = Callable[[FaultyOpenAIServer], httpx.AsyncClient]


def only(kind: FaultKind, **options: Any) -> FaultyOpenAIServer:
    """A server whose every generation request gets ``kind``."""
    return FaultyOpenAIServer(FaultPlan.model_validate({kind.value: 1.0, **options}))


# ---------------------------------------------------------------- the plan


@pytest.mark.parametrize("rate", [-0.1, 1.5, math.nan])
def test_a_rate_outside_0_1_is_refused_naming_the_field(rate: float) -> None:
    with pytest.raises(ValidationError, match="status_503"):
        FaultPlan(status_503=rate)


def test_rates_adding_up_to_more_than_one_are_refused_with_the_total() -> None:
    with pytest.raises(ValidationError, match=r"add up to 1\.2, more than 1 \(status_429=0\.7, slow=0\.5\)"):
        FaultPlan(status_429=0.7, slow=0.5)


def test_the_plan_is_frozen_and_knows_no_other_field() -> None:
    with pytest.raises(ValidationError, match="extra"):
        FaultPlan(rate_429=0.1)  # type: ignore[call-arg]
    plan = FaultPlan(slow=0.1)
    with pytest.raises(ValidationError, match="frozen"):
        plan.slow = 0.2  # type: ignore[misc]


def test_each_kind_takes_its_slice_of_the_draw() -> None:
    plan = FaultPlan(status_429=0.25, no_box=0.5)
    assert [plan.pick(u) for u in (0.0, 0.2499, 0.25, 0.7499, 0.75, 0.9999)] == [
        FaultKind.STATUS_429,
        FaultKind.STATUS_429,
        FaultKind.NO_BOX,
        FaultKind.NO_BOX,
        None,
        None,
    ]
    everything = FaultPlan.model_validate({kind.value: 0.1 for kind in FaultKind})  # sums to 1 in floating point
    assert everything.pick(0.999999) == FaultKind.NO_BOX
    assert {everything.pick(i / 100) for i in range(100)} == set(FaultKind)


# ---------------------------------------------------------------- draws


def test_rates_are_honoured() -> None:
    plan = FaultPlan(status_429=0.05, slow=0.01, dropped=0.2, no_box=0.1)
    server = FaultyOpenAIServer(plan, seed=3)
    n = 20_000
    drawn = Counter(server.draw(CHAT, json.dumps(chat_body(f"request {i}")).encode()) for i in range(n))
    for kind, rate in plan.rates().items():
        sigma = math.sqrt(n * rate * (1 - rate))
        assert abs(drawn[kind] - n * rate) <= 5 * sigma, (kind, drawn[kind])
    assert drawn[None] + sum(drawn[kind] for kind in FaultKind) == n


async def faults_seen(client: httpx.AsyncClient, server: FaultyOpenAIServer, bodies: list[bytes]) -> list[str | None]:
    """The fault each body got, read from the server's counters around its request."""
    seen: list[str | None] = []
    for body in bodies:
        before = server.stats().injected
        await client.post(CHAT, content=body)
        after = server.stats().injected
        changed = [kind.value for kind in FaultKind if after[kind] != before[kind]]
        seen.append(changed[0] if changed else None)
    return seen


@pytest.mark.anyio
async def test_the_draw_follows_the_request_not_its_arrival_order(connect: Connect) -> None:
    plan = FaultPlan(status_429=0.2, status_500=0.2, length=0.2, retry_after_429=0.0)
    bodies = [json.dumps(chat_body(f"request {i}")).encode() for i in range(60)]
    forward, backward, other_seed = (FaultyOpenAIServer(plan, seed=s) for s in (1, 1, 2))

    in_order = await faults_seen(connect(forward), forward, bodies)
    reversed_order = await faults_seen(connect(backward), backward, bodies[::-1])
    with_other_seed = await faults_seen(connect(other_seed), other_seed, bodies)

    assert in_order == reversed_order[::-1]
    assert len(set(in_order)) == 4  # every kind and no fault all occur, so the equality above means something
    assert with_other_seed != in_order


@pytest.mark.anyio
async def test_a_repeated_request_gets_a_fresh_draw_each_time(connect: Connect) -> None:
    plan = FaultPlan(status_500=0.5)
    body = json.dumps(chat_body()).encode()
    first, second = FaultyOpenAIServer(plan, seed=5), FaultyOpenAIServer(plan, seed=5)
    seen = await faults_seen(connect(first), first, [body] * 40)
    assert set(seen) == {"status_500", None}
    assert await faults_seen(connect(second), second, [body] * 40) == seen


# ---------------------------------------------------------------- each fault in-process, and what grmjudge makes of it


def on(client: httpx.AsyncClient, retry: RetryPolicy, **options: Any) -> OpenAIBackend:
    return OpenAIBackend(BASE_URL, MODEL, http_client=client, retry=retry, **options)


@pytest.mark.anyio
async def test_429_carries_retry_after_and_grmjudge_waits_exactly_that(connect: Connect) -> None:
    server = only(FaultKind.STATUS_429, retry_after_429=0.01)
    client = connect(server)
    raw = await client.post(CHAT, json=chat_body())
    assert raw.status_code == 429
    assert raw.headers["retry-after"] == "0.01"
    assert raw.json()["error"]["type"] == "rate_limit_error"

    waits, sleep = recorder()
    with pytest.raises(RateLimitError) as caught:
        await on(client, RetryPolicy(sleep=sleep)).generate(user_request())
    assert caught.value.status_code == 429
    assert caught.value.retry_after == 0.01
    assert waits == [0.01, 0.01]  # max_retries=2: three attempts, two waits of the server's Retry-After
    assert server.stats().requests == server.stats().injected[FaultKind.STATUS_429] == 1 + 3


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kind", "options", "status", "expected_waits"),
    [
        (FaultKind.STATUS_500, {}, 500, [0.5, 1.0]),
        (FaultKind.STATUS_503, {}, 503, [0.5, 1.0]),
        (FaultKind.STATUS_503, {"retry_after_503": 0.02}, 503, [0.02, 0.02]),
    ],
    ids=["500", "503", "503-retry-after"],
)
async def test_server_errors_are_retried_then_typed(
    connect: Connect, kind: FaultKind, options: dict[str, float], status: int, expected_waits: list[float]
) -> None:
    server = only(kind, **options)
    waits, sleep = recorder()
    with pytest.raises(ServerError) as caught:
        await on(connect(server), RetryPolicy(sleep=sleep, jitter=False)).generate(user_request())
    assert caught.value.status_code == status
    assert caught.value.retry_after == options.get("retry_after_503")
    assert waits == expected_waits  # exponential backoff from 0.5 s, or the server's Retry-After
    assert server.stats().requests == server.stats().injected[kind] == 3


@pytest.mark.anyio
async def test_every_retryable_fault_costs_exactly_one_wait(connect: Connect) -> None:
    plan = FaultPlan(status_429=0.15, status_500=0.15, status_503=0.15, retry_after_429=0.0)
    server = FaultyOpenAIServer(plan, seed=11)
    waits, sleep = recorder()
    items = [{"query": f"Question {i}?", "responses": [A, B + "!" * i]} for i in range(50)]
    judge = Judge(on(connect(server), RetryPolicy(max_retries=3, sleep=sleep)))
    results = await judge.score_many(items, k=2, concurrency=8)

    samples = [s for r in results if r.result is not None for s in r.result.samples]
    assert len(samples) == 100
    gave_up = [s for s in samples if s.error is not None]
    assert all(s.error is not None and s.error.kind == "backend" for s in gave_up)
    stats = server.stats()
    assert stats.faults > 20
    # each fault is followed by a retry, except the last of a request that ran out of retries
    assert len(waits) == stats.faults - len(gave_up)
    assert stats.requests == len(samples) + len(waits)


@pytest.mark.anyio
async def test_a_slow_reply_in_process_is_late_but_correct(connect: Connect) -> None:
    server = only(FaultKind.SLOW, slow_delay=0.05)
    started = time.perf_counter()
    result = await Judge(on(connect(server), RetryPolicy())).score(QUERY, [A, B], k=2)
    assert time.perf_counter() - started >= 0.05
    assert result.scores == [2.0 * fake_score(A), 2.0 * fake_score(B)]
    assert server.stats().injected[FaultKind.SLOW] == 2


@pytest.mark.anyio
async def test_a_dropped_connection_in_process_raises_connection_dropped(connect: Connect) -> None:
    server = only(FaultKind.DROPPED)
    with pytest.raises(ConnectionDropped, match="no connection to close"):
        await connect(server).post(CHAT, json=chat_body())
    assert server.stats().injected[FaultKind.DROPPED] == 1


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [FaultKind.TRUNCATED_JSON, FaultKind.INVALID_JSON])
async def test_a_200_that_is_not_json_is_a_response_error_and_not_retried(connect: Connect, kind: FaultKind) -> None:
    server = only(kind)
    client = connect(server)
    raw = await client.post(CHAT, json=chat_body(n=2))
    assert raw.status_code == 200
    assert int(raw.headers["content-length"]) == len(raw.content)  # the framing is intact, the JSON is not
    with pytest.raises(json.JSONDecodeError):
        json.loads(raw.content)
    intact = await connect(FaultyOpenAIServer()).post(CHAT, json=chat_body(n=2))
    if kind == FaultKind.TRUNCATED_JSON:
        assert len(raw.content) == len(intact.content) // 2
        assert intact.content.startswith(raw.content[:80])  # "created" may differ by a second further on
    else:
        assert len(raw.content) == len(intact.content)

    waits, sleep = recorder()
    with pytest.raises(BackendResponseError, match="answered 200 with a body that is not JSON") as caught:
        await on(client, RetryPolicy(sleep=sleep)).generate(user_request())
    assert type(caught.value) is BackendResponseError
    assert waits == []
    assert server.stats().requests == server.stats().injected[kind] == 2


@pytest.mark.anyio
@pytest.mark.parametrize("endpoint", ["chat", "completions"])
@pytest.mark.parametrize("kind", [FaultKind.LENGTH, FaultKind.WRONG_COUNT, FaultKind.NO_BOX])
async def test_unscorable_judgements_are_typed_parse_failures(connect: Connect, kind: FaultKind, endpoint: str) -> None:
    server = only(kind)
    backend = on(connect(server), RetryPolicy(), endpoint=endpoint)
    judge = Judge(backend, settings=JudgeSettings(max_resample_rounds=0))
    result = await judge.score(QUERY, [A, B], k=4)

    assert result.scores is None
    assert result.no_verdict is not None
    assert result.no_verdict.failures == {PARSE_REASON[kind]: 4}
    for sample in result.samples:
        assert sample.error == SampleError(kind="parse", reason=PARSE_REASON[kind], message=sample.error.message)
        assert sample.text is not None
        if kind == FaultKind.LENGTH:
            assert sample.finish_reason == "length"
            assert "\\boxed{" not in sample.text  # cut to half its words, before the scores
        elif kind == FaultKind.WRONG_COUNT:
            assert sample.error.message.startswith("expected 2 scores, found 3")
        else:
            assert "\\boxed{" not in sample.text
            assert "Scores: {" in sample.text
    assert server.stats().injected[kind] == server.stats().requests == 2  # k=4 balanced: two orders, n=2 each


@pytest.mark.anyio
@pytest.mark.parametrize("kind", [FaultKind.WRONG_COUNT, FaultKind.NO_BOX])
async def test_a_box_fault_on_a_reply_without_a_box_counts_nothing(connect: Connect, kind: FaultKind) -> None:
    server = FaultyOpenAIServer(FaultPlan.model_validate({kind.value: 1.0}), app=FakeOpenAIServer(lambda r, i: "7"))
    raw = await connect(server).post(CHAT, json=chat_body())
    assert raw.json()["choices"][0]["message"]["content"] == "7"
    assert server.stats().requests == 1
    assert server.stats().faults == 0


@pytest.mark.anyio
async def test_a_rewrite_fault_leaves_an_error_answer_alone(connect: Connect) -> None:
    server = only(FaultKind.LENGTH)
    raw = await connect(server).post(CHAT, json={"messages": [{"role": "user", "content": "Hi"}]})
    assert raw.status_code == 400
    assert raw.json()["error"]["message"] == "'model' is required"
    assert server.stats() == FaultStats(requests=1, injected=dict.fromkeys(FaultKind, 0))


@pytest.mark.anyio
async def test_stats_over_http_and_other_routes(connect: Connect) -> None:
    server = FaultyOpenAIServer(FaultPlan(no_box=0.5), seed=1)
    client = connect(server)
    for i in range(10):
        assert (await client.post(CHAT, json=chat_body(f"request {i}"))).status_code == 200
    models = await client.get("/v1/models")
    assert models.json()["data"][0]["id"] == MODEL  # passed to the wrapped app, not counted

    stats = server.stats()
    assert stats.requests == 10
    assert 0 < stats.injected[FaultKind.NO_BOX] < 10
    answer = await client.get(STATS_PATH)
    assert answer.status_code == 200
    assert answer.json() == {"requests": 10, "injected": {kind.value: stats.injected[kind] for kind in FaultKind}}
    assert FaultStats.model_validate(answer.json()) == stats
    refused = await client.post(STATS_PATH)
    assert refused.status_code == 405
    assert refused.headers["allow"] == "GET"


def test_the_command_line_refuses_a_bad_plan(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--rate-429", "0.7", "--rate-truncated-json", "0.6"])
    assert caught.value.code == 2
    assert "the fault rates add up to 1.3, more than 1 (status_429=0.7, truncated_json=0.6)" in capsys.readouterr().err


# ---------------------------------------------------------------- over TCP: dropped connections and timeouts


@pytest.fixture(scope="module")
def dropping() -> Iterator[LocalServer]:
    pytest.importorskip("uvicorn")
    with serve("grmjudge.testing.faults", ["--rate-dropped", "1"]) as server:
        yield server


def read_stats(server: LocalServer) -> FaultStats:
    return FaultStats.model_validate(httpx.get(server.root + STATS_PATH).json())


def test_a_dropped_connection_sends_not_one_byte(dropping: LocalServer) -> None:
    before = read_stats(dropping).requests
    port = int(dropping.root.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        body = json.dumps(chat_body()).encode()
        head = f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
        sock.sendall(head.encode() + body)
        assert sock.recv(1024) == b""  # end of stream, no status line: uvicorn sent no 500 either
    assert read_stats(dropping).requests == before + 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("client", "cause"),
    [("own", "the server closed the connection before replying"), ("httpx", "RemoteProtocolError")],
)
async def test_a_dropped_connection_is_a_retried_connection_error(
    dropping: LocalServer, client: str, cause: str
) -> None:
    http_client = httpx.AsyncClient() if client == "httpx" else None  # a caller's client is used as is
    before = read_stats(dropping)
    waits, sleep = recorder()
    backend = OpenAIBackend(dropping.base_url, MODEL, retry=RetryPolicy(sleep=sleep), http_client=http_client)
    async with backend:
        with pytest.raises(BackendConnectionError, match=f"failed: {cause}") as caught:
            await backend.generate(user_request())
    if http_client is not None:
        await http_client.aclose()
    assert type(caught.value) is BackendConnectionError  # not a timeout
    assert len(waits) == 2
    after = read_stats(dropping)
    dropped = after.injected[FaultKind.DROPPED] - before.injected[FaultKind.DROPPED]
    assert after.requests - before.requests == dropped == 3


@pytest.mark.anyio
async def test_a_reply_slower_than_the_timeout_is_a_retried_timeout() -> None:
    pytest.importorskip("uvicorn")
    with serve("grmjudge.testing.faults", ["--rate-slow", "1", "--slow-delay", "1"]) as server:
        waits, sleep = recorder()
        backend = OpenAIBackend(server.base_url, MODEL, timeout=0.2, retry=RetryPolicy(max_retries=1, sleep=sleep))
        async with backend:
            with pytest.raises(BackendTimeoutError, match="timed out"):
                await backend.generate(user_request())
        assert len(waits) == 1
        assert read_stats(server).injected[FaultKind.SLOW] == read_stats(server).requests == 2


# ---------------------------------------------------------------- 10,000 items through 20 % faults, over TCP

N_ITEMS = 10_000  # k=2 keeps this fast: two requests of n=1 per item (one per response order)
BIG_PLAN = {
    "--rate-429": 0.03,
    "--rate-500": 0.03,
    "--rate-503": 0.03,
    "--rate-dropped": 0.03,
    "--rate-truncated-json": 0.02,
    "--rate-invalid-json": 0.02,
    "--rate-length": 0.01,
    "--rate-wrong-count": 0.01,
    "--rate-no-box": 0.01,
    "--rate-slow": 0.01,
}
# a healthy request on a loaded 2-core machine can take over half a second; the slow fault must outlast the timeout
SLOW_DELAY, CLIENT_TIMEOUT = 4.0, 3.0
BIG_RETRY = RetryPolicy(max_retries=2, initial_backoff=0.001, max_backoff=0.01, max_retry_after=0.05)
RETRYABLE_ERRORS = {"RateLimitError", "ServerError", "BackendConnectionError", "BackendTimeoutError"}
BACKEND_MESSAGES = {
    "RateLimitError": "answered HTTP 429",
    "ServerError": "answered HTTP 50",
    "BackendConnectionError": "failed: ServerDisconnectedError",
    "BackendTimeoutError": "timed out",
    "BackendResponseError": "answered 200 with a body that is not JSON",
}


def big_item(i: int) -> dict[str, Any]:
    return {"query": f"Question {i}?", "responses": [f"Answer {i}.", "x" * (i % 13) + " maybe"]}


def every_error(sample: Sample) -> list[SampleError]:
    """The sample's errors over its re-asks: the earlier ones, then its own."""
    return [*sample.earlier_errors, *([sample.error] if sample.error is not None else [])]


@pytest.mark.slow
@pytest.mark.anyio
async def test_ten_thousand_items_through_twenty_percent_faults() -> None:
    pytest.importorskip("uvicorn")
    assert math.isclose(sum(BIG_PLAN.values()), 0.2)
    flags = [str(part) for flag, rate in BIG_PLAN.items() for part in (flag, rate)]
    options = ["--seed", "7", "--slow-delay", str(SLOW_DELAY), "--retry-after-429", "0.01", "--retry-after-503", "0.01"]
    with serve("grmjudge.testing.faults", [*flags, *options]) as server:
        backend = OpenAIBackend(server.base_url, MODEL, timeout=CLIENT_TIMEOUT, retry=BIG_RETRY)
        results: list[BatchResult] = []
        async with Judge(backend, max_concurrent_requests=128) as judge:
            async with judge.stream((big_item(i) for i in range(N_ITEMS)), k=2, concurrency=128) as stream:
                async for result in stream:
                    results.append(result)
        stats = read_stats(server)

    # every item exactly once; none raised (every fault here is a sample's failure, not the item's)
    assert sorted(r.index for r in results) == list(range(N_ITEMS))
    assert all(r.item_id == str(r.index) and r.error is None and r.result is not None for r in results)
    scored = [(r.index, r.result) for r in results if r.result is not None]

    samples: list[Sample] = []
    for index, result in scored:
        assert len(result.samples) == 2
        samples += result.samples
        if result.ok:  # a verdict sums the valid votes, mapped back through the shuffles
            texts = big_item(index)["responses"]
            assert result.scores == [float(result.n_kept * fake_score(t)) for t in texts]
        else:
            assert result.no_verdict is not None
            assert result.no_verdict.failures == Counter(s.error.reason for s in result.samples if s.error)

    # every failure is typed, and its message says what happened
    errors = [e for s in samples for e in every_error(s)]
    for error in errors:
        if error.kind == "parse":
            assert error.reason in PARSE_REASON.values()
        else:
            assert error.kind == "backend"
            assert BACKEND_MESSAGES[error.reason] in error.message, error
    assert all(e.kind == "parse" for s in samples for e in s.earlier_errors)  # only parse failures are re-asked

    # the client's accounting against the server's
    by_reason = Counter(e.reason for e in errors)
    for kind, reason in PARSE_REASON.items():  # each damaged judgement reached the client and was typed as such
        assert by_reason[reason] == stats.injected[kind] > 0, kind
    bad_json = stats.injected[FaultKind.TRUNCATED_JSON] + stats.injected[FaultKind.INVALID_JSON]
    assert by_reason["BackendResponseError"] == bad_json > 0  # not retried: one request, one failed sample
    calls = len(samples) + sum(len(s.earlier_errors) for s in samples)  # generate() calls: one per sample attempt
    gave_up = sum(by_reason[reason] for reason in RETRYABLE_ERRORS)  # calls whose last attempt was a retryable fault
    assert stats.requests <= calls * (BIG_RETRY.max_retries + 1)
    # every call's last request is a success, a bad body or a retryable fault it gave up on; every other request
    # it made was a retryable fault that was retried
    assert stats.requests == calls - gave_up + stats.retryable_faults
    succeeded = sum(r.usage.requests for _, r in scored)
    assert succeeded == calls - gave_up - by_reason["BackendResponseError"]
    assert all(stats.injected[kind] > 0 for kind in FaultKind)
    for reason, kinds in {
        "RateLimitError": [FaultKind.STATUS_429],
        "ServerError": [FaultKind.STATUS_500, FaultKind.STATUS_503],
        "BackendConnectionError": [FaultKind.DROPPED],
        "BackendTimeoutError": [FaultKind.SLOW],
    }.items():
        assert by_reason[reason] <= sum(stats.injected[kind] for kind in kinds)
