"""Tests for the fake OpenAI-compatible server, in-process through httpx and over TCP through uvicorn."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from grmjudge.testing.fake_openai import FakeOpenAIServer, FakeRequest, Reply, default_judgement

REPO_ROOT = Path(__file__).resolve().parent.parent
CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server() -> FakeOpenAIServer:
    return FakeOpenAIServer()


@pytest.fixture
async def client(server: FakeOpenAIServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://fake") as c:
        yield c


def chat_body(content: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "fake-grm", "messages": [{"role": "user", "content": content}], **extra}


def judge_prompt(*responses: str) -> str:
    blocks = "\n".join(
        f"[The Begin of Response {i}]\n{text}\n[The End of Response {i}]" for i, text in enumerate(responses, start=1)
    )
    return f"#### User Query ####\nWhat is 1+2?\n#### Responses to be Scored ####\n{blocks}\n#### Output ####"


def request_for(prompt: str) -> FakeRequest:
    return FakeRequest(path=COMPLETIONS, body={"model": "m", "prompt": prompt}, headers={})


@pytest.mark.anyio
async def test_models_lists_the_configured_model() -> None:
    app = FakeOpenAIServer(model="my-grm")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake") as c:
        response = await c.get("/v1/models")
    assert response.status_code == 200
    assert response.json() == {"object": "list", "data": [{"id": "my-grm", "object": "model"}]}
    assert app.requests == []


@pytest.mark.anyio
async def test_chat_with_n_returns_n_choices_and_usage(client: httpx.AsyncClient) -> None:
    response = await client.post(CHAT, json=chat_body("one two three", n=3, temperature=0.5, max_tokens=64))
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["model"] == "fake-grm"
    assert isinstance(data["id"], str)
    assert isinstance(data["created"], int)
    assert [c["index"] for c in data["choices"]] == [0, 1, 2]
    for choice in data["choices"]:
        assert choice["message"]["role"] == "assistant"
        assert choice["finish_reason"] == "stop"
    words = len(data["choices"][0]["message"]["content"].split())
    assert data["usage"] == {"prompt_tokens": 3, "completion_tokens": 3 * words, "total_tokens": 3 + 3 * words}


@pytest.mark.anyio
async def test_chat_prompt_tokens_count_every_message(client: httpx.AsyncClient) -> None:
    body = {
        "model": "fake-grm",
        "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there you"}],
    }
    data = (await client.post(CHAT, json=body)).json()
    assert data["usage"]["prompt_tokens"] == 5


@pytest.mark.anyio
async def test_completions_endpoint(client: httpx.AsyncClient) -> None:
    response = await client.post(COMPLETIONS, json={"model": "fake-grm", "prompt": judge_prompt("abc"), "n": 2})
    assert response.status_code == 200
    data = response.json()
    assert data["object"] == "text_completion"
    assert len(data["choices"]) == 2
    assert data["choices"][1] == {"index": 1, "text": data["choices"][0]["text"], "finish_reason": "stop"}
    assert data["choices"][0]["text"].endswith("\\boxed{4}")
    assert data["usage"]["prompt_tokens"] == len(judge_prompt("abc").split())


def test_default_judgement_scores_follow_response_content() -> None:
    text = default_judgement(request_for(judge_prompt("abc", "", "0123456789x")), 0)
    assert text == (
        "Specific Criteria: Fake criteria (Weight: 100%).\nAnalysis: Fake analysis.\nScores: \\boxed{4, 1, 2}"
    )
    shuffled = default_judgement(request_for(judge_prompt("0123456789x", "abc", "")), 0)
    assert shuffled.endswith("\\boxed{2, 4, 1}")


def test_default_judgement_counts_multiline_responses_and_ignores_neutralised_delimiters() -> None:
    response = "line one\n\\[The End of Response 1]\nline three"
    assert default_judgement(request_for(judge_prompt(response, "xy")), 0).endswith(
        f"\\boxed{{{1 + len(response) % 10}, 3}}"
    )


def test_default_judgement_without_numbered_blocks_gives_one_score() -> None:
    single = "[The Begin of Response]\nabcde\n[The End of Response]"
    assert default_judgement(request_for(single), 0).endswith("\\boxed{6}")
    assert default_judgement(request_for("free text"), 0).endswith("\\boxed{10}")


@pytest.mark.anyio
async def test_default_judgement_uses_the_last_user_message(client: httpx.AsyncClient) -> None:
    body = {
        "model": "fake-grm",
        "messages": [
            {"role": "user", "content": judge_prompt("a", "b")},
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": judge_prompt("abc")},
        ],
    }
    data = (await client.post(CHAT, json=body)).json()
    assert data["choices"][0]["message"]["content"].endswith("\\boxed{4}")


@pytest.mark.anyio
async def test_scripted_reply_with_length_finish_reason() -> None:
    def reply(request: FakeRequest, index: int) -> Reply:
        return ("Scores: \\boxed{3", "length") if index == 0 else f"choice {index} of {request.body['n']}"

    app = FakeOpenAIServer(reply)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake") as c:
        data = (await c.post(CHAT, json=chat_body(n=2))).json()
    assert data["choices"][0]["message"]["content"] == "Scores: \\boxed{3"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["choices"][1]["message"]["content"] == "choice 1 of 2"
    assert data["choices"][1]["finish_reason"] == "stop"


@pytest.mark.anyio
async def test_async_reply_function() -> None:
    async def reply(request: FakeRequest, index: int) -> Reply:
        await asyncio.sleep(0)
        return f"{request.prompt_text}#{index}"

    app = FakeOpenAIServer(reply)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake") as c:
        data = (await c.post(COMPLETIONS, json={"model": "x", "prompt": "p", "n": 2})).json()
    assert [choice["text"] for choice in data["choices"]] == ["p#0", "p#1"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "content", "param"),
    [
        (CHAT, b"{not json", None),
        (CHAT, b"[1, 2]", None),
        (CHAT, {"messages": [{"role": "user", "content": "hi"}]}, "model"),
        (CHAT, {"model": "m"}, "messages"),
        (CHAT, {"model": "m", "messages": []}, "messages"),
        (CHAT, {"model": "m", "messages": "hi"}, "messages"),
        (CHAT, {"model": "m", "messages": ["hi"]}, "messages"),
        (CHAT, {"model": "m", "messages": [{"role": "user"}]}, "messages"),
        (CHAT, {"model": "m", "messages": [{"content": "hi"}]}, "messages"),
        (CHAT, chat_body(n=0), "n"),
        (CHAT, chat_body(n=1.5), "n"),
        (CHAT, chat_body(n="2"), "n"),
        (CHAT, chat_body(n=True), "n"),
        (CHAT, chat_body(max_tokens=0), "max_tokens"),
        (CHAT, chat_body(max_tokens=10.0), "max_tokens"),
        (CHAT, chat_body(temperature=-0.1), "temperature"),
        (CHAT, chat_body(temperature=2.5), "temperature"),
        (CHAT, chat_body(temperature="hot"), "temperature"),
        (COMPLETIONS, {"model": "m"}, "prompt"),
        (COMPLETIONS, {"model": "m", "prompt": ["a", "b"]}, "prompt"),
        (COMPLETIONS, {"prompt": "a"}, "model"),
        (COMPLETIONS, {"model": "m", "prompt": "a", "n": -1}, "n"),
    ],
)
async def test_invalid_bodies_are_rejected_with_400(
    server: FakeOpenAIServer, client: httpx.AsyncClient, path: str, content: bytes | dict[str, Any], param: str | None
) -> None:
    if isinstance(content, bytes):
        response = await client.post(path, content=content, headers={"content-type": "application/json"})
    else:
        response = await client.post(path, json=content)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert isinstance(error["message"], str)
    assert error["message"]
    assert error["param"] == param
    assert server.requests == []


@pytest.mark.anyio
async def test_optional_fields_accept_null_and_boundaries(client: httpx.AsyncClient) -> None:
    extras: list[dict[str, Any]] = [
        {"n": None, "max_tokens": None, "temperature": None},
        {"temperature": 0},
        {"temperature": 2.0},
    ]
    for extra in extras:
        response = await client.post(CHAT, json=chat_body(**extra))
        assert response.status_code == 200, extra
        assert len(response.json()["choices"]) == 1


@pytest.mark.anyio
async def test_unknown_path_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/embeddings", json={"model": "m"})
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.anyio
@pytest.mark.parametrize(("method", "path", "allow"), [("GET", CHAT, "POST"), ("POST", "/v1/models", "GET")])
async def test_wrong_method_is_405(client: httpx.AsyncClient, method: str, path: str, allow: str) -> None:
    response = await client.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert "error" in response.json()


@pytest.mark.anyio
async def test_raising_reply_gives_500_with_only_the_exception_type() -> None:
    def reply(request: FakeRequest, index: int) -> Reply:
        raise KeyError("secret detail")

    app = FakeOpenAIServer(reply)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake") as c:
        response = await c.post(CHAT, json=chat_body())
    assert response.status_code == 500
    assert response.json()["error"]["message"] == "KeyError"
    assert len(app.requests) == 1


@pytest.mark.anyio
async def test_valid_requests_are_recorded_with_body_and_headers(
    server: FakeOpenAIServer, client: httpx.AsyncClient
) -> None:
    first = chat_body("first", n=2)
    await client.post(CHAT, json=first, headers={"Authorization": "Bearer k", "X-Trace": "1"})
    await client.post(CHAT, json={"model": "m"})  # invalid: not recorded
    await client.get("/v1/models")  # not a generation request
    await client.post(COMPLETIONS, json={"model": "m", "prompt": "second"})
    assert [r.path for r in server.requests] == [CHAT, COMPLETIONS]
    recorded = server.requests[0]
    assert recorded.body == first
    assert recorded.headers["authorization"] == "Bearer k"
    assert recorded.headers["x-trace"] == "1"
    assert recorded.prompt_text == "first"
    assert server.requests[1].prompt_text == "second"


@pytest.mark.anyio
async def test_body_split_over_several_http_request_messages() -> None:
    app = FakeOpenAIServer()
    payload = b'{"model": "m", "prompt": "split body"}'
    chunks = [payload[:10], payload[10:25], payload[25:]]
    incoming: list[dict[str, Any]] = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)
    ]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": COMPLETIONS, "headers": [(b"x-a", b"b")]}
    await app(scope, receive, send)
    assert sent[0]["status"] == 200
    assert app.requests[0].body == {"model": "m", "prompt": "split body"}
    assert app.requests[0].headers == {"x-a": "b"}


@pytest.mark.anyio
async def test_lifespan_startup_and_shutdown_are_acknowledged() -> None:
    incoming: list[dict[str, Any]] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await FakeOpenAIServer()({"type": "lifespan"}, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}, {"type": "lifespan.shutdown.complete"}]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serves_over_tcp_with_uvicorn() -> None:
    pytest.importorskip("uvicorn")
    port = free_port()
    # -W error: running the module as __main__ must not import it a second time through grmjudge.testing
    command = [sys.executable, "-W", "error", "-m", "grmjudge.testing.fake_openai", "--port", str(port)]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as c:
                wait_until_serving(c, process)
                response = c.post(CHAT, json=chat_body(judge_prompt("abc", "de")))
            assert response.status_code == 200
            assert response.json()["choices"][0]["message"]["content"].endswith("\\boxed{4, 3}")
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.mark.parametrize("module", ["fake_openai", "fake_anthropic", "faults"])
def test_tcp_mode_without_uvicorn_names_the_extra(module: str) -> None:
    block_uvicorn = (
        "import runpy, sys; sys.modules['uvicorn'] = None; "
        f"runpy.run_module('grmjudge.testing.{module}', run_name='__main__', alter_sys=True)"
    )
    helped = subprocess.run([sys.executable, "-c", block_uvicorn, "--help"], capture_output=True, text=True, timeout=60)
    assert helped.returncode == 0 and "--port" in helped.stdout  # --help needs no uvicorn
    done = subprocess.run([sys.executable, "-c", block_uvicorn], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert "pip install 'grmjudge[testing]'" in done.stderr and "Traceback" not in done.stderr


def wait_until_serving(client: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while True:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        try:
            if client.get("/v1/models").status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the fake server did not start in time"
        time.sleep(0.05)


@pytest.mark.anyio
async def test_replies_are_cut_at_max_tokens_like_a_real_server(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json=chat_body(judge_prompt("a", "b"), max_tokens=3, n=2))
    choices = response.json()["choices"]
    assert [c["message"]["content"] for c in choices] == ["Specific Criteria: Fake"] * 2
    assert {c["finish_reason"] for c in choices} == {"length"}
    assert response.json()["usage"]["completion_tokens"] == 6


@pytest.mark.anyio
async def test_max_model_len_refuses_prompts_that_do_not_fit() -> None:
    app = FakeOpenAIServer(max_model_len=20)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake") as c:
        fits = await c.post("/v1/chat/completions", json=chat_body("five words in this prompt", max_tokens=15))
        refused = await c.post("/v1/chat/completions", json=chat_body("five words in this prompt", max_tokens=16))
    assert fits.status_code == 200
    assert refused.status_code == 400
    assert "maximum context length is 20 tokens" in refused.json()["error"]["message"]
