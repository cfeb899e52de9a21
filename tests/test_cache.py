from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import httpx
import pytest

from grmjudge import Judge, JudgeSettings
from grmjudge.backends import FunctionBackend, OpenAIBackend
from grmjudge.cache import SQLiteCache, sample_keys
from grmjudge.testing.fake_openai import FakeOpenAIServer
from grmjudge.types import Completion, GenerationRequest, Message

from .judges import by_length

QUERY = "How do I sort a list?"
PAIR = ["Use sorted(xs).", "xs.sort() sorts in place."]
SECRET = "sk-planted-secret-0123456789"


class Counting:
    def __init__(self) -> None:
        self.requests = 0

    def __call__(self, request: GenerationRequest) -> list[str]:
        self.requests += 1
        return by_length(request)


@pytest.mark.anyio
async def test_a_rerun_makes_no_requests_and_returns_the_same_result(tmp_path: Path) -> None:
    counting = Counting()
    async with SQLiteCache(tmp_path / "cache.sqlite") as cache:
        judge = Judge(FunctionBackend(counting), cache=cache)
        first = await judge.score(QUERY, PAIR, k=8)
        again = await judge.score(QUERY, PAIR, k=8)
        assert cache.count() == 8
    assert counting.requests == 2
    assert again.scores == first.scores and again.best == first.best
    assert [s.text for s in again.samples] == [s.text for s in first.samples]
    assert not any(s.cached for s in first.samples) and all(s.cached for s in again.samples)
    assert first.usage.requests == 2 and again.usage.requests == 0


@pytest.mark.anyio
async def test_the_cache_survives_a_new_process_handle(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    counting = Counting()
    async with SQLiteCache(path) as cache:
        await Judge(FunctionBackend(counting), cache=cache).score(QUERY, PAIR, k=4)
    async with SQLiteCache(path) as reopened:
        result = await Judge(FunctionBackend(counting), cache=reopened).score(QUERY, PAIR, k=4)
    assert counting.requests == 2
    assert all(s.cached for s in result.samples)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "change",
    [{"seed": 1}, {"temperature": 0.9}, {"max_tokens": 100}, {"top_p": 0.5}, {"extra_body": {"top_k": 5}}],
)
async def test_anything_that_determines_a_sample_is_in_the_key(tmp_path: Path, change: dict[str, object]) -> None:
    counting = Counting()
    async with SQLiteCache(tmp_path / "cache.sqlite") as cache:
        judge = Judge(FunctionBackend(counting), cache=cache)
        await judge.score(QUERY, PAIR, k=2)
        await judge.with_settings(**change).score(QUERY, PAIR, k=2)
    assert counting.requests == 4


def test_keys_depend_on_model_backend_template_and_prompt() -> None:
    request = GenerationRequest(messages=(Message(role="user", content="p"),), n=2, seed=3)
    base = sample_keys("openai", "m", "t", request)
    assert len(base) == 2 and base[0] != base[1]
    assert sample_keys("openai", "m2", "t", request) != base
    assert sample_keys("vllm", "m", "t", request) != base
    assert sample_keys("openai", "m", "t2", request) != base
    other_prompt = request.model_copy(update={"messages": (Message(role="user", content="q"),)})
    assert sample_keys("openai", "m", "t", other_prompt) != base


@pytest.mark.anyio
async def test_file_is_private_in_wal_mode_and_holds_no_credentials(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    app = FakeOpenAIServer()
    async with (
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake") as client,
        SQLiteCache(path) as cache,
    ):
        backend = OpenAIBackend("http://fake/v1", "fake-grm", api_key=SECRET, http_client=client)
        result = await Judge(backend, cache=cache).score(QUERY, PAIR, k=4)
        assert result.ok
        assert app.requests[0].headers["authorization"] == f"Bearer {SECRET}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        for side in tmp_path.glob("cache.sqlite-*"):
            assert stat.S_IMODE(side.stat().st_mode) == 0o600
    connection = sqlite3.connect(path)
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()
    for file in tmp_path.iterdir():
        assert SECRET.encode() not in file.read_bytes()
        assert b"fake/v1" not in file.read_bytes()


@pytest.mark.anyio
async def test_failed_requests_are_not_cached(tmp_path: Path) -> None:
    calls = 0

    def flaky(request: GenerationRequest) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            from grmjudge.exceptions import ServerError

            raise ServerError("down", status_code=503)
        return by_length(request)

    async with SQLiteCache(tmp_path / "cache.sqlite") as cache:
        judge = Judge(FunctionBackend(flaky), cache=cache, settings=JudgeSettings(max_resample_rounds=0))
        first = await judge.score(QUERY, PAIR, k=1)
        second = await judge.score(QUERY, PAIR, k=1)
    assert not first.ok and second.ok and calls == 2


@pytest.mark.anyio
async def test_texts_with_lone_surrogates_are_cached_and_read_back_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    texts = {"a:0": "lone \ud800 high", "a:1": "lone \udfff low", "a:2": "pair \ud83d\ude00 split", "a:3": "plain é"}
    async with SQLiteCache(path) as cache:
        await cache.put_many({key: Completion(text=text, finish_reason="stop") for key, text in texts.items()})
    async with SQLiteCache(path) as reopened:
        read = await reopened.get_many(list(texts))
    assert {key: c.text for key, c in read.items()} == texts
    assert all(c.finish_reason == "stop" for c in read.values())


@pytest.mark.anyio
async def test_a_lone_surrogate_in_a_completion_is_an_invalid_sample_and_never_cached(tmp_path: Path) -> None:
    def surrogate_then_judgement(request: GenerationRequest) -> list[str]:
        return [text + "\ud800" for text in by_length(request)]

    async with SQLiteCache(tmp_path / "cache.sqlite") as cache:
        judge = Judge(
            FunctionBackend(surrogate_then_judgement), cache=cache, settings=JudgeSettings(max_resample_rounds=0)
        )
        first = await judge.score(QUERY, PAIR, k=2)
        again = await judge.score(QUERY, PAIR, k=2)
        stored = cache.count()
    # such a text is an invalid_text sample, never cached (docs/architecture.md, "Lone surrogates")
    for sample in [*first.samples, *again.samples]:
        assert sample.text is None and not sample.cached
        assert sample.error is not None and sample.error.reason == "invalid_text"
    assert stored == 0
