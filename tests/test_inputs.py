"""What callers and servers send into the SDK: bad items, bad text, bad arguments and bad URLs.

Every case here ends in a typed grmjudge error (or a typed sample error) naming what is wrong; a bad item of
a batch never takes its neighbours down. The property tests at the end throw arbitrary JSON-like values and
Unicode at `Judge.score`, `score_many` and `stream` on real small backends.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grmjudge import (
    BatchResult,
    ConfigurationError,
    GRMJudgeError,
    InvalidInputError,
    Judge,
    JudgeItem,
    JudgeSettings,
)
from grmjudge.backends import FunctionBackend, OpenAIBackend
from grmjudge.backends.anthropic import AnthropicBackend
from grmjudge.cache import SQLiteCache
from grmjudge.classifier import ChatClassifier, ChatScores, HTTPChatClassifier
from grmjudge.meta import HTTPMetaScorer, meta_from_spec
from grmjudge.scalar import ScalarJudge
from grmjudge.types import GenerationRequest, Message, Usage

from .judges import by_length, judgement, shown_responses
from .scripted_http import MockClient, Script
from .strategies import CHATS, JSON, MESSAGE, PROPERTIES, TEXT, WELL_FORMED

QUERY = "How do I sort a list in Python?"
GOOD = {"query": QUERY, "responses": ["Use sorted(xs).", "xs.sort()"]}


class Counting:
    """The by-length judge, counting the requests it answers."""

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    def __call__(self, request: GenerationRequest) -> list[str]:
        self.requests.append(request)
        return by_length(request)


class LastTurnLength(ChatClassifier):
    """A small real scalar RM: the length of the rated turn."""

    name = "last-turn-length"
    model = "length"

    async def classify(self, chats: Sequence[Sequence[Message]]) -> ChatScores:
        return ChatScores(scores=tuple(float(len(chat[-1].content)) for chat in chats), usage=Usage(requests=1))


# ---------------------------------------------------------------- one bad item never sinks a batch

BAD_ITEMS: list[tuple[object, str]] = [
    (7, r"item is int, not a JudgeItem, a mapping .* or a \(query, responses\) pair"),
    (None, "item is NoneType"),
    ((QUERY,), r"item is a tuple of 1; a \(query, responses\) pair has 2"),
    ((QUERY, ["a"], "id"), "item is a tuple of 3"),
    ([QUERY, ["a"]], "item is list"),
    ({"query": None, "responses": ["a"]}, "query must be a string or a list of messages, got NoneType"),
    ({"query": QUERY, "responses": "a"}, "not a single string"),
    ({"query": QUERY, "responses": ["a", 1]}, r"responses\[1\] is int, not a string"),
    ({"query": {"role": "user", "content": "x"}, "responses": ["a"]}, "query is a single mapping"),
    ({"query": QUERY}, "item has no 'responses'"),
    ({"responses": ["a"]}, "item has no 'query'"),
    ({**GOOD, "label": 1}, "item has unknown keys: 'label'"),
    ({1: QUERY, **GOOD}, "item has unknown keys: 1"),
    ({**GOOD, "id": 7}, "id must be a string, got int"),
    ({**GOOD, "responses": ["a", "s\ud800"]}, r"responses\[1\] contains a lone surrogate at position 1"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_ITEMS)
@pytest.mark.anyio
async def test_a_malformed_item_is_its_own_error_in_score_many(bad: object, message: str) -> None:
    results = await Judge(FunctionBackend(by_length)).score_many([GOOD, bad, GOOD], k=2)  # type: ignore[list-item]
    assert [r.index for r in results] == [0, 1, 2]
    assert results[0].result is not None and results[0].result.ok
    assert results[2].result is not None and results[2].result.ok
    error = results[1].error
    assert error is not None and results[1].result is None
    assert error.type == "InvalidInputError"
    assert re.search(message, error.message), error.message
    results[1].model_dump_json()  # the record can be written out


@pytest.mark.parametrize(("bad", "message"), BAD_ITEMS[:6])
@pytest.mark.anyio
async def test_a_malformed_item_is_its_own_error_in_stream(bad: object, message: str) -> None:
    seen: dict[int, BatchResult] = {}
    async with Judge(FunctionBackend(by_length)).stream([GOOD, bad, GOOD], k=2) as results:  # type: ignore[list-item]
        async for result in results:
            seen[result.index] = result
    assert sorted(seen) == [0, 1, 2]
    assert seen[1].error is not None and seen[1].error.type == "InvalidInputError"
    assert re.search(message, seen[1].error.message), seen[1].error.message
    assert seen[0].result is not None and seen[2].result is not None


@pytest.mark.parametrize(("bad", "message"), BAD_ITEMS[:6])
@pytest.mark.anyio
async def test_a_malformed_item_is_its_own_error_in_the_scalar_batch(bad: object, message: str) -> None:
    results = await ScalarJudge(LastTurnLength()).score_many([GOOD, bad, GOOD])  # type: ignore[list-item]
    assert [r.error is None for r in results] == [True, False, True]
    assert results[1].error is not None and results[1].error.type == "InvalidInputError"
    assert re.search(message, results[1].error.message), results[1].error.message


@pytest.mark.anyio
async def test_a_query_responses_pair_is_an_item() -> None:
    judge = Judge(FunctionBackend(by_length))
    pair, mapping = await judge.score_many([(QUERY, GOOD["responses"]), GOOD], k=4)
    assert pair.result is not None and mapping.result is not None
    assert pair.item_id == "0" and pair.result.scores == mapping.result.scores
    chat = ([{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUERY}], ("a", "bb"))
    [result] = await judge.score_many([chat], k=2)
    assert result.result is not None and result.result.ok


@pytest.mark.anyio
async def test_a_bad_id_is_reported_under_the_items_position() -> None:
    judge = Judge(FunctionBackend(by_length))
    results = await judge.score_many([{**GOOD, "id": "bad\udc00"}, {**GOOD, "id": "fine"}], k=1)
    assert results[0].item_id == "0" and results[0].error is not None
    assert "id contains a lone surrogate at position 3" in results[0].error.message
    assert results[1].item_id == "fine" and results[1].result is not None


def test_judge_item_rejects_bad_fields_with_a_validation_error() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="query must be a string or a list of messages, got NoneType"):
        JudgeItem(query=None, responses=("a",))  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"responses\[0\] contains a lone surrogate"):
        JudgeItem(query=QUERY, responses=("\udfff",))


# ---------------------------------------------------------------- lone surrogates from the caller


@pytest.mark.parametrize(
    ("query", "responses", "message"),
    [
        (QUERY, ["a", "s\ud800"], r"responses\[1\] contains a lone surrogate at position 1"),
        ("wh\udc80y?", ["a"], "query contains a lone surrogate at position 2"),
        (
            [{"role": "system", "content": "ok"}, {"role": "user", "content": "\ud83d split emoji"}],
            ["a"],
            r"query\[1\]\.content contains a lone surrogate at position 0",
        ),
        ([Message(role="user", content="x\ud800")], ["a"], r"query\[0\]\.content contains a lone surrogate"),
    ],
)
@pytest.mark.anyio
async def test_lone_surrogates_from_the_caller_are_invalid_input(
    query: Any, responses: list[str], message: str
) -> None:
    backend = Counting()
    with pytest.raises(InvalidInputError, match=message):
        await Judge(FunctionBackend(backend)).score(query, responses, k=2)
    assert backend.requests == []


@pytest.mark.anyio
async def test_a_lone_surrogate_in_item_id_is_invalid_input() -> None:
    with pytest.raises(InvalidInputError, match="item_id contains a lone surrogate at position 1"):
        await Judge(FunctionBackend(by_length)).score(QUERY, ["a"], item_id="x\ud800")
    with pytest.raises(InvalidInputError, match="item_id must be a string, got int"):
        await Judge(FunctionBackend(by_length)).score(QUERY, ["a"], item_id=5)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_emoji_and_other_valid_unicode_are_judged() -> None:
    responses = ["\U0001f600 smile", "\u202eRTL override\u202c and \x00 NUL"]
    result = await Judge(FunctionBackend(by_length)).score("\u05e9\u05dc\u05d5\u05dd?", responses, k=2)
    assert result.ok


# ---------------------------------------------------------------- lone surrogates from a server


def half_emoji(request: GenerationRequest) -> list[str]:
    """Valid judgements, except that the first ends in the first half of a split emoji."""
    texts = by_length(request)
    return [texts[0] + " \ud83d", *texts[1:]]


@pytest.mark.anyio
async def test_a_completion_with_a_lone_surrogate_is_an_invalid_text_sample(tmp_path: Path) -> None:
    settings = JudgeSettings(shuffle="none", max_resample_rounds=0)
    async with Judge(FunctionBackend(half_emoji), settings=settings, cache=SQLiteCache(tmp_path / "c.db")) as judge:
        result = await judge.score(QUERY, ["a", "bb"], k=4)
        assert judge.cache is not None
        bad, *good = result.samples
        assert bad.error is not None and (bad.error.kind, bad.error.reason) == ("parse", "invalid_text")
        assert "lone surrogate at position" in bad.error.message
        assert bad.text is None and bad.scores is None and not bad.kept
        assert all(s.valid for s in good) and result.n_valid == 3 and result.ok
        result.model_dump_json()  # nothing unencodable reaches the output
        assert isinstance(judge.cache, SQLiteCache) and judge.cache.count() == 3  # the bad text is not cached


@pytest.mark.anyio
async def test_invalid_text_is_asked_again_like_any_unusable_judgement() -> None:
    calls = 0

    def once_broken(request: GenerationRequest) -> list[str]:
        nonlocal calls
        calls += 1
        return half_emoji(request) if calls == 1 else by_length(request)

    result = await Judge(FunctionBackend(once_broken, supports_n=False)).score(QUERY, ["a", "bb"], k=2)
    assert result.n_valid == 2
    retried = next(s for s in result.samples if s.earlier_errors)
    assert retried.earlier_errors[0].reason == "invalid_text"


@pytest.mark.anyio
async def test_a_server_sending_a_lone_surrogate_over_the_wire_loses_only_that_sample(mock_client: MockClient) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        messages = tuple(Message(role=m["role"], content=m["content"]) for m in body["messages"])
        texts = by_length(GenerationRequest(messages=messages, n=body["n"]))
        choices = [{"index": i, "message": {"content": t}, "finish_reason": "stop"} for i, t in enumerate(texts)]
        raw = json.dumps({"choices": choices}).replace('"}, "finish_reason"', ' \\ud83d"}, "finish_reason"', 1)
        return httpx.Response(200, content=raw.encode(), headers={"content-type": "application/json"})

    backend = OpenAIBackend("http://127.0.0.1:9/v1", "grm", http_client=mock_client(Script(answer)))
    settings = JudgeSettings(shuffle="none", max_resample_rounds=0)
    result = await Judge(backend, settings=settings).score(QUERY, ["a", "bb"], k=3)
    reasons = [s.error.reason if s.error else None for s in result.samples]
    assert reasons == ["invalid_text", None, None] and result.n_valid == 2


# ---------------------------------------------------------------- bounds and up-front errors


@pytest.mark.anyio
async def test_k_is_capped_by_max_k() -> None:
    backend = Counting()
    judge = Judge(FunctionBackend(backend))
    assert JudgeSettings().max_k == 1024
    with pytest.raises(InvalidInputError, match=r"k=1000000 is above max_k=1024 \(JudgeSettings\.max_k\)"):
        await judge.score(QUERY, ["a", "b"], k=10**6)
    with pytest.raises(InvalidInputError, match="above max_k=4"):
        await judge.with_settings(max_k=4).score(QUERY, ["a", "b"], k=5)
    assert backend.requests == []
    assert (await judge.with_settings(max_k=4).score(QUERY, ["a", "b"], k=4)).ok


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (None, "query must be a string or a list of messages, got NoneType"),
        (123, "query must be a string or a list of messages, got int"),
        (b"bytes", "got bytes"),
        ({"role": "user", "content": "x"}, r"query is a single mapping: pass a string or a list of messages"),
        (["hi"], r"query\[0\] must be a message with 'role' and 'content', got str"),
        ([{"role": "bot", "content": "x"}], r"query\[0\]\.role must be one of 'system', 'user', 'assistant'"),
        ([{"content": "x"}], r"query\[0\] has no 'role'"),
        ([{"role": "user"}], r"query\[0\] has no 'content'"),
        ([{"role": "user", "content": 5}], r"query\[0\]\.content must be a string, got int"),
        ([{"role": "user", "content": "x", "name": "y"}], r"query\[0\] has unknown keys: 'name'"),
        ([], "query is empty"),
    ],
)
@pytest.mark.anyio
async def test_a_query_of_the_wrong_shape_is_one_clear_error(query: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message) as caught:
        await Judge(FunctionBackend(by_length)).score(query, ["a"])  # type: ignore[arg-type]
    assert "input_value" not in str(caught.value) and "pydantic" not in str(caught.value)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        ({"k": 0}, InvalidInputError, "k must be a positive integer, got 0"),
        ({"k": 10**6}, InvalidInputError, "above max_k=1024"),
        ({"k": "8"}, InvalidInputError, "k must be a positive integer, got '8'"),
        ({"meta": True}, ConfigurationError, "meta=True needs a meta scorer"),
        ({"concurrency": 0}, InvalidInputError, "concurrency must be at least 1"),
        ({"concurrency": "4"}, InvalidInputError, "concurrency must be a positive integer, got '4'"),
        ({"items": None}, InvalidInputError, "items must be an iterable of items, got NoneType"),
        ({"items": "abc"}, InvalidInputError, "items is a single string"),
        ({"items": GOOD}, InvalidInputError, "items is a single mapping"),
    ],
)
@pytest.mark.anyio
async def test_a_bad_batch_argument_raises_once_before_any_item_is_read(
    call: dict[str, Any], error: type[Exception], message: str
) -> None:
    pulled = 0

    def items() -> Any:
        nonlocal pulled
        for _ in range(3):
            pulled += 1
            yield GOOD

    judge = Judge(FunctionBackend(by_length))
    with pytest.raises(error, match=message):
        await judge.score_many(**{"items": items(), **call})
    with pytest.raises(error, match=message):
        async with judge.stream(**{"items": items(), **call}) as stream:
            async for _ in stream:
                pass
    assert pulled == 0


@pytest.mark.anyio
async def test_the_scalar_batch_refuses_k_and_meta_up_front() -> None:
    judge = ScalarJudge(LastTurnLength())
    with pytest.raises(InvalidInputError, match="k must be 1, got 2"):
        await judge.score_many([GOOD], k=2)
    with pytest.raises(InvalidInputError, match="meta=True"):
        await judge.score_many([GOOD], meta=True)


BAD_URLS = [
    "notaurl",
    "ftp://host",
    "",
    "   ",
    "http://",
    "http:///v1",
    "127.0.0.1:8000/v1",
    "https//host/v1",
    "http://h:port/v1",
    "http://[::1:8000/v1",
    "http://a host/v1",
]


HTTP_SERVERS: dict[str, Any] = {  # everything that takes a server's base_url, each checked by the one URL check
    "OpenAIBackend": lambda url: OpenAIBackend(url, "grm"),
    "AnthropicBackend": lambda url: AnthropicBackend("claude", api_key="k", base_url=url),
    "Judge.from_spec": lambda url: Judge.from_spec("openai:grm", base_url=url),
    "HTTPChatClassifier": lambda url: HTTPChatClassifier(url, "rm"),
    "HTTPMetaScorer": lambda url: HTTPMetaScorer(url, "meta-rm"),
    "meta_from_spec": lambda url: meta_from_spec("http:meta-rm", url),
}


@pytest.mark.parametrize("url", BAD_URLS)
@pytest.mark.parametrize("server", HTTP_SERVERS)
def test_a_malformed_base_url_is_refused_at_construction(server: str, url: str) -> None:
    with pytest.raises(
        ConfigurationError, match=f"base_url must be an http:// or https:// URL.*got {re.escape(repr(url))}"
    ):
        HTTP_SERVERS[server](url)


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        (None, "base_url must be an http:// or https:// URL or a list of them, got NoneType"),
        ([], "base_url is an empty list"),
        (["http://127.0.0.1:8000/v1", "nope"], r"base_url\[1\] must be an http:// or https:// URL"),
        ([8000], r"base_url\[0\] must be an http:// or https:// URL .* got int"),
    ],
)
def test_base_url_lists_are_checked_url_by_url(base_url: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        OpenAIBackend(base_url, "grm")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://h/v1?api-version=1", r"got 'http://h/v1\?\[REDACTED\]' \(a query string: request paths are"),
        ("http://h/v1?", r"\(a query string"),
        ("http://h/v1#x", r"got 'http://h/v1#x' \(a fragment: request paths are appended"),
        ("http://h:0/v1", r"got 'http://h:0/v1' \(port 0: no server listens there\)"),
    ],
)
@pytest.mark.parametrize("server", HTTP_SERVERS)
def test_a_base_url_that_would_break_every_request_path_is_refused(server: str, url: str, reason: str) -> None:
    with pytest.raises(ConfigurationError, match=f"base_url must be an http:// or https:// URL.*{reason}"):
        HTTP_SERVERS[server](url)


def test_a_bad_base_url_is_named_without_its_credentials() -> None:
    with pytest.raises(ConfigurationError) as caught:
        OpenAIBackend("htp://user:sk-secret-123@host/v1?key=sk-secret-456", "grm")
    assert "sk-secret" not in str(caught.value) and "htp://[REDACTED]@host/v1?[REDACTED]" in str(caught.value)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/v1", "https://api.openai.com/v1/", "http://[::1]:8000/v1", "http://grm:80"]
)
def test_well_formed_base_urls_are_accepted(url: str) -> None:
    assert OpenAIBackend(url, "grm").base_url == url.rstrip("/")
    assert AnthropicBackend("claude", api_key="k", base_url=url).base_url == url.rstrip("/")
    assert HTTPChatClassifier(url, "rm").base_url == url.rstrip("/").removesuffix("/v1")


# ---------------------------------------------------------------- properties over arbitrary input

QUERIES = st.one_of(WELL_FORMED, CHATS, TEXT, st.lists(st.one_of(MESSAGE, JSON), max_size=3), JSON)
RESPONSES = st.one_of(st.lists(WELL_FORMED, min_size=1, max_size=3), st.lists(st.one_of(TEXT, JSON), max_size=3), JSON)
K = st.one_of(st.integers(min_value=1, max_value=3), st.sampled_from([0, -1, 10**9, True, 1.5, "2", None]))
ITEMS = st.one_of(
    st.fixed_dictionaries({"query": QUERIES, "responses": RESPONSES}, optional={"id": st.one_of(TEXT, JSON)}),
    st.tuples(QUERIES, RESPONSES),
    JSON,
)


def echoing(request: GenerationRequest) -> list[str]:
    """A judge whose text quotes the prompt (caller text, NUL, RTL and all) before scoring by length."""
    quoted = request.messages[-1].content[:500]
    return [f"Analysis: {quoted}\n{judgement([1] * len(shown_responses(request)) or [1])}"] * request.n


def judge() -> Judge:
    return Judge(FunctionBackend(echoing), settings=JudgeSettings(max_tokens=64))


def assert_batch(results: list[BatchResult], items: list[Any]) -> None:
    assert [r.index for r in results] == list(range(len(items)))
    for result in results:
        assert (result.result is None) != (result.error is None)
        result.model_dump_json()


@PROPERTIES
@given(query=QUERIES, responses=RESPONSES, k=K)
def test_score_raises_only_grmjudge_errors(query: Any, responses: Any, k: Any) -> None:
    async def run() -> None:
        try:
            result = await judge().score(query, responses, k=k)
        except GRMJudgeError:
            return
        assert result.scores is None or len(result.scores) == len(responses)
        result.model_dump_json()

    anyio.run(run)


@PROPERTIES
@given(items=st.lists(ITEMS, max_size=5), k=K)
def test_score_many_returns_one_result_per_item_in_order(items: list[Any], k: Any) -> None:
    async def run() -> None:
        try:
            results = await judge().score_many([GOOD, *items, GOOD], k=k, concurrency=3)
        except GRMJudgeError:
            assert not (type(k) is int and 1 <= k <= 3)  # only a bad k fails the whole call
            return
        assert_batch(results, [GOOD, *items, GOOD])
        assert results[0].result is not None and results[-1].result is not None

    anyio.run(run)


@PROPERTIES
@given(items=st.lists(ITEMS, max_size=5))
def test_stream_returns_one_result_per_item(items: list[Any]) -> None:
    async def run() -> None:
        received: list[BatchResult] = []
        async with judge().stream([*items, GOOD], k=2, concurrency=2) as results:
            async for result in results:
                received.append(result)
        assert_batch(sorted(received, key=lambda r: r.index), [*items, GOOD])

    anyio.run(run)


def test_the_echoing_judge_gives_a_verdict_on_good_input() -> None:
    # the properties above reach the vote, not only the input checks
    result = anyio.run(lambda: judge().score(QUERY, ["a", "b\x00\u202e"], k=2))
    assert result.ok and result.n_valid == 2
