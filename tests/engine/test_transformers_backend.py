"""TransformersBackend on the tiny random model: chat template, n, sampling, limits, errors and dynamic batching.

The model writes garbage, so judge calls come back as typed parse failures; what these tests check is the
plumbing: which tokens go in, how many come out, how requests are batched and how failures reach callers.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from grmjudge import Judge, JudgeSettings
from grmjudge.exceptions import BackendError, ConfigurationError, InvalidInputError
from grmjudge.types import Generation, GenerationRequest, Message

torch = pytest.importorskip("torch", reason="TransformersBackend needs the 'hf' extra")
from grmjudge.backends.transformers import TransformersBackend  # noqa: E402
from grmjudge.exceptions import ContextLengthError  # noqa: E402

pytestmark = [pytest.mark.engine, pytest.mark.anyio]

QUERY = "How do I sort a list in Python?"
RESPONSES = ["Use sorted(xs) for a new list.", "Call xs.sort() to sort in place."]


def request(text: str = "What is the capital of France?", **kw: Any) -> GenerationRequest:
    return GenerationRequest(messages=(Message(role="user", content=text),), **kw)


def texts(generation: Generation) -> list[str]:
    return [c.text for c in generation.completions]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> Iterator[TransformersBackend]:
    backend = TransformersBackend(str(tiny_model_dir), device="cpu")
    yield backend
    anyio.run(backend.aclose)


def twin(backend: TransformersBackend, **options: Any) -> TransformersBackend:
    """A second backend over a private copy of the model, free to be altered."""
    return TransformersBackend.from_pretrained_objects(
        copy.deepcopy(backend.hf_model), backend.tokenizer, name="tiny-copy", **options
    )


async def gather(backend: TransformersBackend, requests: list[GenerationRequest]) -> list[Generation | Exception]:
    """Send every request concurrently; each slot holds the generation or the exception its caller got."""
    results: list[Generation | Exception | None] = [None] * len(requests)

    async def one(i: int) -> None:
        try:
            results[i] = await backend.generate(requests[i])
        except Exception as exc:
            results[i] = exc

    with anyio.fail_after(120):  # a lost wake-up would hang, not fail
        async with anyio.create_task_group() as tg:
            for i in range(len(requests)):
                tg.start_soon(one, i)
    return [r for r in results if r is not None]


def generations(results: list[Generation | Exception]) -> list[Generation]:
    assert all(isinstance(r, Generation) for r in results), results
    return [r for r in results if isinstance(r, Generation)]


def raw_greedy(backend: TransformersBackend, prompt: list[int], max_new_tokens: int) -> list[int]:
    """Plain ``model.generate`` on one unpadded prompt: the reference the backend must match."""
    ids = torch.tensor([prompt])
    with torch.inference_mode():
        out = backend.hf_model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=backend.tokenizer.pad_token_id,
        )
    return out[0, len(prompt) :].tolist()


async def test_chat_template_is_applied_and_greedy_matches_raw_generate(backend: TransformersBackend) -> None:
    req = request("Tell me about Paris.", max_tokens=12)
    prompt = backend.encode_prompt(req.messages)
    rendered = backend.tokenizer.decode(prompt, skip_special_tokens=False)
    assert rendered == "<|im_start|>user\nTell me about Paris.<|im_end|>\n<|im_start|>assistant\n"

    generation = await backend.generate(req)
    assert generation.usage.prompt_tokens == len(prompt)
    expected = raw_greedy(backend, prompt, 12)
    assert backend.tokenizer.eos_token_id not in expected, "pick a prompt the random model does not end"
    assert texts(generation) == [backend.tokenizer.decode(expected, skip_special_tokens=True)]
    assert generation.completions[0].finish_reason == "length"
    assert generation.model == backend.model


async def test_n_completions_and_usage(backend: TransformersBackend) -> None:
    before = backend.stats.sequences
    generation = await backend.generate(request(n=3, temperature=1.0, max_tokens=8, seed=1))
    assert len(generation.completions) == 3
    assert len(set(texts(generation))) == 3, "the n rows must be sampled independently"
    assert backend.stats.sequences - before == 3
    usage = generation.usage
    assert usage.requests == 1
    assert usage.prompt_tokens == len(backend.encode_prompt(request().messages))  # counted once, not n times
    lengths = [c.finish_reason for c in generation.completions]
    assert usage.completion_tokens is not None
    assert usage.completion_tokens <= 3 * 8
    assert usage.completion_tokens >= 8 * lengths.count("length") + lengths.count("stop")


async def test_greedy_is_deterministic_and_one_row_serves_n(backend: TransformersBackend) -> None:
    before = backend.stats.sequences
    first = await backend.generate(request(max_tokens=10))
    second = await backend.generate(request(n=3, max_tokens=10))
    assert texts(second) == texts(first) * 3
    assert backend.stats.sequences - before == 2
    assert second.usage.completion_tokens == 3 * (first.usage.completion_tokens or 0)


async def test_seeded_sampling_reproduces_alone_and_in_any_batch(backend: TransformersBackend) -> None:
    seeded = request(n=2, temperature=1.0, max_tokens=10, seed=1234)
    alone = await backend.generate(seeded)
    again = await backend.generate(seeded)
    assert texts(again) == texts(alone)

    others = [
        request(
            f"An unrelated and much longer question, number {i}, about rivers.",
            n=2,
            temperature=1.0,
            max_tokens=10,
            seed=i,
        )
        for i in range(3)
    ]
    calls = backend.stats.generate_calls
    batched = generations(await gather(backend, [*others, seeded]))
    assert backend.stats.generate_calls - calls == 1, "the four requests should have shared one generate call"
    assert texts(batched[-1]) == texts(alone)

    other_seed = await backend.generate(seeded.model_copy(update={"seed": 4321}))
    assert texts(other_seed) != texts(alone)


async def test_unseeded_sampling_differs_between_calls(backend: TransformersBackend) -> None:
    first = await backend.generate(request(n=2, temperature=1.0, max_tokens=10))
    second = await backend.generate(request(n=2, temperature=1.0, max_tokens=10))
    assert texts(first) != texts(second)


async def test_top_p_keeps_only_the_top_tokens(backend: TransformersBackend) -> None:
    """A tiny top_p leaves one token per step, so sampling turns greedy whatever the seed."""
    greedy = await backend.generate(request(max_tokens=10))
    nucleus = generations(
        await gather(backend, [request(n=2, temperature=1.0, top_p=1e-6, max_tokens=10, seed=s) for s in (1, 2)])
    )
    assert [texts(g) for g in nucleus] == [texts(greedy) * 2] * 2


async def test_max_tokens_is_respected_and_reported_as_length(backend: TransformersBackend) -> None:
    greedy = await backend.generate(request(max_tokens=5))
    expected = raw_greedy(backend, backend.encode_prompt(request().messages), 5)
    assert len(expected) == 5 and backend.tokenizer.eos_token_id not in expected
    assert texts(greedy) == [backend.tokenizer.decode(expected, skip_special_tokens=True)]
    assert greedy.completions[0].finish_reason == "length" and greedy.usage.completion_tokens == 5

    sampled = await backend.generate(request(n=4, temperature=1.0, max_tokens=5, seed=3))
    assert all(c.finish_reason == "length" for c in sampled.completions)
    assert sampled.usage.completion_tokens == 4 * 5


async def test_eos_stops_a_row_and_padding_is_not_counted(backend: TransformersBackend) -> None:
    """Declare a token of one prompt's greedy path an EOS id: that row stops there, its batch-mate runs on."""
    stopping = request("What is the capital of France?", max_tokens=12)
    running = request("Write a poem about the sea.", max_tokens=12)
    stop_tokens = raw_greedy(backend, backend.encode_prompt(stopping.messages), 12)
    run_tokens = raw_greedy(backend, backend.encode_prompt(running.messages), 12)
    cuts = [i for i, t in enumerate(stop_tokens) if i > 0 and t not in stop_tokens[:i] and t not in run_tokens]
    assert cuts, "pick prompts whose greedy paths differ"
    cut = cuts[0]

    model = copy.deepcopy(backend.hf_model)
    model.generation_config.eos_token_id = [backend.tokenizer.eos_token_id, stop_tokens[cut]]
    other = TransformersBackend.from_pretrained_objects(model, backend.tokenizer)
    stopped, ran = generations(await gather(other, [stopping, running]))
    assert other.stats.generate_calls == 1
    assert stopped.completions[0].finish_reason == "stop"
    assert stopped.completions[0].text == backend.tokenizer.decode(stop_tokens[:cut], skip_special_tokens=True)
    assert stopped.usage.completion_tokens == cut + 1  # the tokens and the EOS, not the padding after it
    assert ran.completions[0].finish_reason == "length" and ran.usage.completion_tokens == 12
    assert other.stats.generated_tokens == cut + 1 + 12


async def test_over_long_prompt_fails_before_generation_and_only_for_its_caller(backend: TransformersBackend) -> None:
    assert backend.max_context == 2048
    long_text = " ".join(f"word{i}" for i in range(1200))
    long_prompt = len(backend.encode_prompt(request(long_text).messages))
    assert long_prompt > 2048
    calls = backend.stats.generate_calls
    too_long, fine, too_many_tokens = await gather(
        backend, [request(long_text, max_tokens=8), request(max_tokens=8), request(max_tokens=2040)]
    )
    assert isinstance(too_long, ContextLengthError)
    assert isinstance(too_long, BackendError) and isinstance(too_long, InvalidInputError)
    assert f"{long_prompt} tokens" in str(too_long) and "2048" in str(too_long)
    assert (too_long.prompt_tokens, too_long.max_tokens, too_long.max_context) == (long_prompt, 8, 2048)
    assert isinstance(too_many_tokens, ContextLengthError) and "max_tokens is 2040" in str(too_many_tokens)
    assert isinstance(fine, Generation)
    assert backend.stats.generate_calls - calls == 1  # only the request that fits was generated


async def test_requests_with_different_sampling_parameters_get_separate_calls(backend: TransformersBackend) -> None:
    calls = backend.stats.generate_calls
    requests = [request(max_tokens=6), request(max_tokens=6, n=2)]
    requests += [request(temperature=0.7, max_tokens=6, seed=i) for i in range(3)]
    requests += [request(temperature=0.7, max_tokens=7, seed=1), request(temperature=0.7, top_p=0.9, max_tokens=6)]
    results = generations(await gather(backend, requests))
    assert [len(g.completions) for g in results] == [1, 2, 1, 1, 1, 1, 1]
    assert backend.stats.generate_calls - calls == 4  # greedy/6, t0.7/6, t0.7/7, t0.7+top_p/6


async def test_budget_splits_a_burst_into_batches(backend: TransformersBackend) -> None:
    small = twin(backend, max_batch_sequences=4)
    results = generations(await gather(small, [request(n=2, temperature=1.0, max_tokens=4, seed=i) for i in range(6)]))
    assert len(results) == 6
    assert (small.stats.generate_calls, small.stats.sequences) == (3, 12)


async def test_64_concurrent_judge_calls_share_a_few_generate_calls(backend: TransformersBackend) -> None:
    judge = Judge(backend, settings=JudgeSettings(max_tokens=8, max_resample_rounds=0))
    calls, requests, sequences = backend.stats.generate_calls, backend.stats.requests, backend.stats.sequences
    results: list[Any] = [None] * 64

    async def score(i: int) -> None:
        results[i] = await judge.score(f"Question {i}: {QUERY}", [f"{RESPONSES[0]} ({i})", RESPONSES[1]], k=4)

    with anyio.fail_after(240):
        async with anyio.create_task_group() as tg:
            for i in range(64):
                tg.start_soon(score, i)

    assert backend.stats.requests - requests == 128  # balanced design: 2 orders of n=2 per call
    assert backend.stats.sequences - sequences == 256
    assert backend.stats.generate_calls - calls <= 6  # 256 rows at 64 per call: 4 when gathering is perfect
    for result in results:
        assert len(result.samples) == 4
        for sample in result.samples:
            assert sample.valid or (sample.error is not None and sample.error.kind == "parse"), sample
        assert (result.scores is None) == (result.no_verdict is not None)


async def test_an_error_inside_generate_reaches_every_caller_as_backend_error(backend: TransformersBackend) -> None:
    broken = twin(backend)

    def fail(module: Any, args: Any) -> None:
        raise RuntimeError("simulated device failure")

    handle = broken.hf_model.register_forward_pre_hook(fail)
    results = await gather(broken, [request(n=2, temperature=1.0, max_tokens=4, seed=i) for i in range(5)])
    assert broken.stats.generate_calls == 1  # one batch, failed for all five callers
    for result in results:
        assert type(result) is BackendError, result
        assert "simulated device failure" in str(result) and isinstance(result.__cause__, RuntimeError)
        assert result.backend == "transformers" and not result.retryable

    judge = Judge(broken, settings=JudgeSettings(max_tokens=4, max_resample_rounds=0))
    scored = await judge.score(QUERY, RESPONSES, k=4)
    assert scored.scores is None
    assert {(s.error.kind, s.error.reason) for s in scored.samples if s.error} == {("backend", "BackendError")}

    handle.remove()  # the gatherer survived the failures
    assert len((await broken.generate(request(max_tokens=4))).completions) == 1


async def test_cancelled_waiters_do_not_break_the_batch_for_others(backend: TransformersBackend) -> None:
    slow = twin(backend, batch_window=0.3)
    outcome: dict[str, Any] = {}

    async def cancelled(label: str, seed: int) -> None:
        with anyio.move_on_after(0.05):
            await slow.generate(request(temperature=1.0, max_tokens=4, seed=seed))
            outcome[label] = "finished"

    async def waits(label: str, seed: int) -> None:
        outcome[label] = await slow.generate(request(temperature=1.0, max_tokens=4, seed=seed))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(cancelled, "leader", 0)  # the first caller leads the queue
            await anyio.sleep(0.01)
            tg.start_soon(waits, "a", 1)
            tg.start_soon(cancelled, "middle", 2)
            tg.start_soon(waits, "b", 3)

    assert "leader" not in outcome and "middle" not in outcome
    assert isinstance(outcome["a"], Generation) and isinstance(outcome["b"], Generation)
    assert (slow.stats.generate_calls, slow.stats.requests) == (1, 2)


async def test_cancelling_a_caller_whose_batch_is_running_spares_the_others(backend: TransformersBackend) -> None:
    busy = twin(backend, batch_window=0.05)  # both requests reach the queue (on grmjudge's loop) within it
    outcome: dict[str, Any] = {}

    async def leader() -> None:
        with anyio.move_on_after(0.15) as scope:  # the batch of both requests is running by then
            await busy.generate(request(n=8, temperature=1.0, max_tokens=96, seed=0))
        outcome["deadline_hit"] = scope.cancel_called
        outcome["leader_done"] = busy.stats.generate_calls

    async def follower() -> None:
        outcome["follower"] = await busy.generate(request(n=8, temperature=1.0, max_tokens=96, seed=1))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(leader)
            tg.start_soon(follower)
    assert outcome["deadline_hit"], "the leader's deadline must pass while its batch runs"
    assert outcome["leader_done"] == 1, "the cancelled leader left only after its batch had finished"
    assert len(outcome["follower"].completions) == 8
    assert busy.stats.generate_calls == 1


def test_sync_facade_works_twice_in_fresh_loops(backend: TransformersBackend) -> None:
    judge = Judge(backend, settings=JudgeSettings(max_tokens=6))
    calls = backend.stats.generate_calls
    first = judge.score_sync(QUERY, RESPONSES, k=1)
    second = judge.score_sync(QUERY, RESPONSES, k=1)
    assert [s.text for s in first.samples] == [s.text for s in second.samples]
    assert backend.stats.generate_calls - calls == 2


def test_bad_options_and_missing_models_are_configuration_errors(backend: TransformersBackend, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="batch_window"):
        twin(backend, batch_window=-1)
    with pytest.raises(ConfigurationError, match="max_batch_sequences"):
        twin(backend, max_batch_sequences=0)
    with pytest.raises(ConfigurationError, match="could not load"):
        TransformersBackend(str(tmp_path / "missing"), device="cpu")


async def test_closed_backend_refuses_requests(backend: TransformersBackend) -> None:
    other = twin(backend)
    await other.aclose()
    with pytest.raises(ConfigurationError, match="closed"):
        await other.generate(request(max_tokens=2))
    assert len((await backend.generate(request(max_tokens=2))).completions) == 1


def test_import_without_torch_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from grmjudge.exceptions import MissingDependencyError\n"
        "try:\n    import grmjudge.backends.transformers\n"
        "except MissingDependencyError as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "grmjudge[hf]" in out.stdout
