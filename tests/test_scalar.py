"""ScalarJudge, ClassifierMetaScorer and the HTTP classifier's wire format, without torch or a server.

``LastTurnLength`` is a small real classifier (the length of the rated turn); the HTTP classifier runs its
real client code against ``httpx.MockTransport`` handlers that answer with the bodies vLLM 0.32 sends
(recorded from a real server; the engine tier checks the real thing).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence

import anyio
import httpx
import pytest

from grmjudge import (
    BackendResponseError,
    BackendStatusError,
    ConfigurationError,
    InvalidInputError,
    Judge,
    JudgeSettings,
    RetryPolicy,
    ServerError,
    ShuffleMode,
)
from grmjudge.backends import FunctionBackend
from grmjudge.classifier import ChatClassifier, ChatScores, ClassifierMetaScorer, HTTPChatClassifier, InputTooLongError
from grmjudge.prompts import meta_messages
from grmjudge.scalar import ScalarJudge
from grmjudge.types import GenerationRequest, Message, Usage

from .judges import judgement, shown_responses

QUERY = "How do I sort a list in Python?"
RESPONSES = ["Use sorted(xs).", "Call xs.sort(); it sorts in place.", "No."]
SECRET = "sk-classifier-secret"


class LastTurnLength(ChatClassifier):
    """Scores a chat by the length of its last turn, and records every chat it was asked about."""

    name = "last-turn-length"
    model = "length"

    def __init__(self) -> None:
        self.calls: list[list[tuple[Message, ...]]] = []

    async def classify(self, chats: Sequence[Sequence[Message]]) -> ChatScores:
        self._check_open()
        self.calls.append([tuple(chat) for chat in chats])
        return ChatScores(scores=tuple(float(len(chat[-1].content)) for chat in chats), usage=Usage(requests=1))


# --- ScalarJudge --------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_one_score_per_response_in_the_callers_order() -> None:
    classifier = LastTurnLength()
    judge = ScalarJudge(classifier)
    result = await judge.score(QUERY, RESPONSES)
    permuted = await judge.score(QUERY, [RESPONSES[2], RESPONSES[0], RESPONSES[1]])
    assert result.scores == [15.0, 34.0, 3.0] and result.best == 1
    assert permuted.scores == [3.0, 15.0, 34.0] and permuted.best == 2
    assert result.samples == [] and result.ok and result.spread is None and result.no_verdict is None
    assert (result.n_valid, result.n_kept) == (1, 1)
    assert result.usage.requests == 1


@pytest.mark.anyio
async def test_each_response_is_the_assistant_turn_after_the_query() -> None:
    classifier = LastTurnLength()
    query = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": QUERY},
    ]
    await ScalarJudge(classifier).score(query, RESPONSES[:2])
    (chats,) = classifier.calls
    prefix = tuple(Message.model_validate(m) for m in query)
    assert chats == [(*prefix, Message(role="assistant", content=text)) for text in RESPONSES[:2]]


@pytest.mark.anyio
async def test_provenance_says_what_scored_it() -> None:
    result = await ScalarJudge(LastTurnLength(), seed=5).score(QUERY, RESPONSES, item_id="item-7")
    p = result.provenance
    assert (p.backend, p.model, p.template_id, p.template_hash) == ("last-turn-length", "length", "scalar-rm", "")
    assert (p.k, p.meta, p.k_meta, p.shuffle, p.seed, p.item_id) == (1, False, None, "none", 5, "item-7")
    assert (p.temperature, p.top_p, p.max_tokens, p.max_resample_rounds) == (0.0, None, 0, 0)


@pytest.mark.anyio
async def test_a_tie_at_the_top_is_broken_by_a_seeded_draw() -> None:
    judge = ScalarJudge(LastTurnLength())
    tied = ["same length", "same_length", "short"]
    bests = {item: (await judge.score(QUERY, tied, item_id=item)).best for item in map(str, range(40))}
    assert set(bests.values()) == {0, 1}
    again = {item: (await judge.score(QUERY, tied, item_id=item)).best for item in bests}
    assert again == bests
    assert (await judge.score(QUERY, tied)).best == (await judge.score(QUERY, tied)).best


@pytest.mark.anyio
async def test_the_tie_break_is_the_judges() -> None:
    tied = ["same length", "same_length", "short"]
    grm = Judge(
        FunctionBackend(lambda request: [judgement([7, 7, 2])] * request.n),
        settings=JudgeSettings(seed=9, shuffle=ShuffleMode.NONE),
    )
    scalar = ScalarJudge(LastTurnLength(), seed=9)
    for item in map(str, range(20)):
        assert (await scalar.score(QUERY, tied, item_id=item)).best == (await grm.score(QUERY, tied, item_id=item)).best


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 8}, "scalar reward models are deterministic: k must be 1, got 8"),
        ({"k": 0}, "k must be a positive integer"),
        ({"meta": True}, "meta=True needs sampled judgements"),
        ({"responses": "one string"}, "not a single string"),
        ({"responses": []}, "responses is empty"),
        ({"query": [{"role": "assistant", "content": "x"}]}, "last turn of the query must be the user's"),
    ],
)
async def test_bad_calls_are_rejected_before_scoring(kwargs: dict[str, object], message: str) -> None:
    classifier = LastTurnLength()
    call: dict[str, object] = {"query": QUERY, "responses": RESPONSES, **kwargs}
    with pytest.raises(InvalidInputError, match=message):
        await ScalarJudge(classifier).score(**call)  # type: ignore[arg-type]
    assert classifier.calls == []


@pytest.mark.anyio
async def test_score_many_keeps_order_ids_and_records_errors() -> None:
    judge = ScalarJudge(LastTurnLength())
    items = [
        {"query": QUERY, "responses": RESPONSES, "id": "a"},
        {"query": QUERY, "responses": []},
        {"query": QUERY, "responses": ["xx", "x"]},
    ]
    batch = await judge.score_many(items, concurrency=2)
    assert [b.item_id for b in batch] == ["a", "1", "2"]
    assert batch[0].result is not None and batch[0].result.scores == [15.0, 34.0, 3.0]
    assert batch[1].error is not None and batch[1].error.type == "InvalidInputError"
    assert batch[2].result is not None and batch[2].result.best == 0 and batch[2].result.provenance.item_id == "2"
    with pytest.raises(InvalidInputError, match="k must be 1"):
        await judge.score_many(items[:1], k=2)
    with pytest.raises(InvalidInputError, match="concurrency"):
        await judge.score_many(items, concurrency=0)


def test_sync_facade_runs_outside_and_inside_a_loop() -> None:
    judge = ScalarJudge(LastTurnLength())
    assert judge.score_sync(QUERY, RESPONSES).scores == [15.0, 34.0, 3.0]
    assert [b.result.best for b in judge.score_many_sync([{"query": QUERY, "responses": RESPONSES}]) if b.result] == [1]

    async def inside() -> list[float] | None:
        return judge.score_sync(QUERY, RESPONSES).scores

    assert anyio.run(inside) == [15.0, 34.0, 3.0]


@pytest.mark.anyio
async def test_closing_the_judge_closes_the_classifier() -> None:
    classifier = LastTurnLength()
    async with ScalarJudge(classifier):
        pass
    assert classifier.closed
    with pytest.raises(ConfigurationError, match="closed"):
        await classifier.score_chats([[Message(role="user", content="hi")]])


# --- ClassifierMetaScorer -----------------------------------------------------------------------------------


def varied(request: GenerationRequest) -> list[str]:
    """Valid judgements of different lengths."""
    shown = len(shown_responses(request))
    return [
        f"Analysis: {'long ' * ((request.seed or 0) % 5 + j)}" + judgement([j % 10 + 1] * shown)
        for j in range(request.n)
    ]


@pytest.mark.anyio
async def test_meta_scorer_rates_the_meta_chat_of_each_judgement() -> None:
    classifier = LastTurnLength()
    judge = Judge(FunctionBackend(varied), meta=ClassifierMetaScorer(classifier), settings=JudgeSettings(seed=3))
    result = await judge.score(QUERY, RESPONSES[:2], k=4, meta=True)
    (chats,) = classifier.calls
    assert [s.meta_score for s in result.samples] == [float(len(s.text or "")) for s in result.samples]
    expected = [meta_messages(QUERY, [RESPONSES[i] for i in s.permutation], s.text or "") for s in result.samples]
    assert chats == expected
    assert all(chat[0].role == "user" and chat[1].role == "assistant" for chat in chats)
    await judge.aclose()
    assert classifier.closed


# --- HTTPChatClassifier on the wire -------------------------------------------------------------------------


def classify_body(score: float, *, num_classes: int = 1, prompt_tokens: int = 25) -> dict[str, object]:
    """What vLLM 0.32 answers on /classify with use_activation=false."""
    return {
        "id": "classify-1",
        "object": "list",
        "created": 1,
        "model": "tiny-grm",
        "data": [{"index": 0, "label": "LABEL_0", "probs": [score] * num_classes, "num_classes": num_classes}],
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens, "completion_tokens": 0},
    }


TOO_LONG = {
    "error": {
        "message": "This model's maximum context length is 2048 tokens. However, your prompt contains at least 2049 "
        "input tokens, which exceeds this limit even without any output tokens. Please reduce the length of the "
        "input prompt. (parameter=input_tokens, value=2049)",
        "type": "BadRequestError",
        "param": "input_tokens",
        "code": 400,
    }
}

Handler = Callable[[httpx.Request], httpx.Response]


def on_mock(handler: Handler, **kw: object) -> tuple[HTTPChatClassifier, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def recording(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return handler(request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(recording))
    return HTTPChatClassifier("http://rm.test/v1/", "tiny-grm", http_client=client, **kw), requests  # type: ignore[arg-type]


def chats(*texts: str) -> list[list[Message]]:
    return [[Message(role="user", content="Rate this."), Message(role="assistant", content=t)] for t in texts]


@pytest.mark.anyio
async def test_http_sends_each_chat_as_messages_for_raw_logits() -> None:
    def by_length(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        return httpx.Response(200, json=classify_body(-float(len(body["messages"][-1]["content"])), prompt_tokens=7))

    classifier, requests = on_mock(by_length, api_key=SECRET, extra_body={"priority": 0})
    rated = await classifier.classify(chats("a", "bbb", "cc"))
    assert rated.scores == (-1.0, -3.0, -2.0)
    assert rated.usage == Usage(requests=3, prompt_tokens=21, completion_tokens=0)
    assert {str(r.url) for r in requests} == {"http://rm.test/classify"}
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in requests)
    body = json.loads(requests[0].content)
    assert body == {
        "model": "tiny-grm",
        "messages": [
            {"role": "user", "content": "Rate this."},
            {"role": "assistant", "content": body["messages"][1]["content"]},
        ],
        "add_generation_prompt": False,
        "use_activation": False,
        "priority": 0,
    }
    assert SECRET not in repr(classifier)
    assert await classifier.classify([]) == ChatScores(
        scores=(), usage=Usage(requests=0, prompt_tokens=0, completion_tokens=0)
    )


@pytest.mark.anyio
async def test_http_over_long_chat_is_a_typed_error_and_stops_the_call() -> None:
    def reject_long(request: httpx.Request) -> httpx.Response:
        if len(json.loads(request.content)["messages"][-1]["content"]) > 10:
            return httpx.Response(400, json=TOO_LONG)
        return httpx.Response(200, json=classify_body(0.5))

    classifier, _ = on_mock(reject_long)
    with pytest.raises(InputTooLongError, match=r"chats\[1\] is at least 2049 tokens long.*context of 2048") as info:
        await classifier.classify(chats("short", "far too long for it"))
    assert (info.value.index, info.value.length, info.value.max_length) == (1, None, 2048)


@pytest.mark.anyio
async def test_http_other_failures_keep_their_types() -> None:
    answers: dict[str, httpx.Response] = {
        "two labels": httpx.Response(200, json=classify_body(0.1, num_classes=2)),
        "no data": httpx.Response(200, json={"object": "list", "data": []}),
        "text score": httpx.Response(200, json={"data": [{"probs": ["0.3"], "num_classes": 1}]}),
        "server": httpx.Response(503, text="overloaded"),
        "bad request": httpx.Response(400, json={"error": {"message": "unknown field", "code": 400}}),
    }
    expected: dict[str, tuple[type[Exception], str]] = {
        "two labels": (ConfigurationError, "has 2 labels; a scalar reward model needs exactly 1"),
        "no data": (BackendResponseError, "without one data item holding one score"),
        "text score": (BackendResponseError, "not a number"),
        "server": (ServerError, "503"),
        "bad request": (BackendStatusError, "answered HTTP 400: .*unknown field"),
    }
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)

    for case, answer in answers.items():
        classifier, requests = on_mock(
            lambda _request, answer=answer: answer, retry=RetryPolicy(sleep=sleep, max_retries=1)
        )
        error, message = expected[case]
        with pytest.raises(error, match=message) as info:
            await classifier.classify(chats("x"))
        assert not isinstance(info.value, InputTooLongError)
        assert len(requests) == (2 if case == "server" else 1), case
    assert len(waits) == 1


def test_base_url_is_the_server_root() -> None:
    for url in ("http://h:8000", "http://h:8000/", "http://h:8000/v1", "http://h:8000/v1/"):
        assert HTTPChatClassifier(url, "m").url == "http://h:8000/classify"


def test_model_backed_scorers_load_no_ml_framework_until_used() -> None:
    code = (
        "import sys, grmjudge.meta, grmjudge.classifier, grmjudge.scalar;"
        "from grmjudge.meta import HTTPMetaScorer; from grmjudge.classifier import HTTPChatClassifier;"
        "HTTPMetaScorer('http://h', 'm');"
        "print(','.join(m for m in ('torch', 'transformers', 'vllm', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
