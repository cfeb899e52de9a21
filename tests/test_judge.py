from __future__ import annotations

import re
from collections import Counter

import anyio
import pytest

from grmjudge import (
    ConfigurationError,
    FunctionMetaScorer,
    InvalidInputError,
    Judge,
    JudgeItem,
    JudgeSettings,
    MetaInput,
    NoVerdictError,
    ShuffleMode,
)
from grmjudge.backends import FunctionBackend
from grmjudge.exceptions import RateLimitError
from grmjudge.judge import apply_meta
from grmjudge.types import Completion, Generation, GenerationRequest, Message, Usage

from .judges import by_length, judgement, length_score, shown_responses

QUERY = "How do I sort a list in Python?"
A = "Use sorted(xs) to get a new list."
B = "xs.sort() sorts in place and returns None, so do not assign its result."


class Recorder:
    """Wrap a judge function and keep every request it saw."""

    def __init__(self, fn=by_length) -> None:
        self.fn = fn
        self.requests: list[GenerationRequest] = []

    def __call__(self, request: GenerationRequest):
        self.requests.append(request)
        return self.fn(request)


def expected_totals(responses: list[str], k: int) -> list[float]:
    return [float(k * length_score(text)) for text in responses]


@pytest.mark.anyio
async def test_scores_are_summed_in_the_callers_order() -> None:
    recorder = Recorder()
    result = await Judge(FunctionBackend(recorder)).score(QUERY, [A, B], k=8)
    assert result.scores == expected_totals([A, B], 8) == [32.0, 16.0]
    assert result.best == 0
    assert result.n_valid == result.n_kept == 8
    assert len(result.samples) == 8
    assert all(s.kept and s.valid and s.error is None for s in result.samples)
    # balanced design: two orders, four samples each, one request per order with n=4
    assert sorted(r.n for r in recorder.requests) == [4, 4]
    assert Counter(s.permutation for s in result.samples) == Counter({(0, 1): 4, (1, 0): 4})
    assert len({r.seed for r in recorder.requests}) == 2


@pytest.mark.anyio
async def test_listwise_mapping_with_random_shuffles() -> None:
    responses = ["a", "bbb", "cc", "dddddd", "eeeee"]
    recorder = Recorder()
    judge = Judge(FunctionBackend(recorder), settings=JudgeSettings(shuffle=ShuffleMode.RANDOM))
    result = await judge.score(QUERY, responses, k=16)
    assert result.scores == expected_totals(responses, 16)
    assert len(recorder.requests) == len({s.permutation for s in result.samples})
    for sample in result.samples:
        assert sample.scores == tuple(length_score(t) for t in responses)


@pytest.mark.anyio
async def test_every_shown_order_matches_the_recorded_permutation() -> None:
    recorder = Recorder()
    responses = ["one", "two two", "three three three"]
    result = await Judge(FunctionBackend(recorder)).score(QUERY, responses, k=6)
    shown_orders = {tuple(shown_responses(r)) for r in recorder.requests}
    assert shown_orders == {tuple(responses[i] for i in s.permutation) for s in result.samples}


@pytest.mark.anyio
async def test_seeded_determinism_and_item_id() -> None:
    judge = Judge(FunctionBackend(by_length), settings=JudgeSettings(shuffle=ShuffleMode.RANDOM))
    first = await judge.score(QUERY, [A, B, "c"], k=8)
    again = await judge.score(QUERY, [A, B, "c"], k=8)
    other = await judge.score(QUERY, [A, B, "c"], k=8, item_id="another item")
    perms = lambda r: [s.permutation for s in r.samples]  # noqa: E731
    assert perms(first) == perms(again)
    assert [s.seed for s in first.samples] == [s.seed for s in again.samples]
    assert perms(first) != perms(other)
    reseeded = await judge.with_settings(seed=1).score(QUERY, [A, B, "c"], k=8)
    assert perms(reseeded) != perms(first)


@pytest.mark.anyio
async def test_temperature_defaults_follow_the_paper() -> None:
    recorder = Recorder()
    judge = Judge(FunctionBackend(recorder))
    greedy = await judge.score(QUERY, [A, B], k=1)
    await judge.score(QUERY, [A, B], k=2)
    assert [r.temperature for r in recorder.requests] == [0.0, 0.5, 0.5]
    assert greedy.provenance.temperature == 0.0
    await judge.with_settings(temperature=0.9, max_tokens=77, top_p=0.95).score(QUERY, [A, B], k=1)
    last = recorder.requests[-1]
    assert (last.temperature, last.max_tokens, last.top_p) == (0.9, 77, 0.95)


@pytest.mark.anyio
async def test_no_shuffle_sends_one_request_of_n_k() -> None:
    recorder = Recorder()
    judge = Judge(FunctionBackend(recorder), settings=JudgeSettings(shuffle=ShuffleMode.NONE))
    await judge.score(QUERY, [A, B], k=8)
    assert [r.n for r in recorder.requests] == [8]
    assert shown_responses(recorder.requests[0]) == [A, B]


@pytest.mark.anyio
async def test_backend_without_n_fans_out_with_distinct_seeds() -> None:
    recorder = Recorder()
    result = await Judge(FunctionBackend(recorder, supports_n=False)).score(QUERY, [A, B], k=4)
    assert [r.n for r in recorder.requests] == [1, 1, 1, 1]
    assert len({r.seed for r in recorder.requests}) == 4
    assert result.scores == expected_totals([A, B], 4)


def _sometimes_broken(bad_texts: list[str]):
    """Answer the first len(bad_texts) completions with the given bad texts, then valid judgements."""
    queue = list(bad_texts)

    def fn(request: GenerationRequest) -> list[Completion]:
        out = []
        for text in by_length(request):
            if queue:
                bad = queue.pop(0)
                out.append(Completion(text=bad, finish_reason="length" if bad.endswith("...") else "stop"))
            else:
                out.append(Completion(text=text))
        return out

    return fn


@pytest.mark.anyio
async def test_failed_samples_are_dropped_and_reported_without_resampling() -> None:
    backend = FunctionBackend(_sometimes_broken(["no box here", "Scores: \\boxed{8.5, 9}", "cut off \\boxed{9} ..."]))
    judge = Judge(backend, settings=JudgeSettings(max_resample_rounds=0, shuffle=ShuffleMode.NONE))
    result = await judge.score(QUERY, [A, B], k=8)
    assert result.n_valid == 5
    assert result.scores == expected_totals([A, B], 5)
    reasons = sorted(s.error.reason for s in result.samples if s.error)
    assert reasons == ["no_boxed", "not_integer", "truncated"]
    failed = [s for s in result.samples if not s.valid]
    assert all(s.scores is None and not s.kept and s.text for s in failed)


@pytest.mark.anyio
async def test_failed_samples_are_resampled_within_the_cap() -> None:
    recorder = Recorder(_sometimes_broken(["bad"] * 3))
    judge = Judge(FunctionBackend(recorder), settings=JudgeSettings(shuffle=ShuffleMode.NONE, max_resample_rounds=2))
    result = await judge.score(QUERY, [A, B], k=4)
    assert result.n_valid == 4
    # round 0: 4 samples (3 bad); round 1: the 3 failed ones, all valid now
    assert [r.n for r in recorder.requests] == [4, 3]
    resampled = [s for s in result.samples if s.attempt == 1]
    assert len(resampled) == 3
    assert all(s.earlier_errors[0].reason == "no_boxed" for s in resampled)
    assert len({r.seed for r in recorder.requests}) == 2
    assert result.usage.requests == 2


@pytest.mark.anyio
async def test_resampling_stops_at_the_cap() -> None:
    recorder = Recorder(lambda request: ["never valid"] * request.n)
    judge = Judge(FunctionBackend(recorder), settings=JudgeSettings(max_resample_rounds=2))
    result = await judge.score(QUERY, [A, B], k=2)
    assert len(recorder.requests) == 2 * 3  # two orders, three rounds
    assert all(s.attempt == 2 and len(s.earlier_errors) == 2 for s in result.samples)
    assert result.scores is None and result.best is None and result.spread is None
    assert result.no_verdict is not None and result.no_verdict.failures == {"no_boxed": 2}


@pytest.mark.anyio
async def test_greedy_calls_are_not_resampled() -> None:
    recorder = Recorder(lambda request: ["never valid"] * request.n)
    result = await Judge(FunctionBackend(recorder)).score(QUERY, [A, B], k=1)
    assert len(recorder.requests) == 1
    assert not result.ok


@pytest.mark.anyio
async def test_no_verdict_can_raise() -> None:
    judge = Judge(FunctionBackend(lambda r: ["nothing"] * r.n), settings=JudgeSettings(raise_on_no_verdict=True))
    with pytest.raises(NoVerdictError, match="no_boxed: 1") as info:
        await judge.score(QUERY, [A, B])
    assert info.value.no_verdict.failures == {"no_boxed": 1}


@pytest.mark.anyio
async def test_backend_errors_become_typed_sample_errors() -> None:
    def fail(request: GenerationRequest) -> list[str]:
        raise RateLimitError("slow down", status_code=429, retry_after=3.0)

    result = await Judge(FunctionBackend(fail)).score(QUERY, [A, B], k=4)
    assert result.no_verdict is not None and result.no_verdict.failures == {"RateLimitError": 4}
    assert {s.error.kind for s in result.samples if s.error} == {"backend"}


@pytest.mark.anyio
async def test_meta_guided_voting_keeps_the_top_half() -> None:
    # sample quality is encoded in the judgement; the meta scorer reads it back
    counter = iter(range(1000))

    def fn(request: GenerationRequest) -> list[str]:
        out = []
        for _ in range(request.n):
            quality = next(counter)
            shown = shown_responses(request)
            scores = [10 if t == B else 1 for t in shown] if quality % 2 else [10 if t == A else 1 for t in shown]
            out.append(judgement(scores) + f"\nquality={quality % 2}")
        return out

    seen: list[MetaInput] = []

    def meta_fn(inputs: list[MetaInput]) -> list[float]:
        seen.extend(inputs)
        return [float(re.search(r"quality=(\d)", m.judgement).group(1)) for m in inputs]  # type: ignore[union-attr]

    judge = Judge(FunctionBackend(fn), meta=FunctionMetaScorer(meta_fn))
    plain = await judge.score(QUERY, [A, B], k=8)
    guided = await judge.score(QUERY, [A, B], k=8, meta=True)
    assert plain.scores == [44.0, 44.0]
    assert guided.n_kept == 4 and guided.n_valid == 8
    assert guided.scores == [4.0, 40.0] and guided.best == 1
    assert all(s.meta_score == 1.0 for s in guided.samples if s.kept)
    assert guided.provenance.k_meta == 4
    # the meta RM saw each judgement with the responses in that judgement's shown order
    for item, sample in zip(seen[-8:], guided.samples, strict=True):
        assert item.responses == tuple([A, B][i] for i in sample.permutation)
        assert "[The Begin of Response 1]" in item.messages[0].content
        assert item.messages[1].content == sample.text


@pytest.mark.anyio
async def test_meta_k_meta_override_and_failed_samples_are_not_ranked() -> None:
    backend = FunctionBackend(_sometimes_broken(["broken"] * 5))
    meta_calls: list[int] = []

    def meta_fn(inputs: list[MetaInput]) -> list[float]:
        meta_calls.append(len(inputs))
        return [1.0] * len(inputs)

    judge = Judge(backend, meta=FunctionMetaScorer(meta_fn), settings=JudgeSettings(max_resample_rounds=0, k_meta=6))
    result = await judge.score(QUERY, [A, B], k=8, meta=True)
    assert meta_calls == [3]
    assert result.n_kept == 3  # k_meta capped at the number of valid samples
    assert all(s.meta_score is None for s in result.samples if not s.valid)


@pytest.mark.anyio
async def test_meta_without_a_scorer_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="meta scorer"):
        await Judge(FunctionBackend(by_length)).score(QUERY, [A, B], k=2, meta=True)


@pytest.mark.anyio
async def test_ties_are_broken_by_a_seeded_draw() -> None:
    judge = Judge(FunctionBackend(lambda r: [judgement([5, 5])] * r.n))
    bests = {(await judge.score(QUERY, [A, B], item_id=str(i))).best for i in range(40)}
    assert bests == {0, 1}
    again = await judge.score(QUERY, [A, B], item_id="7")
    assert again.best == (await judge.score(QUERY, [A, B], item_id="7")).best


@pytest.mark.parametrize(
    ("responses", "k", "message"),
    [
        ([], 1, "responses is empty"),
        ("just a string", 1, "not a single string"),
        ([A, 3], 1, r"responses\[1\]"),
        ([A], 0, "k must be"),
        ([A], True, "k must be"),
        ([A], 1025, r"k=1025 is above max_k=1024"),
        (None, 1, "responses must be a list of strings, got NoneType"),
        ({"a": A}, 1, "responses must be a list of strings, got dict"),
        ([A, "\ud800"], 1, r"responses\[1\] contains a lone surrogate at position 0"),
    ],
)
@pytest.mark.anyio
async def test_invalid_input(responses: object, k: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await Judge(FunctionBackend(by_length)).score(QUERY, responses, k=k)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_provenance_and_usage() -> None:
    def fn(request: GenerationRequest) -> Generation:
        completions = tuple(Completion(text=t) for t in by_length(request))
        return Generation(completions=completions, usage=Usage(requests=1, prompt_tokens=100, completion_tokens=20))

    result = await Judge(FunctionBackend(fn, model="tiny-grm")).score(QUERY, [A, B], k=8, item_id="item-1")
    p = result.provenance
    assert (p.backend, p.model, p.k, p.meta, p.shuffle, p.item_id, p.seed) == (
        "function",
        "tiny-grm",
        8,
        False,
        "balanced",
        "item-1",
        0,
    )
    assert p.template_id == "deepseek-grm-default" and len(p.template_hash) == 16
    assert result.usage == Usage(requests=2, prompt_tokens=200, completion_tokens=40)
    assert result.spread is not None and all(s.stdev == 0.0 for s in result.spread)
    assert result.samples[0].principles and result.samples[0].critique


@pytest.mark.anyio
async def test_score_many_keeps_order_and_records_item_failures() -> None:
    active = 0
    peak = 0

    async def fn(request: GenerationRequest) -> list[str]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.001)
        active -= 1
        return by_length(request)

    items = [{"query": f"q{i}", "responses": ["x" * i, "y" * (i + 1)], "id": f"id-{i}"} for i in range(20)]
    items.insert(3, {"query": "q", "responses": []})
    items.insert(7, {"query": "q"})
    items.append(JudgeItem(query=[{"role": "user", "content": "chat"}], responses=("r",)))
    results = await Judge(FunctionBackend(fn)).score_many(items, k=2, concurrency=4)
    assert [r.index for r in results] == list(range(len(items)))
    assert results[3].error is not None and results[3].error.type == "InvalidInputError"
    assert results[3].error.message == "responses is empty: give at least one response to judge"
    assert results[7].error is not None and results[7].error.message == "item has no 'responses'"
    assert results[3].item_id == "3"
    good = [r for r in results if r.error is None]
    assert len(good) == 21 and all(r.result is not None and r.result.ok for r in good)
    assert results[0].item_id == "id-0" and results[0].result is not None
    assert results[0].result.provenance.item_id == "id-0"
    assert peak <= 4 * 2


def test_sync_facade() -> None:
    judge = Judge(FunctionBackend(by_length))
    result = judge.score_sync(QUERY, [A, B], k=4)
    assert result.scores == expected_totals([A, B], 4)
    batch = judge.score_many_sync([{"query": QUERY, "responses": [A, B]}], k=2)
    assert batch[0].result is not None and batch[0].result.ok


@pytest.mark.anyio
async def test_sync_facade_works_inside_a_running_event_loop() -> None:
    judge = Judge(FunctionBackend(by_length))  # a notebook cell: a loop runs in this thread, and it blocks
    assert judge.score_sync(QUERY, [A, B], k=4).scores == expected_totals([A, B], 4)
    assert judge.score_sync(QUERY, [A, B], k=4).scores == expected_totals([A, B], 4)  # and again, same judge


@pytest.mark.anyio
async def test_template_arity_errors_surface_before_any_request() -> None:
    from grmjudge import SINGLE_RESPONSE_TEMPLATE

    recorder = Recorder()
    judge = Judge(FunctionBackend(recorder), settings=JudgeSettings(template=SINGLE_RESPONSE_TEMPLATE))
    with pytest.raises(InvalidInputError, match="exactly one response"):
        await judge.score(QUERY, [A, B], k=2)
    assert recorder.requests == []


@pytest.mark.anyio
async def test_unexpected_backend_exceptions_are_not_wrapped_in_groups() -> None:
    def broken(request: GenerationRequest) -> list[str]:
        raise KeyError("bug in a custom backend")

    with pytest.raises(KeyError, match="bug in a custom backend"):
        await Judge(FunctionBackend(broken)).score(QUERY, [A, B], k=4)


@pytest.mark.anyio
async def test_invalid_batch_items_keep_their_id() -> None:
    results = await Judge(FunctionBackend(by_length)).score_many([{"id": "kept-id", "query": "q", "responses": []}])
    assert results[0].item_id == "kept-id" and results[0].error is not None


@pytest.mark.anyio
async def test_stream_reads_items_lazily_and_yields_in_completion_order() -> None:
    pulled = 0

    def items():
        nonlocal pulled
        for i in range(50):
            pulled += 1
            yield {"query": f"q{i}", "responses": ["a" * (i % 5 + 1), "b"], "id": f"item-{i}"}

    async def slow_first(request: GenerationRequest) -> list[str]:
        if "q0" in request.messages[0].content:
            await anyio.sleep(0.05)
        return by_length(request)

    seen: list[int] = []
    async with Judge(FunctionBackend(slow_first)).stream(items(), k=2, concurrency=4) as results:
        async for batch in results:
            if not seen:
                assert pulled <= 4 + 1  # only a window of items has been read
            seen.append(batch.index)
            assert batch.result is not None and batch.item_id == f"item-{batch.index}"
    assert sorted(seen) == list(range(50))
    assert seen[0] != 0  # the slow first item did not hold the others back


@pytest.mark.anyio
async def test_leaving_a_stream_early_cancels_the_rest() -> None:
    started = 0

    async def fn(request: GenerationRequest) -> list[str]:
        nonlocal started
        started += 1
        await anyio.sleep(0.01)
        return by_length(request)

    items = [{"query": f"q{i}", "responses": ["a", "b"]} for i in range(100)]
    async with Judge(FunctionBackend(fn)).stream(items, k=1, concurrency=2) as results:
        async for _ in results:
            break
    assert started < 10


@pytest.mark.anyio
async def test_max_concurrent_requests_holds_across_concurrent_calls() -> None:
    active = peak = 0

    async def fn(request: GenerationRequest) -> list[str]:
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await anyio.sleep(0.005)
        active -= 1
        return by_length(request)

    judge = Judge(FunctionBackend(fn), max_concurrent_requests=2)
    async with anyio.create_task_group() as tg:
        for i in range(10):
            tg.start_soon(judge.score, f"q{i}", [A, B], 4)
    assert peak == 2


@pytest.mark.anyio
async def test_apply_meta_on_an_unfiltered_result_gives_the_one_call_result() -> None:
    def fn(request: GenerationRequest) -> list[str]:
        scores = [length_score(t) for t in shown_responses(request)]
        return [judgement(scores) + f"\nrank={(request.seed or 0) + i}" for i in range(request.n)]

    def meta_fn(inputs: list[MetaInput]) -> list[float]:  # ties at the top, so the lower index must win
        return [float(int(re.search(r"rank=(\d+)", m.judgement).group(1)) % 3) for m in inputs]  # type: ignore[union-attr]

    meta = FunctionMetaScorer(meta_fn)
    judge = Judge(FunctionBackend(fn), meta=meta, settings=JudgeSettings(k_meta=3))
    responses = [A, B, "a third one"]
    unfiltered = await judge.score(QUERY, responses, k=7, item_id="x")
    one_call = await judge.score(QUERY, responses, k=7, meta=True, item_id="x")

    messages = (Message(role="user", content=QUERY),)
    split = await apply_meta(unfiltered, meta, messages, tuple(responses), k_meta=3)

    assert split == one_call and split.n_kept == 3
    assert unfiltered.n_kept == 7 and not unfiltered.provenance.meta
