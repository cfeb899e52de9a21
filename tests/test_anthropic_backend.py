"""AnthropicBackend against the fake Messages API in-process and over TCP, and scripted faults on a mock transport."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from grmjudge import (
    DEFAULT_TEMPLATE,
    AuthenticationError,
    BackendError,
    BackendResponseError,
    BackendStatusError,
    BackendTimeoutError,
    ConfigurationError,
    GenerationRequest,
    InvalidInputError,
    Judge,
    JudgeSettings,
    Message,
    RetryPolicy,
    ServerError,
    ShuffleMode,
)
from grmjudge.backends.anthropic import AnthropicBackend
from grmjudge.testing.fake_anthropic import FakeAnthropicRequest, FakeAnthropicServer
from grmjudge.testing.fake_openai import Reply, default_judgement
from tests.judges import BLOCK, length_score
from tests.scripted_http import MockClient, Script, Step, raise_read_timeout, recorder
from tests.servers import serve

REPO_ROOT = Path(__file__).resolve().parent.parent
BASE_URL = "http://fake"
MODEL = "fake-claude"
SECRET = "sk-ant-test-SECRET-0123456789abcdef"

QUERY = "What is 2 + 2?"
A = "Four."  # the fake's default judgement scores 1 + 5 % 10 = 6
B = "It is 4, as two plus two is four."  # 33 characters: 4


def expected_totals(texts: list[str], k: int) -> list[float]:
    return [float(k * length_score(t)) for t in texts]


def shown_order(prompt: str) -> tuple[str, ...]:
    return tuple(text for _, text in BLOCK.findall(prompt))


def words(text: str) -> int:
    return len(text.split())


def chat(*turns: tuple[str, str], temperature: float = 0.5, **fields: Any) -> GenerationRequest:
    messages = tuple(Message(role=role, content=content) for role, content in turns)  # type: ignore[arg-type]
    return GenerationRequest(messages=messages, temperature=temperature, seed=1, **fields)


def user_request(text: str = "Hello there", **fields: Any) -> GenerationRequest:
    return chat(("user", text), **fields)


def assert_secret_hidden(*texts: str) -> None:
    for text in texts:
        assert SECRET not in text


@pytest.fixture
def server() -> FakeAnthropicServer:
    return FakeAnthropicServer(model=MODEL, api_key=SECRET)


@pytest.fixture
async def client(server: FakeAnthropicServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url=BASE_URL) as c:
        yield c


def on_fake(client: httpx.AsyncClient, **kwargs: Any) -> AnthropicBackend:
    kwargs.setdefault("api_key", SECRET)
    return AnthropicBackend(MODEL, base_url=BASE_URL, http_client=client, **kwargs)


# ---------------------------------------------------------------- through the judge


@pytest.mark.anyio
async def test_k4_is_four_requests_of_one_completion_with_unshuffled_totals(
    server: FakeAnthropicServer, client: httpx.AsyncClient
) -> None:
    backend = on_fake(client)
    assert backend.name == "anthropic"
    assert not backend.supports_n
    result = await Judge(backend).score(QUERY, [A, B], k=4)

    assert len(server.requests) == 4
    for request in server.requests:
        assert request.path == "/v1/messages"
        assert "n" not in request.body
        assert "seed" not in request.body
        assert len(request.body["messages"]) == 1
    assert Counter(shown_order(r.prompt_text) for r in server.requests) == {(A, B): 2, (B, A): 2}
    assert result.scores == expected_totals([A, B], 4) == [24.0, 16.0]
    assert result.best == 0
    assert result.n_valid == result.n_kept == 4
    assert all(s.scores == (6, 4) for s in result.samples)
    assert result.usage.requests == 4
    assert result.usage.prompt_tokens == sum(words(r.prompt_text) for r in server.requests)
    assert result.usage.completion_tokens is not None and result.usage.completion_tokens > 0
    assert result.provenance.backend == "anthropic"
    assert result.provenance.model == MODEL


@pytest.mark.anyio
async def test_k1_body_is_exactly_the_required_fields(server: FakeAnthropicServer, client: httpx.AsyncClient) -> None:
    result = await Judge(on_fake(client)).score(QUERY, [A, B], k=1)

    assert result.scores is not None
    (request,) = server.requests
    body = request.body
    assert set(body) == {"model", "max_tokens", "messages", "temperature"}
    assert body["model"] == MODEL
    assert body["max_tokens"] == 2048
    assert body["temperature"] == 0.0
    order = shown_order(request.prompt_text)
    assert body["messages"] == [{"role": "user", "content": DEFAULT_TEMPLATE.render(QUERY, list(order))}]


@pytest.mark.anyio
async def test_settings_and_extra_body_reach_the_body(server: FakeAnthropicServer, client: httpx.AsyncClient) -> None:
    backend = on_fake(client, extra_body={"top_k": 5, "metadata": {"user_id": "team-a"}})
    settings = JudgeSettings(temperature=1.0, top_p=0.9, max_tokens=321, extra_body={"top_k": 20})
    result = await Judge(backend, settings=settings).score(QUERY, [A, B], k=2)

    assert result.ok
    assert len(server.requests) == 2
    for request in server.requests:
        body = request.body
        assert body["temperature"] == 1.0  # the API's maximum is accepted
        assert body["top_p"] == 0.9
        assert body["max_tokens"] == 321
        assert body["top_k"] == 20  # the call's extra_body wins over the backend's
        assert body["metadata"] == {"user_id": "team-a"}


@pytest.mark.anyio
async def test_every_sample_is_its_own_request_even_with_one_order(
    server: FakeAnthropicServer, client: httpx.AsyncClient
) -> None:
    judge = Judge(on_fake(client), settings=JudgeSettings(shuffle=ShuffleMode.NONE))
    result = await judge.score(QUERY, [B, A], k=3)

    assert len(server.requests) == 3
    assert {shown_order(r.prompt_text) for r in server.requests} == {(B, A)}
    assert result.scores == expected_totals([B, A], 3)
    assert result.best == 1


@pytest.mark.anyio
async def test_max_tokens_stop_is_a_truncated_sample_that_is_not_parsed() -> None:
    indices: list[int] = []

    def reply(request: FakeAnthropicRequest, index: int) -> Reply:
        indices.append(index)
        text = default_judgement(request, index)
        return (text, "max_tokens") if len(indices) == 1 else text

    server = FakeAnthropicServer(reply, api_key=SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url=BASE_URL) as c:
        settings = JudgeSettings(shuffle=ShuffleMode.NONE, max_resample_rounds=0)
        result = await Judge(on_fake(c), settings=settings).score(QUERY, [A, B], k=3)

    truncated = [s for s in result.samples if s.finish_reason == "length"]
    assert len(truncated) == 1
    assert truncated[0].text is not None and "\\boxed{6, 4}" in truncated[0].text  # a box it must not read
    assert truncated[0].error is not None and truncated[0].error.reason == "truncated"
    assert truncated[0].scores is None
    assert result.n_valid == 2
    assert result.scores == expected_totals([A, B], 2)
    assert indices == [0, 0, 0]  # one completion per request, so the index is always 0


# ---------------------------------------------------------------- headers and the API key


@pytest.mark.anyio
async def test_headers_carry_the_key_and_the_version(server: FakeAnthropicServer, client: httpx.AsyncClient) -> None:
    await on_fake(client, headers={"X-Trace": "abc"}).generate(user_request())
    await on_fake(client, anthropic_version="2099-01-01").generate(user_request())

    first, second = (r.headers for r in server.requests)
    assert first["x-api-key"] == SECRET
    assert first["anthropic-version"] == "2023-06-01"
    assert first["content-type"] == "application/json"
    assert first["x-trace"] == "abc"
    assert "authorization" not in first
    assert second["anthropic-version"] == "2099-01-01"


@pytest.mark.anyio
async def test_api_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, server: FakeAnthropicServer, client: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)
    backend = AnthropicBackend(MODEL, base_url=BASE_URL, http_client=client)
    judge = Judge(backend)
    result = await judge.score(QUERY, [A, B], k=2)

    assert {r.headers["x-api-key"] for r in server.requests} == {SECRET}
    assert_secret_hidden(repr(backend), str(backend), repr(judge), repr(result), result.model_dump_json())


@pytest.mark.anyio
async def test_explicit_api_key_beats_the_environment(
    monkeypatch: pytest.MonkeyPatch, server: FakeAnthropicServer, client: httpx.AsyncClient
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-env")
    await on_fake(client, api_key=SECRET).generate(user_request())
    assert server.requests[0].headers["x-api-key"] == SECRET


@pytest.mark.parametrize("api_key", [None, ""])
def test_missing_api_key_is_a_configuration_error_naming_the_variable(api_key: str | None) -> None:
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        AnthropicBackend(MODEL, api_key=api_key)


def test_empty_model_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="model"):
        AnthropicBackend("", api_key=SECRET)


def test_url_and_repr() -> None:
    backend = AnthropicBackend(MODEL, api_key=SECRET, base_url="https://proxy.example/anthropic/")
    assert backend.url == "https://proxy.example/anthropic/v1/messages"
    assert AnthropicBackend(MODEL, api_key=SECRET).url == "https://api.anthropic.com/v1/messages"
    assert repr(backend) == "AnthropicBackend(model='fake-claude', base_url='https://proxy.example/anthropic')"


@pytest.mark.anyio
async def test_a_wrong_key_is_an_authentication_error_without_the_key(client: httpx.AsyncClient) -> None:
    waits, sleep = recorder()
    wrong = "sk-ant-WRONG-KEY-987654321"
    backend = on_fake(client, api_key=wrong, retry=RetryPolicy(sleep=sleep))
    with pytest.raises(AuthenticationError) as caught:
        await backend.generate(user_request())
    assert caught.value.status_code == 401
    assert "authentication_error" in caught.value.body
    assert waits == []
    assert wrong not in str(caught.value)
    assert wrong not in repr(backend)


# ---------------------------------------------------------------- messages, system text and limits


@pytest.mark.anyio
async def test_system_message_goes_to_the_top_level_field(
    server: FakeAnthropicServer, client: httpx.AsyncClient
) -> None:
    request = chat(("system", "Be terse."), ("user", "Hi"), ("assistant", "Hello."), ("user", "Bye"))
    await on_fake(client).generate(request)
    body = server.requests[0].body
    assert body["system"] == "Be terse."
    assert body["messages"] == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."},
        {"role": "user", "content": "Bye"},
    ]
    assert server.requests[0].system_text == "Be terse."


@pytest.mark.anyio
async def test_several_system_messages_and_consecutive_turns_become_text_blocks(
    server: FakeAnthropicServer, client: httpx.AsyncClient
) -> None:
    request = chat(("system", "Rule one."), ("system", "Rule two."), ("user", "Part one."), ("user", "Part two."))
    generation = await on_fake(client).generate(request)
    body = server.requests[0].body
    assert body["system"] == [{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}]
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Part one."}, {"type": "text", "text": "Part two."}]}
    ]
    assert generation.usage.prompt_tokens == 8  # the fake counts the words of the system text and every turn


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("turns", "match"),
    [
        ((("user", "Hi"), ("system", "Late rule.")), "messages\\[1\\] is a system message"),
        ((("assistant", "I start."), ("user", "Hi")), "first turn to be the user's"),
        ((("system", "Only a rule."),), "at least one user message"),
    ],
    ids=["system-after-a-turn", "assistant-first", "system-only"],
)
async def test_chats_the_api_cannot_take_are_invalid_input_and_nothing_is_sent(
    server: FakeAnthropicServer, client: httpx.AsyncClient, turns: tuple[tuple[str, str], ...], match: str
) -> None:
    with pytest.raises(InvalidInputError, match=match):
        await on_fake(client).generate(chat(*turns))
    assert server.requests == []


@pytest.mark.anyio
async def test_temperature_above_one_is_refused_before_sending(
    server: FakeAnthropicServer, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ConfigurationError, match=r"temperature between 0 and 1, got 1\.5"):
        await on_fake(client).generate(user_request(temperature=1.5))
    assert server.requests == []


@pytest.mark.anyio
async def test_a_judge_with_temperature_above_one_raises_before_sending(
    server: FakeAnthropicServer, client: httpx.AsyncClient
) -> None:
    judge = Judge(on_fake(client), settings=JudgeSettings(temperature=1.2))
    with pytest.raises(ConfigurationError, match="at most 1"):
        await judge.score(QUERY, [A, B], k=4)
    assert server.requests == []


@pytest.mark.anyio
async def test_n_above_one_is_a_configuration_error(server: FakeAnthropicServer, client: httpx.AsyncClient) -> None:
    with pytest.raises(ConfigurationError, match="n=4"):
        await on_fake(client).generate(user_request(n=4))
    assert server.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("stop_reason", "finish_reason"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "other"),
        ("tool_use", "other"),
        ("pause_turn", "other"),
    ],
)
async def test_stop_reason_mapping(stop_reason: str, finish_reason: str) -> None:
    server = FakeAnthropicServer(lambda request, index: ("Some text.", stop_reason), model=MODEL)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url=BASE_URL) as c:
        generation = await on_fake(c).generate(user_request())
    (completion,) = generation.completions
    assert completion.text == "Some text."
    assert completion.finish_reason == finish_reason


@pytest.mark.anyio
async def test_usage_and_model_come_from_the_answer(server: FakeAnthropicServer, client: httpx.AsyncClient) -> None:
    generation = await on_fake(client).generate(chat(("system", "Be terse."), ("user", "one two three")))
    reply = generation.completions[0].text
    assert generation.usage.requests == 1
    assert generation.usage.prompt_tokens == 5
    assert generation.usage.completion_tokens == words(reply) > 0
    assert generation.model == MODEL


@pytest.mark.anyio
async def test_an_empty_answer_is_an_empty_text_and_an_empty_sample() -> None:
    server = FakeAnthropicServer(lambda request, index: "", api_key=SECRET)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url=BASE_URL) as c:
        backend = on_fake(c)
        generation = await backend.generate(user_request())
        result = await Judge(backend).score(QUERY, [A, B], k=1)
    assert generation.completions[0].text == ""
    assert generation.usage.completion_tokens == 0
    assert result.no_verdict is not None
    assert result.no_verdict.failures == {"empty": 1}


# ---------------------------------------------------------------- the fake refuses what the real API refuses


def good_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


GOOD_HEADERS = {"x-api-key": SECRET, "anthropic-version": "2023-06-01"}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "body", "status", "error_type", "fragment"),
    [
        ({"anthropic-version": "2023-06-01"}, good_body(), 401, "authentication_error", "x-api-key"),
        ({**GOOD_HEADERS, "x-api-key": "sk-other"}, good_body(), 401, "authentication_error", "invalid x-api-key"),
        ({"x-api-key": SECRET}, good_body(), 400, "invalid_request_error", "anthropic-version"),
        (GOOD_HEADERS, good_body(seed=1), 400, "invalid_request_error", "seed: Extra inputs"),
        (GOOD_HEADERS, good_body(n=2), 400, "invalid_request_error", "n: Extra inputs"),
        (GOOD_HEADERS, good_body(model=None), 400, "invalid_request_error", "model: Field required"),
        (GOOD_HEADERS, good_body(max_tokens=None), 400, "invalid_request_error", "max_tokens: Field required"),
        (GOOD_HEADERS, good_body(max_tokens=0), 400, "invalid_request_error", "max_tokens"),
        (GOOD_HEADERS, good_body(max_tokens=True), 400, "invalid_request_error", "max_tokens"),
        (GOOD_HEADERS, good_body(temperature=1.5), 400, "invalid_request_error", "temperature"),
        (GOOD_HEADERS, good_body(temperature="hot"), 400, "invalid_request_error", "temperature"),
        (GOOD_HEADERS, good_body(top_p=1.01), 400, "invalid_request_error", "top_p"),
        (GOOD_HEADERS, good_body(top_k=-1), 400, "invalid_request_error", "top_k"),
        (GOOD_HEADERS, good_body(stop_sequences="END"), 400, "invalid_request_error", "stop_sequences"),
        (GOOD_HEADERS, good_body(system=7), 400, "invalid_request_error", "system"),
        (GOOD_HEADERS, good_body(messages=[]), 400, "invalid_request_error", "messages"),
        (
            GOOD_HEADERS,
            good_body(messages=[{"role": "assistant", "content": "Hi"}]),
            400,
            "invalid_request_error",
            'first message must use the "user" role',
        ),
        (
            GOOD_HEADERS,
            good_body(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]),
            400,
            "invalid_request_error",
            "roles must alternate",
        ),
        (
            GOOD_HEADERS,
            good_body(messages=[{"role": "system", "content": "rule"}, {"role": "user", "content": "Hi"}]),
            400,
            "invalid_request_error",
            "top-level `system` parameter",
        ),
        (
            GOOD_HEADERS,
            good_body(messages=[{"role": "user", "content": 42}]),
            400,
            "invalid_request_error",
            "messages.0.content",
        ),
        (
            GOOD_HEADERS,
            good_body(messages=[{"role": "user", "content": [{"type": "image", "source": {}}]}]),
            400,
            "invalid_request_error",
            "only 'text' blocks",
        ),
        (
            GOOD_HEADERS,
            good_body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
            400,
            "invalid_request_error",
            "must be non-empty",
        ),
        (
            GOOD_HEADERS,
            good_body(messages=[{"role": "user", "content": ""}]),
            400,
            "invalid_request_error",
            "non-empty content",
        ),
        (
            GOOD_HEADERS,
            good_body(messages=[{"role": "user", "content": "Hi", "name": "bob"}]),
            400,
            "invalid_request_error",
            "messages.0.name: Extra inputs",
        ),
    ],
    ids=[
        "no-key",
        "wrong-key",
        "no-version",
        "seed",
        "n",
        "no-model",
        "no-max-tokens",
        "zero-max-tokens",
        "bool-max-tokens",
        "temperature-above-1",
        "temperature-not-a-number",
        "top-p-above-1",
        "negative-top-k",
        "stop-sequences-not-a-list",
        "system-not-text",
        "no-messages",
        "assistant-first",
        "two-users",
        "system-role",
        "content-not-text",
        "image-block",
        "empty-text-block",
        "empty-content",
        "extra-message-field",
    ],
)
async def test_fake_refuses_what_the_real_api_refuses(
    server: FakeAnthropicServer,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int,
    error_type: str,
    fragment: str,
) -> None:
    response = await client.post("/v1/messages", json=body, headers=headers)
    assert response.status_code == status
    payload = response.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == error_type
    assert fragment in payload["error"]["message"]
    assert server.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]"], ids=["not-json", "not-an-object"])
async def test_fake_refuses_bodies_that_are_not_json_objects(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post("/v1/messages", content=raw, headers=GOOD_HEADERS)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.anyio
async def test_fake_accepts_a_full_conversation_and_answers_in_the_wire_format(
    server: FakeAnthropicServer, client: httpx.AsyncClient
) -> None:
    body = good_body(
        system=[{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}]},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye now"},
            {"role": "assistant", "content": ""},  # an empty final assistant turn is allowed
        ],
        temperature=0,
        top_p=1,
        top_k=5,
        stop_sequences=["END"],
        metadata={"user_id": "u"},
    )
    response = await client.post("/v1/messages", json=body, headers=GOOD_HEADERS)
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["type"] == "message"
    assert payload["role"] == "assistant"
    assert payload["model"] == MODEL
    assert payload["id"].startswith("msg_")
    assert payload["stop_reason"] == "end_turn"
    assert [block["type"] for block in payload["content"]] == ["text"]
    assert payload["usage"] == {"input_tokens": 7, "output_tokens": words(payload["content"][0]["text"])}
    (request,) = server.requests
    assert request.prompt_text == "Bye now"
    assert request.system_text == "Be terse."


@pytest.mark.anyio
async def test_fake_routes_lists_models_and_reports_reply_failures() -> None:
    async def failing(request: FakeAnthropicRequest, index: int) -> Reply:
        raise RuntimeError("the reply function broke")

    server = FakeAnthropicServer(failing, model="my-claude")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url=BASE_URL) as c:
        models = await c.get("/v1/models", headers=GOOD_HEADERS)
        unauthorised = await c.get("/v1/models")
        missing = await c.post("/v1/complete", json=good_body(), headers=GOOD_HEADERS)
        wrong_method = await c.get("/v1/messages", headers=GOOD_HEADERS)
        broken = await c.post("/v1/messages", json=good_body(), headers=GOOD_HEADERS)

    assert models.status_code == 200
    assert [m["id"] for m in models.json()["data"]] == ["my-claude"]
    assert unauthorised.status_code == 401
    assert missing.status_code == 404
    assert missing.json()["error"]["type"] == "not_found_error"
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"
    assert broken.status_code == 500
    assert broken.json() == {"type": "error", "error": {"type": "api_error", "message": "RuntimeError"}}
    assert len(server.requests) == 1  # recorded before the reply ran


@pytest.mark.anyio
async def test_fake_without_recording_keeps_no_requests() -> None:
    server = FakeAnthropicServer(record=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url=BASE_URL) as c:
        response = await c.post("/v1/messages", json=good_body(), headers={**GOOD_HEADERS, "x-api-key": "any"})
    assert response.status_code == 200
    assert server.requests == []


# ---------------------------------------------------------------- client ownership and closing


@pytest.mark.anyio
async def test_injected_client_stays_open_after_aclose(server: FakeAnthropicServer, client: httpx.AsyncClient) -> None:
    async with on_fake(client) as backend:
        await backend.generate(user_request())
        assert backend.http.transport().client is client  # type: ignore[attr-defined]
    assert backend.closed
    assert not client.is_closed
    assert (await client.get("/v1/models", headers=GOOD_HEADERS)).status_code == 200
    with pytest.raises(ConfigurationError, match="closed"):
        await backend.generate(user_request())
    assert len(server.requests) == 1


@pytest.mark.anyio
async def test_own_client_is_created_once_and_closed_by_aclose() -> None:
    backend = AnthropicBackend(MODEL, api_key=SECRET, base_url="http://127.0.0.1:9")
    first = backend.http.transport()
    assert backend.http.transport() is first
    assert not first.closed
    await backend.aclose()
    assert first.closed
    assert backend.closed


# ---------------------------------------------------------------- scripted faults on a mock transport


def message(text: str = "Scores: \\boxed{6, 4}", stop_reason: str | None = "end_turn", **fields: Any) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-served",
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop_reason,
        "usage": {"input_tokens": 10, "output_tokens": 3},
        **fields,
    }


def answer(payload: dict[str, Any] | None = None) -> Step:
    return lambda request: httpx.Response(200, json=payload or message())


def anthropic_error(code: int, error_type: str, headers: dict[str, str] | None = None) -> Step:
    body = {"type": "error", "error": {"type": error_type, "message": f"{error_type} happened"}}
    return lambda request: httpx.Response(code, headers=headers, json=body)


def on_mock(make: MockClient, script: Script, retry: RetryPolicy) -> AnthropicBackend:
    return AnthropicBackend(MODEL, api_key=SECRET, http_client=make(script), retry=retry)


@pytest.mark.anyio
async def test_429_with_retry_after_waits_that_long_then_succeeds(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(anthropic_error(429, "rate_limit_error", {"retry-after": "7"}), answer())
    generation = await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())

    assert generation.completions[0].text == "Scores: \\boxed{6, 4}"
    assert script.calls == 2
    assert waits == [7.0]
    assert str(script.requests[0].url) == "https://api.anthropic.com/v1/messages"
    assert script.requests[0].headers["x-api-key"] == SECRET


@pytest.mark.anyio
async def test_529_overloaded_is_retried_then_a_server_error(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    once = Script(anthropic_error(529, "overloaded_error"), answer())
    await on_mock(mock_client, once, RetryPolicy(sleep=sleep)).generate(user_request())
    assert once.calls == 2

    always = Script(anthropic_error(529, "overloaded_error"))
    with pytest.raises(ServerError) as caught:
        await on_mock(mock_client, always, RetryPolicy(sleep=sleep, max_retries=3)).generate(user_request())
    assert caught.value.status_code == 529
    assert caught.value.retryable
    assert "overloaded_error" in caught.value.body
    assert always.calls == 4
    assert len(waits) == 1 + 3


@pytest.mark.anyio
async def test_400_is_not_retried(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(anthropic_error(400, "invalid_request_error"), answer())
    with pytest.raises(BackendStatusError) as caught:
        await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert type(caught.value) is BackendStatusError
    assert caught.value.status_code == 400
    assert not caught.value.retryable
    assert script.calls == 1
    assert waits == []


@pytest.mark.anyio
async def test_401_is_an_authentication_error(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(anthropic_error(401, "authentication_error"))
    with pytest.raises(AuthenticationError):
        await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert script.calls == 1
    assert waits == []


@pytest.mark.anyio
async def test_timeout_is_retried_then_a_backend_timeout_error(mock_client: MockClient) -> None:
    waits, sleep = recorder()
    script = Script(raise_read_timeout)
    with pytest.raises(BackendTimeoutError, match="timed out"):
        await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert script.calls == 3
    assert len(waits) == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    "step",
    [
        lambda request: httpx.Response(200, text='{"content": [', headers={"content-type": "application/json"}),
        lambda request: httpx.Response(200, json=["not", "an", "object"]),
        lambda request: httpx.Response(200, json={"type": "message", "stop_reason": "end_turn"}),
        lambda request: httpx.Response(200, json=message(content="plain text")),
        lambda request: httpx.Response(200, json=message(content=["not a block"])),
        lambda request: httpx.Response(200, json=message(content=[{"type": "text", "text": 42}])),
    ],
    ids=["truncated-json", "json-array", "no-content", "content-not-a-list", "block-not-an-object", "text-not-str"],
)
async def test_malformed_200_bodies_are_backend_response_errors(mock_client: MockClient, step: Step) -> None:
    waits, sleep = recorder()
    script = Script(step)
    with pytest.raises(BackendResponseError):
        await on_mock(mock_client, script, RetryPolicy(sleep=sleep)).generate(user_request())
    assert script.calls == 1
    assert waits == []


@pytest.mark.anyio
async def test_text_blocks_are_joined_and_other_blocks_skipped(mock_client: MockClient) -> None:
    content = [
        {"type": "thinking", "thinking": "Let me weigh them.", "signature": "abc"},
        {"type": "text", "text": "Analysis: fine.\n"},
        {"type": "text", "text": "Scores: \\boxed{6, 4}"},
    ]
    usage = {"input_tokens": 10, "output_tokens": 30, "cache_creation_input_tokens": 5, "cache_read_input_tokens": 100}
    script = Script(answer(message(content=content, usage=usage)))
    generation = await on_mock(mock_client, script, RetryPolicy()).generate(user_request())

    assert generation.completions[0].text == "Analysis: fine.\nScores: \\boxed{6, 4}"
    assert generation.usage.prompt_tokens == 115  # cache writes and reads are part of the prompt
    assert generation.usage.completion_tokens == 30
    assert generation.model == "claude-served"


@pytest.mark.anyio
async def test_missing_stop_reason_and_usage_are_tolerated(mock_client: MockClient) -> None:
    payload = message(stop_reason=None)
    del payload["usage"]
    generation = await on_mock(mock_client, Script(answer(payload)), RetryPolicy()).generate(user_request())
    assert generation.completions[0].finish_reason == "other"
    assert generation.usage.requests == 1
    assert generation.usage.prompt_tokens is None
    assert generation.usage.completion_tokens is None


@pytest.mark.anyio
@pytest.mark.parametrize(
    "step",
    [
        anthropic_error(401, "authentication_error"),
        anthropic_error(529, "overloaded_error"),
        lambda request: httpx.Response(200, text="<html>not json</html>"),
        lambda request: httpx.Response(200, json={"no": "content"}),
        raise_read_timeout,
    ],
    ids=["401", "529", "not-json", "no-content", "timeout"],
)
async def test_api_key_is_not_in_errors_or_results(mock_client: MockClient, step: Step) -> None:
    waits, sleep = recorder()
    script = Script(step)
    backend = on_mock(mock_client, script, RetryPolicy(sleep=sleep))
    with pytest.raises(BackendError) as caught:
        await backend.generate(user_request())
    result = await Judge(backend).score(QUERY, [A, B], k=2)

    assert script.requests[0].headers["x-api-key"] == SECRET
    assert result.no_verdict is not None
    assert_secret_hidden(str(caught.value), repr(caught.value), repr(result), result.model_dump_json())


@pytest.mark.anyio
async def test_a_header_cannot_duplicate_the_key_or_the_version_under_another_spelling(mock_client: MockClient) -> None:
    script = Script(answer())
    headers = {"X-Api-Key": "sk-ant-other", "Anthropic-Version": "1999-01-01", "Anthropic-Beta": "some-feature"}
    backend = AnthropicBackend(MODEL, api_key=SECRET, headers=headers, http_client=mock_client(script))
    await backend.generate(user_request())
    sent = script.requests[0].headers
    assert sent.get_list("x-api-key") == [SECRET]
    assert sent.get_list("anthropic-version") == ["2023-06-01"]
    assert sent.get_list("anthropic-beta") == ["some-feature"]
    assert sent.get_list("content-type") == ["application/json"]


# ---------------------------------------------------------------- the default client over real TCP


@pytest.fixture(scope="module")
def tcp_server() -> Iterator[str]:
    """The fake Messages API under uvicorn in its own process, requiring SECRET; yields its base URL."""
    pytest.importorskip("uvicorn")
    with serve("grmjudge.testing.fake_anthropic", ["--api-key", SECRET], headers=GOOD_HEADERS) as server:
        yield server.root


@pytest.mark.anyio
async def test_judge_over_tcp_with_the_default_client(tcp_server: str) -> None:
    items = [{"query": f"Question {i}?", "responses": [A * (1 + i % 3), B + "!" * i]} for i in range(6)]
    async with Judge(AnthropicBackend(MODEL, api_key=SECRET, base_url=tcp_server)) as judge:
        results = await judge.score_many(items, k=4, concurrency=3)
        transport = judge.backend.http.transport()  # pyright: ignore[reportAttributeAccessIssue]
    assert transport.closed
    for item, batch in zip(items, results, strict=True):
        assert batch.result is not None
        assert batch.result.scores == expected_totals(item["responses"], 4)  # type: ignore[arg-type]
        assert batch.result.usage.requests == 4


def test_score_sync_twice_reconnects_on_each_loop(tcp_server: str) -> None:
    judge = Judge(AnthropicBackend(MODEL, api_key=SECRET, base_url=tcp_server))
    first = judge.score_sync(QUERY, [A, B], k=2)
    second = judge.score_sync(QUERY, [B, A], k=2)
    assert first.scores == expected_totals([A, B], 2)
    assert second.scores == expected_totals([B, A], 2)


def test_the_tcp_server_refuses_a_wrong_key(tcp_server: str) -> None:
    judge = Judge(AnthropicBackend(MODEL, api_key="sk-ant-wrong", base_url=tcp_server))
    result = judge.score_sync(QUERY, [A, B], k=1)
    assert result.no_verdict is not None
    assert result.no_verdict.failures == {"AuthenticationError": 1}
    assert json.dumps(result.model_dump(mode="json")).count("sk-ant-wrong") == 0
