"""The contract every generative backend keeps, run over each backend this environment can host.

n completions per request, seeds that reproduce, max_tokens respected, usage reported, typed errors, and a
clean close. Backends that need a real engine (a vLLM server, a local model) are in the ``engine`` tier.
"""

from __future__ import annotations

import gc
import random
import warnings
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import anyio
import httpx
import pytest

from grmjudge import ConfigurationError, GRMJudgeError, InputTooLongError, Judge, JudgeSettings
from grmjudge.backends import Backend, FunctionBackend, OpenAIBackend
from grmjudge.backends.anthropic import AnthropicBackend
from grmjudge.testing.fake_anthropic import FakeAnthropicServer
from grmjudge.testing.fake_openai import FakeOpenAIServer
from grmjudge.types import Completion, Generation, GenerationRequest, Message, Usage

from ..engine.vllm_setup import CPU_ENV, ENGINE_OPTIONS

CONTEXT_WORDS = 1500
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma".split()


@dataclass
class Subject:
    """A backend under test and what its kind promises."""

    backend: Backend
    seeded: bool = True  # a seed reproduces the completions
    over_long_prompt_words: int = 5000  # a prompt this long must be refused with a typed error
    shared: bool = False  # a session-wide instance that this module must not close


def seeded_word_model(request: GenerationRequest) -> Generation:
    """A tiny real 'model': seeded random words, cut at max_tokens, refusing prompts past its context."""
    prompt_words = sum(len(m.content.split()) for m in request.messages)
    if prompt_words + request.max_tokens > CONTEXT_WORDS:
        raise InputTooLongError(
            f"prompt of {prompt_words} words + {request.max_tokens} new exceeds {CONTEXT_WORDS}",
            index=0,
            length=prompt_words,
            max_length=CONTEXT_WORDS,
        )
    completions = []
    for i in range(request.n):
        rng = random.Random(f"{request.seed}-{i}")
        words = [rng.choice(WORDS) for _ in range(rng.randint(20, 60))]
        cut = len(words) > request.max_tokens
        completions.append(
            Completion(text=" ".join(words[: request.max_tokens]), finish_reason="length" if cut else "stop")
        )
    usage = Usage(
        requests=1,
        prompt_tokens=prompt_words,
        completion_tokens=sum(len(c.text.split()) for c in completions),
    )
    return Generation(completions=tuple(completions), usage=usage)


async def function_subject(stack: AsyncExitStack, request: pytest.FixtureRequest) -> Subject:
    return Subject(await stack.enter_async_context(FunctionBackend(seeded_word_model, model="word-model")))


async def openai_asgi_subject(stack: AsyncExitStack, request: pytest.FixtureRequest) -> Subject:
    app = FakeOpenAIServer(max_model_len=CONTEXT_WORDS)
    client = await stack.enter_async_context(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")
    )
    backend = OpenAIBackend("http://fake/v1", "fake-grm", http_client=client)
    return Subject(await stack.enter_async_context(backend))


async def anthropic_asgi_subject(stack: AsyncExitStack, request: pytest.FixtureRequest) -> Subject:
    app = FakeAnthropicServer(max_context_tokens=CONTEXT_WORDS)
    client = await stack.enter_async_context(
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://fake")
    )
    backend = AnthropicBackend("fake-claude", api_key="test-key", base_url="http://fake", http_client=client)
    return Subject(await stack.enter_async_context(backend), seeded=False)


async def openai_vllm_subject(stack: AsyncExitStack, request: pytest.FixtureRequest) -> Subject:
    server = request.getfixturevalue("vllm_server")
    backend = OpenAIBackend(server.base_url, server.model)
    return Subject(await stack.enter_async_context(backend))


async def transformers_subject(stack: AsyncExitStack, request: pytest.FixtureRequest) -> Subject:
    transformers_backend = pytest.importorskip("grmjudge.backends.transformers")
    model_dir: Path = request.getfixturevalue("tiny_model_dir")
    device = request.config.getoption("--device")
    backend = transformers_backend.TransformersBackend(str(model_dir), device=device)
    return Subject(await stack.enter_async_context(backend))


async def vllm_subject(stack: AsyncExitStack, request: pytest.FixtureRequest) -> Subject:
    return Subject(request.getfixturevalue("vllm_engine_backend"), shared=True)


@pytest.fixture(scope="module")
def vllm_engine_backend(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backend]:
    """An in-process vLLM engine (VLLMBackend) on the tiny model, built once for this module."""
    with warnings.catch_warnings():  # importing vLLM imports torch modules that warn about their own deprecations
        warnings.simplefilter("ignore", DeprecationWarning)
        vllm_backend = pytest.importorskip("grmjudge.backends.vllm", reason="VLLMBackend needs vLLM")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**CPU_ENV, "VLLM_CACHE_ROOT": str(tmp_path_factory.mktemp("vllm-cache"))}.items():
            patch.setenv(name, value)
        backend = vllm_backend.VLLMBackend(tiny_model_dir, **ENGINE_OPTIONS)
        yield backend
        anyio.run(backend.aclose)
        del backend
        gc.collect()  # collect the engine now, not in __del__ at interpreter exit when vLLM's globals are gone


SUBJECTS: dict[str, Callable[[AsyncExitStack, pytest.FixtureRequest], object]] = {
    "function": function_subject,
    "openai-asgi": openai_asgi_subject,
    "anthropic-asgi": anthropic_asgi_subject,
    "openai-vllm-server": openai_vllm_subject,
    "transformers": transformers_subject,
    "vllm-engine": vllm_subject,
}
ENGINE = {"openai-vllm-server", "transformers", "vllm-engine"}


@pytest.fixture(params=[pytest.param(name, marks=[pytest.mark.engine] if name in ENGINE else []) for name in SUBJECTS])
async def subject(request: pytest.FixtureRequest) -> AsyncIterator[Subject]:
    async with AsyncExitStack() as stack:
        yield await SUBJECTS[request.param](stack, request)  # type: ignore[misc]


def ask(*, n: int = 1, seed: int | None = 1234, max_tokens: int = 8, words: int = 30) -> GenerationRequest:
    prompt = "Please judge the following responses carefully. " + " ".join(["detail"] * words)
    return GenerationRequest(
        messages=(Message(role="user", content=prompt),), n=n, temperature=0.7, seed=seed, max_tokens=max_tokens
    )


pytestmark = pytest.mark.anyio


async def test_returns_n_completions(subject: Subject) -> None:
    n = 3 if subject.backend.supports_n else 1
    generation = await subject.backend.generate(ask(n=n))
    assert len(generation.completions) == n
    assert all(isinstance(c.text, str) for c in generation.completions)


async def test_the_same_seed_reproduces(subject: Subject) -> None:
    if not subject.seeded:
        pytest.skip("this API has no seed parameter")
    n = 2 if subject.backend.supports_n else 1
    first = await subject.backend.generate(ask(n=n, seed=77))
    again = await subject.backend.generate(ask(n=n, seed=77))
    assert [c.text for c in first.completions] == [c.text for c in again.completions]


async def test_max_tokens_is_respected(subject: Subject) -> None:
    n = 2 if subject.backend.supports_n else 1
    generation = await subject.backend.generate(ask(n=n, max_tokens=4))
    assert all(c.finish_reason in ("stop", "length") for c in generation.completions)
    assert generation.usage.completion_tokens is not None
    assert generation.usage.completion_tokens <= n * 4
    assert any(c.finish_reason == "length" for c in generation.completions), "4 tokens should cut these outputs"


async def test_usage_is_reported(subject: Subject) -> None:
    usage = (await subject.backend.generate(ask())).usage
    assert usage.requests == 1
    assert usage.prompt_tokens is not None and usage.prompt_tokens > 30
    assert usage.completion_tokens is not None and usage.completion_tokens > 0


async def test_an_over_long_prompt_is_a_typed_error(subject: Subject) -> None:
    with pytest.raises(GRMJudgeError):
        await subject.backend.generate(ask(words=subject.over_long_prompt_words))


async def test_a_judge_call_yields_typed_outcomes_for_every_sample(subject: Subject) -> None:
    judge = Judge(subject.backend, settings=JudgeSettings(max_tokens=16, max_resample_rounds=0))
    result = await judge.score("How do I sort a list?", ["Use sorted(xs).", "Call xs.sort()."], k=4)
    assert len(result.samples) == 4
    for sample in result.samples:
        assert (sample.scores is None) != (sample.error is None)
    expected_requests = 2 if subject.backend.supports_n else 4
    assert result.usage.requests == expected_requests


async def test_closed_backend_refuses_requests(subject: Subject) -> None:
    if subject.shared:
        pytest.skip("a session-wide engine is closed at the end of the session")
    await subject.backend.aclose()
    assert subject.backend.closed
    with pytest.raises(ConfigurationError, match="closed"):
        await subject.backend.generate(ask())
