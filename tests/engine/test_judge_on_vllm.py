"""The judge end to end against a real vLLM server on CPU, serving a tiny random model.

The model writes garbage, which is the point: it must come back as typed parse failures, never scores.
"""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from grmjudge import Judge, JudgeSettings, ShuffleMode
from grmjudge.backends import OpenAIBackend
from grmjudge.testing.vllm_server import VLLMServer

pytestmark = [pytest.mark.engine, pytest.mark.anyio]

QUERY = "How do I sort a list in Python?"
RESPONSES = ["Use sorted(xs) for a new list.", "Call xs.sort() to sort in place."]


def counting_client() -> tuple[httpx.AsyncClient, list[dict[str, object]]]:
    """An httpx client (passed to the backend as http_client) with a hook that records every request body."""
    bodies: list[dict[str, object]] = []

    async def record(request: httpx.Request) -> None:
        bodies.append(json.loads(request.content))

    return httpx.AsyncClient(timeout=120, event_hooks={"request": [record]}), bodies


async def test_k8_makes_one_request_per_order_with_distinct_choices(vllm_server: VLLMServer) -> None:
    client, bodies = counting_client()
    async with client:
        backend = OpenAIBackend(vllm_server.base_url, vllm_server.model, http_client=client)
        judge = Judge(backend, settings=JudgeSettings(max_tokens=24, max_resample_rounds=0))
        result = await judge.score(QUERY, RESPONSES, k=8)
    assert len(bodies) == 2
    assert sorted(body["n"] for body in bodies) == [4, 4]
    assert all(body["temperature"] == 0.5 and isinstance(body["seed"], int) for body in bodies)
    assert result.usage.requests == 2
    assert result.usage.prompt_tokens is not None and result.usage.prompt_tokens > 500
    groups: dict[tuple[int, ...], list[str]] = {}
    for sample in result.samples:
        groups.setdefault(sample.permutation, []).append(sample.text or "")
    assert sorted(len(texts) for texts in groups.values()) == [4, 4]
    for texts in groups.values():
        assert len(set(texts)) == 4, "seeded n>1 sampling returned identical choices"


async def test_random_model_garbage_is_typed_parse_failures(vllm_server: VLLMServer) -> None:
    backend = OpenAIBackend(vllm_server.base_url, vllm_server.model)
    async with Judge(backend, settings=JudgeSettings(max_tokens=16, max_resample_rounds=0)) as judge:
        result = await judge.score(QUERY, RESPONSES, k=4)
    assert result.scores is None and result.best is None
    assert all(s.error is not None and s.error.kind == "parse" for s in result.samples)
    reasons = Counter(s.error.reason for s in result.samples if s.error)
    assert set(reasons) <= {"truncated", "no_boxed", "not_integer", "wrong_count", "out_of_range", "empty"}
    assert result.no_verdict is not None and result.no_verdict.failures == dict(reasons)
    assert backend.closed


async def test_seeded_calls_reproduce_and_greedy_is_one_request(vllm_server: VLLMServer) -> None:
    client, bodies = counting_client()
    async with client:
        judge = Judge(
            OpenAIBackend(vllm_server.base_url, vllm_server.model, http_client=client),
            settings=JudgeSettings(max_tokens=12, max_resample_rounds=0, shuffle=ShuffleMode.RANDOM),
        )
        first = await judge.score(QUERY, RESPONSES, k=4, item_id="same")
        second = await judge.score(QUERY, RESPONSES, k=4, item_id="same")
        greedy = await judge.score(QUERY, RESPONSES, k=1)
    assert [s.text for s in first.samples] == [s.text for s in second.samples]
    assert bodies[-1]["n"] == 1 and bodies[-1]["temperature"] == 0.0
    assert greedy.usage.requests == 1


async def test_completions_endpoint_on_the_real_server(vllm_server: VLLMServer) -> None:
    backend = OpenAIBackend(vllm_server.base_url, vllm_server.model, endpoint="completions")
    async with Judge(backend, settings=JudgeSettings(max_tokens=8, max_resample_rounds=0)) as judge:
        result = await judge.score(QUERY, RESPONSES, k=2)
    assert len(result.samples) == 2 and all(s.text is not None for s in result.samples)
    assert all(s.error is not None and s.error.kind == "parse" for s in result.samples)
