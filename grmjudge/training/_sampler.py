"""Draw labelled judgements of training items from any grmjudge backend (a server, an API, a local model).

Non-hinted samples go through the judge's own request machinery (`grmjudge._sampling.collect_samples`):
one request per distinct response order, ``n`` where the backend supports it, a seed per sample derived from
(seed, purpose, item id, sample index), and no re-asking (a parse failure is a rejected sample here, not a
reason to retry). The hinted sample (RFT only) is one request whose prompt ends with the hint suffix.
Every judgement is checked with the strict rule of `grmjudge.training.rewards`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import anyio

from grmjudge._runtime import runs_on_runtime
from grmjudge._sampling import SamplingJob, collect_samples
from grmjudge.backends import backend_from_spec
from grmjudge.backends.base import Backend
from grmjudge.exceptions import BackendError, ConfigurationError
from grmjudge.prompts import DEFAULT_TEMPLATE, SINGLE_RESPONSE_TEMPLATE, PromptTemplate, judge_messages
from grmjudge.results import Sample
from grmjudge.settings import ShuffleMode
from grmjudge.training.config import resolve_template
from grmjudge.training.data import SPCTExample
from grmjudge.training.rewards import Verdict, judge_text, verdict
from grmjudge.types import GenerationRequest, Usage
from grmjudge.voting import Permutation, apply_permutation, derive_seed, plan_permutations


@dataclass(frozen=True)
class Judgement:
    """One sampled judgement of an item and its verdict.

    ``permutation[m]`` is the index of the response shown as "Response m+1"; ``scores`` are in the item's
    order. ``failure`` is a parse-failure reason; ``backend_error`` the error class when no text came back.
    """

    hinted: bool
    permutation: Permutation
    text: str | None
    finish_reason: str | None
    scores: tuple[int, ...] | None
    failure: str | None
    backend_error: str | None
    correct: bool
    tie: bool

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (the inverse of `from_record`)."""
        record = asdict(self)
        record["permutation"] = list(self.permutation)
        record["scores"] = None if self.scores is None else list(self.scores)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Judgement:
        """Read back a dict written by `to_record`."""
        scores = record.get("scores")
        return cls(
            hinted=bool(record["hinted"]),
            permutation=tuple(record["permutation"]),
            text=record.get("text"),
            finish_reason=record.get("finish_reason"),
            scores=None if scores is None else tuple(scores),
            failure=record.get("failure"),
            backend_error=record.get("backend_error"),
            correct=bool(record["correct"]),
            tie=bool(record.get("tie", False)),
        )


class JudgementSampler:
    """Samples judgements of `SPCTExample`s at a fixed temperature, at most ``max_concurrent_requests`` at a time.

    Items with n >= 2 use ``template``; single responses use ``single_template`` (the 0/1 training template).
    """

    def __init__(
        self,
        backend: Backend,
        *,
        template: PromptTemplate = DEFAULT_TEMPLATE,
        single_template: PromptTemplate = SINGLE_RESPONSE_TEMPLATE,
        temperature: float = 1.0,
        top_p: float | None = None,
        max_tokens: int = 4096,
        seed: int = 0,
        max_concurrent_requests: int = 64,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if max_concurrent_requests < 1:
            raise ConfigurationError("max_concurrent_requests must be at least 1")
        if temperature <= 0:
            raise ConfigurationError("sampling for training needs temperature > 0 (identical samples teach nothing)")
        single_template.check_response_count(1)
        self.backend = backend
        self.template = template
        self.single_template = single_template
        self.temperature = temperature
        self.top_p = top_p
        self.max_tokens = max_tokens
        self.seed = seed
        self.max_concurrent_requests = max_concurrent_requests
        self.extra_body = extra_body
        self.usage = Usage()
        self._limiter: anyio.Semaphore | None = None

    def template_for(self, example: SPCTExample) -> PromptTemplate:
        """The template an item is rendered with: the 0/1 template for one response, else the main one."""
        return self.single_template if example.n == 1 else self.template

    @runs_on_runtime
    async def draw(self, example: SPCTExample, k: int, purpose: str) -> list[Judgement]:
        """``k`` non-hinted judgements, each with its own random response order."""
        rng = random.Random(derive_seed(self.seed, purpose, example.id, "order"))
        permutations = plan_permutations(example.n, k, ShuffleMode.RANDOM, rng)
        job = SamplingJob(
            backend=self.backend,
            limiter=self._requests_limiter(),
            template=self.template_for(example),
            query=example.query,
            responses=example.responses,
            permutations=permutations,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            extra_body=self.extra_body,
            seed=self.seed,
            item_id=f"{purpose}:{example.id}",
            max_resample_rounds=0,
        )
        samples, usage = await collect_samples(job)
        self.usage += usage
        return [_from_sample(sample, example) for sample in samples]

    @runs_on_runtime
    async def draw_hinted(self, example: SPCTExample, purpose: str) -> Judgement:
        """One judgement whose prompt ends with "The best response is: Response j" (j as shown; n >= 2 only)."""
        if example.best is None:
            raise ConfigurationError("a hinted sample needs a best response (n >= 2)")
        rng = random.Random(derive_seed(self.seed, purpose, example.id, "hint-order"))
        perm = plan_permutations(example.n, 1, ShuffleMode.RANDOM, rng)[0]
        template = self.template_for(example)
        shown = apply_permutation(example.responses, perm)
        request = GenerationRequest(
            messages=judge_messages(template, example.query, shown, hint_best=perm.index(example.best)),
            n=1,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=derive_seed(self.seed, purpose, example.id, "hint"),
            extra_body=self.extra_body,
        )
        try:
            async with self._requests_limiter():
                generation = await self.backend.generate(request)
        except BackendError as exc:
            return _judgement(True, perm, None, None, verdict(None, example.label), type(exc).__name__)
        self.usage += generation.usage
        completion = generation.completions[0]
        checked = judge_text(completion.text, example.label, perm, template, finish_reason=completion.finish_reason)
        return _judgement(True, perm, completion.text, completion.finish_reason, checked, None)

    def _requests_limiter(self) -> anyio.Semaphore:
        """One bound on requests in flight across every draw (they all run on grmjudge's event loop)."""
        if self._limiter is None:
            self._limiter = anyio.Semaphore(self.max_concurrent_requests, fast_acquire=True)
        return self._limiter


def _from_sample(sample: Sample, example: SPCTExample) -> Judgement:
    error = sample.error
    if error is not None and error.kind == "backend":
        return _judgement(False, sample.permutation, None, None, verdict(None, example.label), error.reason)
    checked = verdict(sample.scores, example.label, failure=error.reason if error is not None else None)
    return _judgement(False, sample.permutation, sample.text, sample.finish_reason, checked, None)


def _judgement(
    hinted: bool,
    permutation: Permutation,
    text: str | None,
    finish_reason: str | None,
    checked: Verdict,
    backend_error: str | None,
) -> Judgement:
    return Judgement(
        hinted=hinted,
        permutation=tuple(permutation),
        text=text,
        finish_reason=finish_reason,
        scores=checked.scores,
        failure=checked.failure,
        backend_error=backend_error,
        correct=checked.correct,
        tie=checked.tie,
    )


def sampler_backend(spec: str, base_url: str | None) -> Backend:
    """The backend a ``--sampler`` spec names (``base_url`` for ``openai:`` specs)."""
    return backend_from_spec(spec, **({"base_url": base_url} if base_url is not None else {}))


class SamplingFields(Protocol):
    """The sampling options the sampling commands share."""

    template: str
    single_template: str
    temperature: float
    top_p: float | None
    max_tokens: int
    seed: int
    max_concurrent_requests: int


def sampler_from_config(backend: Backend, config: SamplingFields) -> JudgementSampler:
    """A [`JudgementSampler`][grmjudge.training._sampler.JudgementSampler] set up from a command's options."""
    return JudgementSampler(
        backend,
        template=resolve_template(config.template),
        single_template=resolve_template(config.single_template),
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=config.max_tokens,
        seed=config.seed,
        max_concurrent_requests=config.max_concurrent_requests,
    )
