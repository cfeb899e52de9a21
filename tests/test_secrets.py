"""A key a server echoes (headers, error bodies, completion texts) reaches no result, exception, log or cache.

The server is ``tests.echo_server`` over TCP; every artefact is searched for every 8-character run of the key.
"""

from __future__ import annotations

import base64
import json
import logging
import traceback
from collections.abc import AsyncGenerator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from grmjudge import Judge, JudgeSettings
from grmjudge._redact import MARK, Redactor, header_secrets, prefix_run, redact
from grmjudge.backends import OpenAIBackend
from grmjudge.backends.anthropic import AnthropicBackend
from grmjudge.backends.base import Backend
from grmjudge.backends.http import RetryPolicy
from grmjudge.cache import SQLiteCache
from grmjudge.classifier import HTTPChatClassifier
from grmjudge.exceptions import (
    AuthenticationError,
    BackendResponseError,
    GRMJudgeError,
    RateLimitError,
    ServerError,
)
from grmjudge.types import GenerationRequest, Message
from tests.echo_server import leaked, straddling_error
from tests.servers import LocalServer, serve

KEY = "sk-echo-9Vq3tLw7Rb2Xc5Nd8Hf1Jk4Mp6Ys0UaQe"
OTHER_KEY = "sk-other-4Gh7Kl2Pz9Xw3Cv6Bn1Mq8Rt5Ys0Ud"
PAIR = ["Use sorted(xs).", "xs.sort() sorts in place."]
FAILURES = {
    "echo-401": AuthenticationError,
    "echo-429": RateLimitError,
    "echo-500": ServerError,
    "echo-not-json": BackendResponseError,
    "echo-long-number": BackendResponseError,
    "echo-deep": BackendResponseError,
}


async def _no_wait(delay: float) -> None:
    del delay


RETRY = RetryPolicy(max_retries=1, sleep=_no_wait)


@pytest.fixture(scope="module")
def echo() -> Iterator[LocalServer]:
    with serve("tests.echo_server") as server:
        yield server


@asynccontextmanager
async def backend_for(kind: str, root: str, key: str | None, transport: str) -> AsyncGenerator[Backend]:
    """An OpenAI or Anthropic backend on the echo server, over aiohttp or an injected httpx client."""
    async with httpx.AsyncClient(timeout=30) as client:
        http_client = client if transport == "httpx" else None
        if kind == "openai":
            backend: Backend = OpenAIBackend(root + "/v1", "fake-grm", key, retry=RETRY, http_client=http_client)
        else:
            backend = AnthropicBackend("fake-claude", key, root, retry=RETRY, http_client=http_client)
        async with backend:
            yield backend


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and every exception reachable from it through ``__cause__`` and ``__context__``."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is not None and all(current is not seen for seen in found):
            found.append(current)
            todo += (current.__cause__, current.__context__)
    return found


def _exception_texts(exc: BaseException, *, linked_fields: bool = True) -> list[str]:
    """Every way an exception is shown (str, repr, args, body, the formatted chain) and every linked one's fields.

    The fields of linked exceptions include a JSONDecodeError's ``.doc`` (the whole body); ``linked_fields=False``
    leaves them out for transport errors, whose cause is the HTTP library's own error (docs/security.md).
    """
    linked = [f"{e!r} {e.args!r} {vars(e)!r}" for e in _chain(exc)] if linked_fields else []
    return [
        str(exc),
        repr(exc),
        repr(exc.args),
        str(getattr(exc, "body", "")),
        "".join(traceback.format_exception(exc)),
        *linked,
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_an_echoed_key_reaches_no_result_exception_log_or_cache(
    echo: LocalServer, kind: str, transport: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    artefacts: dict[str, str] = {}
    async with backend_for(kind, echo.root, KEY, transport) as backend, SQLiteCache(tmp_path / "c.sqlite") as cache:
        judge = Judge(backend, cache=cache, settings=JudgeSettings(max_resample_rounds=0))
        judged = await judge.score("Question?", PAIR, k=2)
        assert judged.ok and all(s.text and s.text.endswith(f"{MARK}.") for s in judged.samples)
        artefacts["judged"] = judged.model_dump_json()
        for marker, error_type in FAILURES.items():
            failed = await judge.score(f"{marker} Question?", PAIR, k=2)
            assert failed.samples[0].error is not None and failed.samples[0].error.reason == error_type.__name__
            artefacts[f"{marker} result"] = failed.model_dump_json()
            request = GenerationRequest(messages=(Message(role="user", content=f"{marker} Q"),), n=1)
            with pytest.raises(error_type) as raised:
                await backend.generate(request)
            for i, text in enumerate(_exception_texts(raised.value)):
                artefacts[f"{marker} exception {i}"] = text
    artefacts["log"] = caplog.text
    artefacts.update({file.name: file.read_bytes().decode(errors="replace") for file in tmp_path.iterdir()})

    assert MARK in artefacts["echo-500 result"] and "Bad gateway" in artefacts["echo-not-json exception 0"]
    for name, artefact in artefacts.items():
        assert not leaked(KEY, artefact), name


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_rerun_with_another_key_or_none_returns_no_cached_key(
    echo: LocalServer, kind: str, tmp_path: Path
) -> None:
    path = tmp_path / "c.sqlite"
    async with backend_for(kind, echo.root, KEY, "aiohttp") as backend, SQLiteCache(path) as cache:
        first = await Judge(backend, cache=cache).score("Question?", PAIR, k=4)
    rerun_key = OTHER_KEY if kind == "anthropic" else None  # the Messages API needs a key; OpenAI servers may not
    async with backend_for(kind, echo.root, rerun_key, "aiohttp") as backend, SQLiteCache(path) as cache:
        again = await Judge(backend, cache=cache).score("Question?", PAIR, k=4)

    assert first.ok and all(s.cached for s in again.samples)
    assert all(s.text and s.text.endswith(f"{MARK}.") for s in again.samples)
    assert not leaked(KEY, again.model_dump_json()) and not leaked(KEY, path.read_bytes())


@pytest.mark.anyio
async def test_a_key_in_the_callers_own_httpx_client_is_redacted_too(echo: LocalServer) -> None:
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}) as client:
        backend = OpenAIBackend(echo.base_url, "fake-grm", http_client=client, retry=RETRY)
        async with Judge(backend) as judge:
            judged = await judge.score("Question?", PAIR, k=1)
            failed = await judge.score("echo-500 Question?", PAIR, k=1)

    assert judged.samples[0].text is not None and judged.samples[0].text.endswith(f"Bearer {MARK}.")
    assert failed.samples[0].error is not None and failed.samples[0].error.message.endswith(f'Bearer {MARK}"}}}}')
    assert not leaked(KEY, judged.model_dump_json()) and not leaked(KEY, failed.model_dump_json())


@pytest.mark.anyio
async def test_the_classifier_redacts_what_its_server_echoes(echo: LocalServer) -> None:
    async with HTTPChatClassifier(echo.root, "fake-rm", KEY, retry=RETRY) as classifier:
        scored = await classifier.classify(
            [[Message(role="user", content="Q"), Message(role="assistant", content="A")]]
        )
        texts = [scored.model_dump_json()]
        for marker, error_type in FAILURES.items():
            with pytest.raises(error_type) as raised:
                await classifier.classify([[Message(role="user", content=f"{marker} Q")]])
            texts += _exception_texts(raised.value)

    assert scored.scores == (0.5,)
    assert any(MARK in text for text in texts)
    for text in texts:
        assert not leaked(KEY, text), text


@pytest.mark.anyio
async def test_a_key_straddling_the_error_excerpt_is_redacted_before_the_cut(echo: LocalServer) -> None:
    async with backend_for("openai", echo.root, KEY, "httpx") as backend:
        request = GenerationRequest(messages=(Message(role="user", content="echo-500 Q"),), n=1)
        with pytest.raises(ServerError) as raised:
            await backend.generate(request)

    # redacted first, then cut: the whole body fits the 500-character excerpt once the key is out of it
    assert raised.value.body == json.dumps(straddling_error(f"Bearer {MARK}"), separators=(",", ":"))
    assert len(raised.value.body) == 500


def test_redact_replaces_the_key_and_any_run_of_at_least_half_of_it() -> None:
    secrets = (KEY,)  # 41 characters: runs of its first 21 or more count
    assert prefix_run(KEY) == 21 and prefix_run("sk-short-key") == 12 and prefix_run("pw-12345") == 8
    assert redact(f"a {KEY} b {KEY}", secrets) == f"a {MARK} b {MARK}"
    assert redact(f"cut: {KEY[:21]}", secrets) == f"cut: {MARK}"
    assert redact(f"{KEY[:25]}zzz", secrets) == f"{MARK}zzz"
    assert redact(f"short: {KEY[:20]}", secrets) == f"short: {KEY[:20]}"  # less than half the key says little
    assert redact(f"{KEY}{KEY[:21]}", secrets) == f"{MARK}{MARK}"
    assert redact("pw-12345 and pw-1234", ("pw-12345",)) == f"{MARK} and pw-1234"  # a short secret counts whole
    assert redact("EMPTY and none", ("EMPTY", "none")) == "EMPTY and none"  # placeholders are no secrets
    assert redact("\ud800 lone surrogate", secrets) == "\ud800 lone surrogate"


VENDOR_KEYS = {  # real keys' shapes: every key of a vendor starts the same way
    "sk-proj-": "sk-proj-Xq3tLw7Rb2Xc5Nd8Hf1Jk4Mp6Ys0UaQeT9vB2nM5kL8jH1gF4dS7aZ0xC3vB6nM9",
    "sk-ant-api03-": "sk-ant-api03-Rb2Xc5Nd8Hf1Jk4Mp6Ys0UaQeT9vB2nM5kL8jH1gF4dS7aZ0xC3vB6nM9qW2eR5tY8uI",
}


@pytest.mark.parametrize("prefix", VENDOR_KEYS)
def test_honest_text_with_a_vendors_key_prefix_survives_redaction(prefix: str) -> None:
    key = VENDOR_KEYS[prefix]
    honest = f"Project keys look like {prefix}abc...; set {prefix[:-1]} in your .env, never {prefix}{key[-6:]}."
    assert redact(honest, (key,)) == honest
    assert Redactor([key]).json({"text": honest}) == {"text": honest}
    assert redact(f"leaked: {key[: len(key) // 2 + 1]}", (key,)) == f"leaked: {MARK}"


def test_the_json_walk_redacts_any_depth_without_recursion() -> None:
    deep: Any = KEY
    for _ in range(100_000):
        deep = [deep]
    walked = Redactor([KEY]).json({KEY: deep})
    (inner,) = walked.values()
    for _ in range(100_000):
        (inner,) = inner
    assert list(walked) == [MARK] and inner == MARK


def test_secrets_come_from_credential_headers_only() -> None:
    headers = {
        "authorization": f"Bearer {KEY}",
        "x-api-key": OTHER_KEY,
        "x-goog-api-key": "AIzaSyPlantedGoogleKey01",
        "anthropic-version": "2023-06-01",
        "content-type": "application/json",
        "openai-organization": "org-visible-in-logs",
    }
    assert set(header_secrets(headers)) == {KEY, OTHER_KEY, "AIzaSyPlantedGoogleKey01"}
    redactor = Redactor(header_secrets(headers))
    assert KEY not in repr(redactor) and redactor(f"x {OTHER_KEY}") == f"x {MARK}"
    assert redactor.json({"a": [KEY, {"b": f"-{KEY}-"}], "n": 1}) == {"a": [MARK, {"b": f"-{MARK}-"}], "n": 1}


@pytest.mark.anyio
async def test_a_reply_python_cannot_decode_is_that_items_error_and_its_cause_holds_no_body(echo: LocalServer) -> None:
    async with backend_for("openai", echo.root, KEY, "aiohttp") as backend, Judge(backend) as judge:
        queries = ["Question?", "echo-deep Q", "echo-long-number Q"]
        batch = await judge.score_many([{"query": q, "responses": PAIR} for q in queries], k=2)
        with pytest.raises(BackendResponseError) as raised:
            await backend.generate(GenerationRequest(messages=(Message(role="user", content="echo-deep Q"),), n=1))

    assert len(batch) == 3 and batch[0].result is not None and batch[0].result.ok
    for failed in batch[1:]:
        assert failed.result is not None
        assert all(s.error is not None and s.error.reason == "BackendResponseError" for s in failed.result.samples)
    assert "not JSON" in str(raised.value) and MARK in str(raised.value)
    assert _chain(raised.value) == [raised.value]  # no JSONDecodeError (whose .doc is the raw body) is linked


USER, PASSWORD = "grm-user", "pw-9Vq3tLw7Rb"


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_a_password_in_the_base_url_reaches_no_message_or_result(echo: LocalServer, transport: str) -> None:
    with_password = echo.base_url.replace("://", f"://{USER}:{PASSWORD}@")
    basic = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()  # what the client sends, and the server echoes
    texts: list[str] = []
    async with httpx.AsyncClient(timeout=30) as client:
        http_client = client if transport == "httpx" else None
        for url in (with_password, "http://grm-user:pw-9Vq3tLw7Rb@127.0.0.1:9/v1"):  # nothing listens on port 9
            async with OpenAIBackend(url, "fake-grm", retry=RETRY, http_client=http_client) as backend:
                judge = Judge(backend, settings=JudgeSettings(max_resample_rounds=0))
                for query in ("Question?", "echo-500 Q", "echo-not-json Q"):
                    texts.append((await judge.score(query, PAIR, k=1)).model_dump_json())
                with pytest.raises(GRMJudgeError) as raised:
                    await backend.generate(GenerationRequest(messages=(Message(role="user", content="echo-401"),)))
                texts += _exception_texts(raised.value, linked_fields=False)

    assert any("[REDACTED]@127.0.0.1" in text for text in texts)  # the messages still name the server
    assert any(f"Basic {MARK}" in text for text in texts)  # the echoed Basic credential was redacted
    for text in texts:
        assert PASSWORD not in text and not leaked(basic, text), text


def test_reprs_of_backends_and_classifiers_hide_a_base_urls_credentials() -> None:
    from grmjudge.meta.http import HTTPMetaScorer

    url = f"http://{USER}:{PASSWORD}@127.0.0.1:9/v1"
    shown = [
        repr(OpenAIBackend(base_url=url, model="m")),
        repr(OpenAIBackend(base_url=[url, url], model="m")),
        repr(AnthropicBackend(model="m", base_url=url, api_key="x")),
        repr(HTTPChatClassifier(base_url=url, model="m")),
        repr(HTTPMetaScorer(base_url=url, model="m")),
    ]
    for text in shown:
        assert PASSWORD not in text and USER not in text and "127.0.0.1:9" in text, text
