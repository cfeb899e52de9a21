"""OpenAIBackend over real HTTP handling: the fake server in-process, scripted faults, and real TCP."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import anyio.abc
import httpx
import pytest

from grmjudge import (
    DEFAULT_TEMPLATE,
    AuthenticationError,
    BackendConnectionError,
    BackendError,
    BackendResponseError,
    BackendStatusError,
    BackendTimeoutError,
    ConfigurationError,
    GenerationRequest,
    Judge,
    JudgeSettings,
    Message,
    NoVerdictError,
    RateLimitError,
    RetryPolicy,
    ServerError,
    ShuffleMode,
)
from grmjudge.backends import OpenAIBackend, http
from grmjudge.backends.http import parse_retry_after
from grmjudge.testing.fake_openai import FakeOpenAIServer, FakeRequest, default_judgement

from .scripted_http import MockClient, Script, Step, raise_read_timeout, recorder
from .servers import free_port, serve

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "http://fake/v1"
MODEL = "fake-grm"
SECRET = "sk-test-SECRET-0123456789abcdef"
BLOCK = re.compile(r"\[The Begin of Response (\d+)\]\n(.*?)\n\[The End of Response \1\]", re.DOTALL)

QUERY = "What is 2 + 2?"
A = "Four."  # scores 1 + 5 % 10 = 6 in the fake
B = "It is 4, as two plus two is four."  # 33 characters: scores 4
C = "2 + 2 = 4"  # 9 characters: scores 10


def fake_score(text: str) -> int:
    """What the fake's default judgement gives a response (it scores content, not position)."""
    return 1 + len(text) % 10


def expected_totals(texts: list[str], k: int) -> list[float]:
    return [float(k * fake_score(t)) for t in texts]


def shown_order(prompt: str) -> tuple[str, ...]:
    """The response texts in the order the prompt shows them."""
    return tuple(text for _, text in BLOCK.findall(prompt))


def chat_prompt(body: dict[str, Any]) -> str:
    return body["messages"][-1]["content"]


def user_request(text: str = "Hello", n: int = 1) -> GenerationRequest:
    return GenerationRequest(messages=(Message(role="user", content=text),), n=n, temperature=0.5, seed=1)


# ---------------------------------------------------------------- the fake server, in-process over ASGI


@pytest.fixture
def server() -> FakeOpenAIServer:
    return FakeOpenAIServer(model=MODEL)


@pytest.fixture
async def client(server: FakeOpenAIServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://fake") as c:
        yield c


def on_fake(client: httpx.AsyncClient, **kwargs: Any) -> OpenAIBackend:
    return OpenAIBackend(base_url=BASE_URL, model=MODEL, http_client=client, **kwargs)


@pytest.mark.anyio
async def test_balanced_k8_is_two_requests_of_n4_one_per_order(
    server: FakeOpenAIServer, client: httpx.AsyncClient
) -> None:
    result = await Judge(on_fake(client)).score(QUERY, [A, B], k=8)

    assert len(server.requests) == 2
    assert [r.path for r in server.requests] == ["/v1/chat/completions"] * 2
    assert [r.body["n"] for r in server.requests] == [4, 4]
    assert {shown_order(r.prompt_text) for r in server.requests} == {(A, B), (B, A)}
    assert result.scores == expected_totals([A, B], 8) == [48.0, 32.0]
    assert result.best == 0
    assert result.n_valid == result.n_kept == 8
    assert result.usage.requests == 2
    assert Counter(s.permutation for s in result.samples) == {(0, 1): 4, (1, 0): 4}
    assert all(s.scores == (6, 4) for s in result.samples)


@pytest.mark.anyio
async def test_shuffle_none_is_one_request_with_n8(server: FakeOpenAIServer, client: httpx.AsyncClient) -> None:
    judge = Judge(on_fake(client), settings=JudgeSettings(shuffle=ShuffleMode.NONE))
    result = await judge.score(QUERY, [B, A], k=8)

    assert len(server.requests) == 1
    assert server.requests[0].body["n"] == 8
    assert shown_order(server.requests[0].prompt_text) == (B, A)
    assert result.scores == expected_totals([B, A], 8) == [32.0, 48.0]
    assert result.best == 1
    assert result.usage.requests == 1


@pytest.mark.anyio
async def test_random_shuffle_is_one_request_per_distinct_permutation(
    server: FakeOpenAIServer, client: httpx.AsyncClient
) -> None:
    texts = [A, B, C]
    judge = Judge(on_fake(client), settings=JudgeSettings(shuffle=ShuffleMode.RANDOM, seed=3))
    result = await judge.score(QUERY, texts, k=8)

    per_permutation = Counter(s.permutation for s in result.samples)
    assert len(per_permutation) > 1  # seed 3 draws several orders, so this checks the grouping
    assert len(server.requests) == len(per_permutation) == result.usage.requests
    by_order = {shown_order(r.prompt_text): r.body["n"] for r in server.requests}
    assert by_order == {tuple(texts[i] for i in perm): n for perm, n in per_permutation.items()}
    assert result.scores == expected_totals(texts, 8) == [48.0, 32.0, 80.0]
    assert result.best == 2


@pytest.mark.anyio
async def test_request_body_fields(server: FakeOpenAIServer, client: httpx.AsyncClient) -> None:
    backend = on_fake(client, extra_body={"repetition_penalty": 1.05, "top_k": 5})
    settings = JudgeSettings(max_tokens=321, top_p=0.9, extra_body={"top_k": 20, "min_p": 0.1})
    result = await Judge(backend, settings=settings).score(QUERY, [A, B], k=8)

    assert result.ok
    assert len(server.requests) == 2
    for request in server.requests:
        body = request.body
        order = shown_order(chat_prompt(body))
        assert body["model"] == MODEL
        assert body["messages"] == [{"role": "user", "content": DEFAULT_TEMPLATE.render(QUERY, list(order))}]
        assert body["n"] == 4
        assert body["temperature"] == 0.5
        assert body["max_tokens"] == 321
        assert body["top_p"] == 0.9
        assert isinstance(body["seed"], int)
        # the backend's extra_body is merged, and the call's extra_body wins on a shared key
        assert body["repetition_penalty"] == 1.05
        assert body["top_k"] == 20
        assert body["min_p"] == 0.1
    assert server.requests[0].body["seed"] != server.requests[1].body["seed"]
    # a sample's seed is its choice's: the request's seed plus its position among the n choices
    assert {s.seed for s in result.samples} == {r.body["seed"] + i for r in server.requests for i in range(r.body["n"])}


@pytest.mark.anyio
async def test_k1_is_greedy_and_leaves_out_unset_fields(server: FakeOpenAIServer, client: httpx.AsyncClient) -> None:
    result = await Judge(on_fake(client)).score(QUERY, [A, B], k=1)

    assert result.scores is not None
    assert len(server.requests) == 1
    body = server.requests[0].body
    assert body["n"] == 1
    assert body["temperature"] == 0.0
    assert body["max_tokens"] == 2048
    assert "top_p" not in body
    assert set(body) == {"model", "messages", "n", "temperature", "max_tokens", "seed"}


@pytest.mark.anyio
async def test_completions_endpoint_sends_the_filled_template_as_prompt(
    server: FakeOpenAIServer, client: httpx.AsyncClient
) -> None:
    backend = on_fake(client, endpoint="completions")
    assert backend.url == "http://fake/v1/completions"
    result = await Judge(backend).score(QUERY, [A, B], k=8)

    assert len(server.requests) == 2
    for request in server.requests:
        assert request.path == "/v1/completions"
        assert "messages" not in request.body
        order = shown_order(request.body["prompt"])
        assert request.body["prompt"] == DEFAULT_TEMPLATE.render(QUERY, list(order))
    assert result.scores == expected_totals([A, B], 8)
    assert all(s.text is not None and s.text.endswith("\\boxed{6, 4}") for s in result.samples if s.permutation[0] == 0)


@pytest.mark.anyio
async def test_completions_endpoint_with_render_prompt(server: FakeOpenAIServer, client: httpx.AsyncClient) -> None:
    backend = on_fake(client, endpoint="completions", render_prompt=lambda ms: "<|user|>" + ms[-1].content)
    generation = await backend.generate(user_request("some prompt", n=2))
    assert server.requests[0].body["prompt"] == "<|user|>some prompt"
    assert len(generation.completions) == 2
    assert generation.usage.requests == 1
    assert generation.usage.prompt_tokens == 2
    assert generation.model == MODEL


@pytest.mark.anyio
async def test_completions_endpoint_refuses_a_multi_message_chat_without_render_prompt(
    client: httpx.AsyncClient,
) -> None:
    backend = on_fake(client, endpoint="completions")
    request = GenerationRequest(
        messages=(Message(role="system", content="Be terse."), Message(role="user", content="Hi"))
    )
    with pytest.raises(ConfigurationError, match="render_prompt"):
        await backend.generate(request)


def test_unknown_endpoint_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="endpoint"):
        OpenAIBackend(base_url=BASE_URL, model=MODEL, endpoint="responses")  # type: ignore[arg-type]


def test_base_url_trailing_slash_is_dropped() -> None:
    assert OpenAIBackend(base_url="http://host/v1/", model=MODEL).url == "http://host/v1/chat/completions"


# ---------------------------------------------------------------- the API key


def assert_secret_hidden(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


@pytest.mark.anyio
async def test_api_key_argument_is_sent_as_bearer_and_never_shown(
    server: FakeOpenAIServer, client: httpx.AsyncClient
) -> None:
    backend = on_fake(client, api_key=SECRET)
    judge = Judge(backend)
    result = await judge.score(QUERY, [A, B], k=2)

    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {SECRET}"}
    assert_secret_hidden(repr(backend), str(backend), repr(judge), result.model_dump_json(), repr(result))


@pytest.mark.anyio
async def test_api_key_from_environment(
    monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer, client: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    backend = on_fake(client)
    judge = Judge(backend)
    result = await judge.score(QUERY, [A, B], k=1)

    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    assert_secret_hidden(repr(backend), repr(judge), result.model_dump_json())


@pytest.mark.anyio
async def test_explicit_api_key_beats_the_environment(
    monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer, client: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    await on_fake(client, api_key=SECRET).generate(user_request())
    assert server.requests[0].headers["authorization"] == f"Bearer {SECRET}"


@pytest.mark.anyio
async def test_no_key_sends_no_authorization_header(server: FakeOpenAIServer, client: httpx.AsyncClient) -> None:
    await on_fake(client, headers={"x-trace": "abc"}).generate(user_request())
    assert "authorization" not in server.requests[0].headers
    assert server.requests[0].headers["x-trace"] == "abc"
    assert server.requests[0].headers["content-type"] == "application/json"


def raise_connect(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "handler",
    [
        lambda request: httpx.Response(401, json={"error": {"message": "Incorrect API key provided"}}),
        lambda request: httpx.Response(500, text="internal error"),
        lambda request: httpx.Response(400, json={"error": {"message": "bad request"}}),
        lambda request: httpx.Response(200, text="<html>not json</html>"),
        lambda request: httpx.Response(200, json={"no": "choices"}),
        raise_connect,
        raise_read_timeout,
    ],
    ids=["401", "500", "400", "not-json", "no-choices", "connect-error", "timeout"],
)
async def test_api_key_is_not_in_errors(
    monkeypatch: pytest.MonkeyPatch, handler: Callable[[httpx.Request], httpx.Response]
) -> None:
    waits, sleep = recorder()
    seen: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(recording)) as client:
        backend = OpenAIBackend(BASE_URL, MODEL, api_key=SECRET, http_client=client, retry=RetryPolicy(sleep=sleep))
        with pytest.raises(BackendError) as caught:
            await backend.generate(user_request())
        result = await Judge(backend).score(QUERY, [A, B], k=2)

    assert seen[0].headers["authorization"] == f"Bearer {SECRET}"
    assert_secret_hidden(str(caught.value), repr(caught.value), result.model_dump_json())
    assert result.no_verdict is not None


# ---------------------------------------------------------------- client ownership and closing


@pytest.mark.anyio
async def test_injected_client_stays_open_after_aclose(client: httpx.AsyncClient) -> None:
    backend = on_fake(client)
    await backend.generate(user_request())
    await backend.aclose()
    assert backend.closed
    assert not client.is_closed
    response = await client.get("/v1/models")
    assert response.status_code == 200


@pytest.mark.anyio
async def test_backend_created_client_is_closed_by_aclose() -> None:
    backend = OpenAIBackend(base_url="http://127.0.0.1:9/v1", model=MODEL)
    created = backend.http.transport()
    assert backend.http.transport() is created  # created once, then reused
    assert not created.closed
    await backend.aclose()
    assert created.closed
    assert backend.closed


def test_close_from_synchronous_code_closes_the_own_client() -> None:
    backend = OpenAIBackend(base_url="http://127.0.0.1:9/v1", model=MODEL)
    created = backend.http.transport()
    backend.close()
    assert created.closed
    assert backend.closed


@pytest.mark.anyio
async def test_aclose_leaves_an_injected_client_alone(client: httpx.AsyncClient) -> None:
    backend = on_fake(client)
    assert backend.http.transport().client is client  # type: ignore[attr-defined]
    await backend.aclose()
    assert not client.is_closed


@pytest.mark.anyio
async def test_async_with_closes_the_backend(server: FakeOpenAIServer, client: httpx.AsyncClient) -> None:
    async with on_fake(client) as backend:
        generation = await backend.generate(user_request(n=3))
        assert len(generation.completions) == 3
    assert backend.closed
    assert not client.is_closed
    with pytest.raises(ConfigurationError, match="closed"):
        async with backend:
            pass


@pytest.mark.anyio
async def test_generate_after_aclose_raises(server: FakeOpenAIServer, client: httpx.AsyncClient) -> None:
    backend = on_fake(client)
    await backend.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await backend.generate(user_request())
    assert server.requests == []


@pytest.mark.anyio
async def test_judge_aclose_closes_the_backend_but_not_the_injected_client(client: httpx.AsyncClient) -> None:
    async with Judge(on_fake(client)) as judge:
        assert (await judge.score(QUERY, [A, B], k=2)).ok
    assert judge.backend.closed
    assert not client.is_closed


# ---------------------------------------------------------------- backends without n


@pytest.mark.anyio
async def test_supports_n_false_fans_out_one_request_per_sample(
    server: FakeOpenAIServer, client: httpx.AsyncClient
) -> None:
    result = await Judge(on_fake(client, supports_n=False)).score(QUERY, [A, B], k=4)

    assert len(server.requests) == 4
    assert [r.body["n"] for r in server.requests] == [1, 1, 1, 1]
    seeds = [r.body["seed"] for r in server.requests]
    assert len(set(seeds)) == 4
    assert sorted(seeds) == sorted(s.seed for s in result.samples)
    assert result.scores == expected_totals([A, B], 4)
    assert result.usage.requests == 4


# ---------------------------------------------------------------- scripted faults on a mock transport


def judged(finish: Callable[[int], str] = lambda index: "stop") -> Step:
    """A 200 answer as the fake server would give it (its default judgement), per the request's n."""

    def step(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        fake = FakeRequest(path=request.url.path, body=body, headers={})
        n = body.get("n") or 1
        choices = [
            {"index": i, "message": {"role": "assistant", "content": default_judgement(fake, i)}, "finish_reason": f}
            for i, f in ((i, finish(i)) for i in range(n))
        ]
        return httpx.Response(200, json={"model": body["model"], "choices": choices})

    return step


def status(code: int, headers: dict[str, str] | None = None, body: str = "") -> Step:
    return lambda request: httpx.Response(code, headers=headers, text=body or f"error {code}")


def on_mock(make: MockClient, script: Script, retry: RetryPolicy, **kwargs: Any) -> OpenAIBackend:
    return OpenAIBackend(BASE_URL, MODEL, http_client=make(script), retry=retry, **kwargs)


@pytest.mark.anyio
async def test_429_with_retry_after_waits_exactly_that_long(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(status(429, {"Retry-After": "7"}), judged())
    generation = await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request(n=2))

    assert len(generation.completions) == 2
    assert script.calls == 2
    assert waits == [7.0]


@pytest.mark.anyio
async def test_retry_after_above_the_cap_is_capped(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(status(429, {"Retry-After": "3600"}), judged())
    await on_mock(mock_client, script, RetryPolicy(sleep=sleep, max_retry_after=12.5)).generate(user_request())
    assert waits == [12.5]


@pytest.mark.anyio
async def test_retry_after_as_http_date(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    future = "Fri, 01 Jan 2100 00:00:00 GMT"
    script = Script(status(503, {"Retry-After": past}), status(503, {"Retry-After": future}), judged())
    retry = RetryPolicy(sleep=sleep, max_retry_after=30.0)
    await on_mock(mock_client, script, retry).generate(user_request())
    assert waits == [0.0, 30.0]  # a date in the past means now; one far ahead is capped


def test_parse_retry_after() -> None:
    now = datetime(2015, 10, 21, 7, 27, 30, tzinfo=UTC)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=now) == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 +0200", now=now) == 0.0  # two hours earlier in UTC
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None


@pytest.mark.anyio
async def test_500_then_200_succeeds_after_one_retry(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(status(500), judged())
    generation = await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert len(generation.completions) == 1
    assert script.calls == 2
    assert len(waits) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("max_retries", [0, 2, 3])
async def test_500_every_time_raises_server_error_after_all_attempts(mock_client: MockClient, max_retries: int) -> None:
    waits, sleep = recorder()
    script = Script(status(500, body="the GPU caught fire"))
    backend = on_mock(mock_client, script, RetryPolicy(sleep=sleep, max_retries=max_retries))
    with pytest.raises(ServerError) as caught:
        await backend.generate(user_request())
    assert caught.value.status_code == 500
    assert caught.value.body == "the GPU caught fire"
    assert caught.value.retryable
    assert script.calls == max_retries + 1
    assert len(waits) == max_retries


@pytest.mark.anyio
async def test_server_errors_through_the_judge_leave_no_verdict(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(status(500))
    judge = Judge(on_mock(mock_client, script, RetryPolicy(sleep=sleep)))
    result = await judge.score(QUERY, [A, B], k=8)

    assert script.calls == 2 * 3  # two orders, three attempts each
    assert result.scores is None
    assert result.best is None
    assert not result.ok
    assert result.no_verdict is not None
    assert result.no_verdict.failures == {"ServerError": 8}
    assert result.usage.requests == 0
    for sample in result.samples:
        assert sample.error is not None
        assert sample.error.kind == "backend"
        assert sample.error.reason == "ServerError"
        assert "500" in sample.error.message
        assert sample.scores is None


@pytest.mark.anyio
async def test_raise_on_no_verdict(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    backend = on_mock(mock_client, Script(status(500)), RetryPolicy(sleep=sleep))
    judge = Judge(backend, settings=JudgeSettings(raise_on_no_verdict=True))
    with pytest.raises(NoVerdictError) as caught:
        await judge.score(QUERY, [A, B], k=8)
    assert caught.value.no_verdict.failures == {"ServerError": 8}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("code", "error"), [(503, ServerError), (502, ServerError), (408, BackendStatusError), (409, BackendStatusError)]
)
async def test_retryable_statuses_are_retried(mock_client: MockClient, code: int, error: type[Exception]) -> None:
    waits, sleep = recorder()
    script = Script(status(code), judged())
    await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert script.calls == 2

    always = Script(status(code))
    with pytest.raises(error) as caught:
        await on_mock(mock_client, always, RetryPolicy(sleep=sleep)).generate(user_request())
    assert type(caught.value) is error
    assert always.calls == 3


@pytest.mark.anyio
async def test_429_without_retry_after_is_retried_with_backoff(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(status(429))
    with pytest.raises(RateLimitError) as caught:
        await on_mock(mock_client, script, RetryPolicy(sleep=sleep, jitter=False)).generate(user_request())
    assert caught.value.retry_after is None
    assert script.calls == 3
    assert waits == [0.5, 1.0]


@pytest.mark.anyio
@pytest.mark.parametrize("code", [400, 404, 422])
async def test_client_errors_are_not_retried(mock_client: MockClient, code: int) -> None:
    waits, sleep = recorder()
    script = Script(status(code, body='{"error": "nope"}'))
    with pytest.raises(BackendStatusError) as caught:
        await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert type(caught.value) is BackendStatusError
    assert caught.value.status_code == code
    assert not caught.value.retryable
    assert script.calls == 1
    assert waits == []


@pytest.mark.anyio
@pytest.mark.parametrize("code", [401, 403])
async def test_auth_errors_are_not_retried(mock_client: MockClient, code: int) -> None:
    waits, sleep = recorder()
    script = Script(status(code))
    with pytest.raises(AuthenticationError) as caught:
        await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert caught.value.status_code == code
    assert script.calls == 1
    assert waits == []


@pytest.mark.anyio
async def test_a_real_400_from_the_fake_server_is_not_retried(server: FakeOpenAIServer) -> None:
    waits, sleep = recorder()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server)) as client:
        backend = OpenAIBackend(BASE_URL, MODEL, http_client=client, retry=RetryPolicy(sleep=sleep))
        with pytest.raises(BackendStatusError) as caught:
            await backend.generate(user_request().model_copy(update={"temperature": 5.0}))
    assert caught.value.status_code == 400
    assert "temperature" in caught.value.body
    assert waits == []


@pytest.mark.anyio
async def test_timeout_is_retried_then_raises_backend_timeout_error(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    once = Script(raise_read_timeout, judged())
    await on_mock(mock_client, once, RetryPolicy(sleep=sleep)).generate(user_request())
    assert once.calls == 2

    always = Script(raise_read_timeout)
    with pytest.raises(BackendTimeoutError) as caught:
        await on_mock(mock_client, always, RetryPolicy(sleep=sleep)).generate(user_request())
    assert always.calls == 3
    assert "timed out" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


@pytest.mark.anyio
async def test_connect_error_raises_backend_connection_error(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(raise_connect)
    with pytest.raises(BackendConnectionError) as caught:
        await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert type(caught.value) is BackendConnectionError
    assert caught.value.retryable
    assert script.calls == 3


@pytest.mark.anyio
@pytest.mark.parametrize(
    "step",
    [
        lambda request: httpx.Response(200, text='{"choices": [', headers={"content-type": "application/json"}),
        lambda request: httpx.Response(200, content=b"\xff\xfe\x00garbage"),
        lambda request: httpx.Response(200, json=["not", "an", "object"]),
        lambda request: httpx.Response(200, json={"id": "x", "object": "chat.completion"}),
        lambda request: httpx.Response(200, json={"choices": None}),
        lambda request: httpx.Response(200, json={"choices": [{"index": 0, "text": "wrong endpoint"}]}),
        lambda request: httpx.Response(200, json={"choices": [{"index": 0, "message": {"content": 42}}]}),
    ],
    ids=["truncated-json", "binary", "json-array", "no-choices", "null-choices", "no-message", "non-text-content"],
)
async def test_malformed_200_bodies_raise_backend_response_error(mock_client: MockClient, step: Step) -> None:
    waits, sleep = recorder()
    script = Script(step)
    with pytest.raises(BackendResponseError):
        await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert script.calls == 1  # a malformed answer is not retried
    assert waits == []


@pytest.mark.anyio
async def test_undecodable_content_encoding_raises_backend_response_error(mock_client: MockClient) -> None:
    script = Script(lambda request: httpx.Response(200, headers={"content-encoding": "gzip"}, content=b"not gzip"))
    with pytest.raises(BackendResponseError, match="undecodable"):
        await on_mock(mock_client, script, RetryPolicy()).generate(user_request())
    assert script.calls == 1


@pytest.mark.anyio
@pytest.mark.parametrize("returned", [3, 5])
async def test_wrong_number_of_choices_raises_backend_response_error(mock_client: MockClient, returned: int) -> None:
    def step(request: httpx.Request) -> httpx.Response:
        choices = [{"index": i, "message": {"content": "x"}, "finish_reason": "stop"} for i in range(returned)]
        return httpx.Response(200, json={"choices": choices})

    with pytest.raises(BackendResponseError, match=f"{returned} choices for n=4"):
        await on_mock(mock_client, Script(step), RetryPolicy()).generate(user_request(n=4))


@pytest.mark.anyio
async def test_choices_are_ordered_by_index_and_null_content_is_empty(mock_client: MockClient) -> None:
    def step(request: httpx.Request) -> httpx.Response:
        choices = [
            {"index": 2, "message": {"content": None}, "finish_reason": "content_filter"},
            {"index": 0, "message": {"content": "first"}, "finish_reason": "stop"},
            {"index": 1, "message": {"content": "second"}, "finish_reason": "length"},
        ]
        usage = {"prompt_tokens": 11, "completion_tokens": 7}
        return httpx.Response(200, json={"choices": choices, "usage": usage, "model": "served-name"})

    generation = await on_mock(mock_client, Script(step), RetryPolicy()).generate(user_request(n=3))
    assert [(c.text, c.finish_reason) for c in generation.completions] == [
        ("first", "stop"),
        ("second", "length"),
        ("", "other"),
    ]
    assert generation.usage.prompt_tokens == 11
    assert generation.usage.completion_tokens == 7
    assert generation.model == "served-name"


@pytest.mark.anyio
async def test_truncated_choice_is_never_parsed(mock_client: MockClient) -> None:
    script = Script(judged(finish=lambda index: "length" if index == 0 else "stop"))
    settings = JudgeSettings(shuffle=ShuffleMode.NONE, max_resample_rounds=0)
    result = await Judge(on_mock(mock_client, script, RetryPolicy()), settings=settings).score(QUERY, [A, B], k=4)

    truncated = result.samples[0]
    assert truncated.finish_reason == "length"
    assert truncated.text is not None and "\\boxed{6, 4}" in truncated.text  # a box it must not read
    assert truncated.scores is None
    assert truncated.error is not None
    assert truncated.error.kind == "parse"
    assert truncated.error.reason == "truncated"
    assert not truncated.kept
    assert [s.scores for s in result.samples[1:]] == [(6, 4)] * 3
    assert result.n_valid == 3
    assert result.scores == expected_totals([A, B], 3)


@pytest.mark.anyio
async def test_truncated_choice_is_resampled_and_keeps_its_history(mock_client: MockClient) -> None:
    calls = Script(judged(finish=lambda index: "length" if index == 0 else "stop"), judged())
    judge = Judge(on_mock(mock_client, calls, RetryPolicy()), settings=JudgeSettings(shuffle=ShuffleMode.NONE))
    result = await judge.score(QUERY, [A, B], k=4)

    assert calls.calls == 2
    assert json.loads(calls.requests[1].content)["n"] == 1
    assert result.samples[0].valid
    assert result.samples[0].attempt == 1
    assert [e.reason for e in result.samples[0].earlier_errors] == ["truncated"]
    assert result.scores == expected_totals([A, B], 4)


@pytest.mark.anyio
async def test_backoff_grows_exponentially_and_is_capped(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(status(500))
    retry = RetryPolicy(jitter=False, initial_backoff=0.5, max_backoff=2, max_retries=4, sleep=sleep)
    with pytest.raises(ServerError):
        await on_mock(mock_client, script, retry).generate(user_request())
    assert waits == [0.5, 1.0, 2.0, 2.0]
    assert script.calls == 5


@pytest.mark.anyio
async def test_jittered_backoff_stays_within_half_to_full_delay(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    retry = RetryPolicy(initial_backoff=1.0, max_backoff=4.0, max_retries=4, sleep=sleep)
    with pytest.raises(BackendConnectionError):
        await on_mock(mock_client, Script(raise_connect), retry).generate(user_request())
    assert len(waits) == 4
    for wait, full in zip(waits, [1.0, 2.0, 4.0, 4.0], strict=True):
        assert full / 2 <= wait <= full


# ---------------------------------------------------------------- the default client


@pytest.mark.anyio
async def test_default_transport_sends_https_and_user_info_urls_through_aiohttp() -> None:
    transport = http.default_transport(timeout=12.0, max_connections=7)
    port = free_port()  # nothing listens: the error names the client that tried
    for url in (f"https://127.0.0.1:{port}/v1/x", f"http://user:pw@127.0.0.1:{port}/v1/x"):
        with pytest.raises(BackendConnectionError, match="ClientConnectorError") as caught:
            await transport.post(url, b"{}", {}, backend="test")
        assert "pw" not in str(caught.value)
    with pytest.raises(BackendConnectionError, match="ConnectionRefusedError"):  # the lean client's socket error
        await transport.post(f"http://127.0.0.1:{port}/v1/x", b"{}", {}, backend="test")
    await transport.aclose()
    assert transport.closed


# ---------------------------------------------------------------- the default client over real TCP


@pytest.fixture(scope="module")
def tcp_server() -> Iterator[str]:
    """The fake server under uvicorn in its own process; yields its /v1 base URL."""
    pytest.importorskip("uvicorn")
    with serve() as server:
        yield server.base_url


CLIENTS = ["aiohttp", "httpx"]
"""Over real TCP: the backend's own aiohttp session, and a caller's plain httpx client."""


def caller_client(kind: str, timeout: float = 30.0) -> httpx.AsyncClient | None:
    """``None`` for the backend's own aiohttp session, else a caller's httpx client (used as is, never closed)."""
    return httpx.AsyncClient(timeout=timeout) if kind == "httpx" else None


@pytest.mark.anyio
@pytest.mark.parametrize("kind", CLIENTS)
async def test_judge_over_tcp_with_the_default_client(tcp_server: str, kind: str) -> None:
    items = [{"query": f"Question {i}?", "responses": [A * (1 + i % 3), B + "!" * i]} for i in range(20)]
    client = caller_client(kind)
    async with Judge(OpenAIBackend(tcp_server, MODEL, api_key=SECRET, http_client=client)) as judge:
        results = await judge.score_many(items, k=8, concurrency=8)
        transport = judge.backend.http.transport()  # pyright: ignore[reportAttributeAccessIssue]
    if client is None:
        assert transport.closed
    else:
        assert not client.is_closed  # a caller's client is left open
        await client.aclose()
    assert len(results) == 20
    for item, batch in zip(items, results, strict=True):
        assert batch.result is not None
        assert batch.result.scores == expected_totals(item["responses"], 8)  # type: ignore[arg-type]
        assert batch.result.usage.requests == 2


@pytest.mark.anyio
@pytest.mark.parametrize("kind", CLIENTS)
async def test_refused_connection_is_a_connection_error_not_a_timeout(kind: str) -> None:
    waits, sleep = recorder()
    client = caller_client(kind)
    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = OpenAIBackend(url, MODEL, retry=RetryPolicy(sleep=sleep), http_client=client)
    try:
        with pytest.raises(BackendConnectionError) as caught:
            await backend.generate(user_request())
    finally:
        await backend.aclose()
        if client is not None:
            await client.aclose()
    assert type(caught.value) is BackendConnectionError
    assert "timed out" not in str(caught.value)
    assert len(waits) == 2  # retried like any connection error


def aiohttp_failure(cause: BaseException) -> Step:
    """What httpx-aiohttp raises for an aiohttp error: it maps every connection error to ConnectTimeout."""

    def step(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout(str(cause), request=request) from cause

    return step


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("cause", "error"),
    [
        (aiohttp.ServerDisconnectedError(), BackendConnectionError),
        (aiohttp.ClientOSError(111, "Connect call failed"), BackendConnectionError),
        (aiohttp.ConnectionTimeoutError(), BackendTimeoutError),
        (aiohttp.SocketTimeoutError(), BackendTimeoutError),
    ],
    ids=["disconnected", "refused", "connect-timeout", "read-timeout"],
)
async def test_aiohttp_errors_masked_as_timeouts_are_told_apart(
    mock_client: MockClient, cause: BaseException, error: type[BackendError]
) -> None:
    waits, sleep = recorder()
    script = Script(aiohttp_failure(cause))
    with pytest.raises(BackendConnectionError) as caught:
        await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert type(caught.value) is error
    assert script.calls == 3  # retried either way


@pytest.mark.anyio
@pytest.mark.parametrize("kind", CLIENTS)
async def test_silent_server_is_a_timeout(kind: str) -> None:
    waits, sleep = recorder()
    client = caller_client(kind, timeout=0.2)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def hold(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hold)
        retry = RetryPolicy(max_retries=1, sleep=sleep)
        backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", MODEL, timeout=0.2, retry=retry, http_client=client)
        try:
            with pytest.raises(BackendTimeoutError, match="timed out"):
                await backend.generate(user_request())
        finally:
            await backend.aclose()
            if client is not None:
                await client.aclose()
            tg.cancel_scope.cancel()
    await listener.aclose()
    assert len(waits) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("kind", CLIENTS)
async def test_a_reply_that_is_not_http_is_a_connection_error_even_through_a_batch(kind: str) -> None:
    client = caller_client(kind)
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)

    async def garbage(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(b"GARBAGE, NOT HTTP\r\n\r\n")

    waits, sleep = recorder()
    async with anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, garbage)
        retry = RetryPolicy(max_retries=0, sleep=sleep)
        backend = OpenAIBackend(f"http://127.0.0.1:{port}/v1", MODEL, retry=retry, http_client=client)
        try:
            with pytest.raises(BackendConnectionError):
                await backend.generate(user_request())
            batch = await Judge(backend).score_many([{"query": QUERY, "responses": [A, B]}] * 2, k=2)
        finally:
            await backend.aclose()
            if client is not None:
                await client.aclose()
            tg.cancel_scope.cancel()
    await listener.aclose()
    for item in batch:
        assert item.error is None
        assert item.result is not None
        assert item.result.no_verdict is not None
        assert item.result.no_verdict.failures == {"BackendConnectionError": 2}
