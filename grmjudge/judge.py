"""Judge: sample k judgements with shuffled response orders, optionally keep the best by a meta RM, and sum.

How a call flows: validate the input -> plan one permutation per sample (seeded) -> ask the backend, one
request per distinct order (``grmjudge._sampling``) -> parse each text ([`grmjudge.parsing`][grmjudge.parsing])
-> meta-score the valid samples and keep the top k_meta (optional) -> sum the kept votes
([`grmjudge.voting`][grmjudge.voting]) -> a [`ScoreResult`][grmjudge.results.ScoreResult] with provenance.
An adaptive call draws the same plan in rounds and stops once the leader is settled
([`grmjudge.adaptive`][grmjudge.adaptive]).
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

import anyio

from grmjudge._batch import BatchItem, ItemScorer, JudgeItem, run_batch, stream_batch
from grmjudge._facade import JudgeFacade
from grmjudge._inputs import check_item_id, check_k, content_id, validate_input
from grmjudge._records import validated
from grmjudge._runtime import ReceiveStream, runs_on_runtime, stream_on_runtime
from grmjudge._sampling import SamplingJob, collect_samples
from grmjudge._version import __version__
from grmjudge.adaptive import AdaptivePlan, AdaptivePolicy
from grmjudge.backends import backend_from_spec
from grmjudge.backends.base import Backend
from grmjudge.backends.limits import RetryBudget, current_retry_budget
from grmjudge.cache import SampleCache
from grmjudge.exceptions import ConfigurationError, NoVerdictError
from grmjudge.meta import MetaInput, MetaScorer
from grmjudge.prompts import MarkerCount, Query, count_markers
from grmjudge.results import AdaptiveProvenance, BatchResult, NoVerdict, Provenance, Sample, ScoreResult
from grmjudge.settings import JudgeSettings
from grmjudge.types import Message, Usage
from grmjudge.voting import (
    Permutation,
    apply_permutation,
    default_k_meta,
    derive_seed,
    pick_best,
    plan_permutations,
    select_by_meta,
    sum_votes,
    vote_spread,
)


class Judge(JudgeFacade):
    """A generative reward model judge over any [`Backend`][grmjudge.backends.Backend].

    ``meta`` is an optional [`MetaScorer`][grmjudge.meta.MetaScorer] used by ``score(..., meta=True)``.
    ``max_concurrent_requests`` bounds the backend requests in flight across all calls of this judge.
    ``cache`` (e.g. [`SQLiteCache`][grmjudge.cache.SQLiteCache]) serves samples already generated, so a
    re-run makes no request it made before.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        meta: MetaScorer | None = None,
        settings: JudgeSettings | None = None,
        max_concurrent_requests: int = 64,
        cache: SampleCache | None = None,
    ) -> None:
        if max_concurrent_requests < 1:
            raise ConfigurationError("max_concurrent_requests must be at least 1")
        self.backend = backend
        self.meta = meta
        self.settings = settings or JudgeSettings()
        self.max_concurrent_requests = max_concurrent_requests
        self.cache = cache
        self._limiter: anyio.Semaphore | None = None

    def __repr__(self) -> str:
        return f"Judge(backend={self.backend!r}, meta={self.meta!r})"

    @classmethod
    def from_spec(
        cls,
        spec: str,
        *,
        meta: MetaScorer | None = None,
        settings: JudgeSettings | None = None,
        max_concurrent_requests: int = 64,
        **backend_options: Any,
    ) -> Judge:
        """A judge on the backend a ``"kind:model"`` string names; other keywords go to the backend.

        Kinds: ``openai`` (needs ``base_url=``), ``anthropic``, ``hf``, ``vllm``, and any kind registered in
        the ``grmjudge.backends`` entry-point group. A missing extra raises
        [`MissingDependencyError`][grmjudge.exceptions.MissingDependencyError] with the ``pip install`` hint.
        """
        backend = backend_from_spec(spec, **backend_options)
        return cls(backend, meta=meta, settings=settings, max_concurrent_requests=max_concurrent_requests)

    def with_settings(self, **overrides: Any) -> Judge:
        """A judge on the same backend and meta scorer with some settings replaced."""
        settings = JudgeSettings.model_validate({**self.settings.model_dump(), **overrides})
        return Judge(
            self.backend,
            meta=self.meta,
            settings=settings,
            max_concurrent_requests=self.max_concurrent_requests,
            cache=self.cache,
        )

    @runs_on_runtime
    async def score(
        self,
        query: Query,
        responses: Sequence[str],
        k: int = 1,
        meta: bool = False,
        *,
        adaptive: bool | AdaptivePolicy = False,
        item_id: str | None = None,
        settings: JudgeSettings | None = None,
    ) -> ScoreResult:
        """Judge ``responses`` to ``query`` with ``k`` shuffled samples and return summed votes.

        ``meta=True`` keeps only the top ``k_meta`` samples (default ``max(1, k // 2)``) by the meta scorer.
        ``adaptive=True`` (or an [`AdaptivePolicy`][grmjudge.adaptive.AdaptivePolicy]) makes ``k`` a maximum:
        samples are drawn in rounds and drawing stops once the leader is settled (``provenance.adaptive``).
        ``item_id`` seeds the shuffles and samples; by default it is a hash of the query and responses,
        so the same input always gets the same orders and seeds. ``k`` is at most ``settings.max_k``.
        Bad input raises [`InvalidInputError`][grmjudge.exceptions.InvalidInputError] before anything is sent.
        """
        s = settings or self.settings
        check_k(k, s.max_k)
        policy = adaptive_policy(adaptive)
        messages, texts = validate_input(query, responses)
        s.template.check_response_count(len(texts))
        self._check_meta(meta)
        given_id = check_item_id(item_id)
        item = given_id if given_id is not None else content_id(messages, texts)
        permutations = plan_permutations(len(texts), k, s.shuffle, random.Random(derive_seed(s.seed, item, "order")))
        k_meta = (s.k_meta or default_k_meta(k)) if meta else None
        job = self._job(s, k, messages, texts, permutations, item)
        budget = RetryBudget(s.retry_budget_per_item) if s.retry_budget_per_item is not None else None
        budget_token = current_retry_budget.set(budget)
        record: AdaptiveProvenance | None = None
        try:
            if policy is None:
                samples, usage = await collect_samples(job)
            else:
                plan = AdaptivePlan(policy, k, len(texts), s.shuffle, k_meta)
                samples, usage, record = await self._draw_adaptive(job, plan)
        finally:
            current_retry_budget.reset(budget_token)
        if record is None:
            samples = await self._mark_kept(samples, messages, texts, k_meta)
        result = _tally(samples, len(texts), lambda: random.Random(derive_seed(s.seed, item, "tie")))
        provenance = self._provenance(s, k, meta, k_meta, item, count_markers(messages, texts))
        if record is not None:
            provenance = provenance.model_copy(update={"adaptive": record})
        final = validated(ScoreResult, **result, samples=samples, usage=usage, provenance=provenance)
        if final.no_verdict is not None and s.raise_on_no_verdict:
            raise NoVerdictError(final.no_verdict)
        return final

    @runs_on_runtime
    async def score_many(
        self,
        items: Iterable[BatchItem],
        k: int = 1,
        meta: bool = False,
        *,
        adaptive: bool | AdaptivePolicy = False,
        concurrency: int = 16,
        settings: JudgeSettings | None = None,
    ) -> list[BatchResult]:
        """Judge many items, at most ``concurrency`` at a time, and return the results in input order.

        Items are `JudgeItem`s, mappings with ``query``, ``responses`` and optional ``id``, or
        ``(query, responses)`` pairs. An item that is malformed or raises (bad input, a meta scorer failure) is
        recorded as that item's ``error``; the rest of the batch goes on. Items without an id get their position
        as id. Arguments that would fail every item (``k``, ``meta``, ``concurrency``) raise once, up front.
        """
        return await run_batch(items, self._item_scorer(k, meta, adaptive, settings), concurrency=concurrency)

    def stream(
        self,
        items: Iterable[BatchItem],
        k: int = 1,
        meta: bool = False,
        *,
        adaptive: bool | AdaptivePolicy = False,
        concurrency: int = 16,
        settings: JudgeSettings | None = None,
    ) -> AbstractAsyncContextManager[ReceiveStream[BatchResult]]:
        """Judge items as they are read and receive the results in completion order; memory stays flat.

        ``async with judge.stream(items, k=8) as results: async for r in results: ...``. ``items`` is read
        lazily (a generator over a huge file is fine); ``BatchResult.index`` gives each item's position.
        """
        score_item = self._item_scorer(k, meta, adaptive, settings)
        return stream_on_runtime(lambda: stream_batch(items, score_item, concurrency=concurrency))

    def _item_scorer(
        self, k: int, meta: bool, adaptive: bool | AdaptivePolicy, settings: JudgeSettings | None
    ) -> ItemScorer:
        check_k(k, (settings or self.settings).max_k)
        adaptive_policy(adaptive)
        self._check_meta(meta)

        async def score_item(item: JudgeItem, item_id: str) -> ScoreResult:
            return await self.score(
                item.query, item.responses, k, meta, adaptive=adaptive, item_id=item_id, settings=settings
            )

        return score_item

    def _check_meta(self, meta: bool) -> None:
        if meta and self.meta is None:
            raise ConfigurationError("meta=True needs a meta scorer: Judge(backend, meta=...)")

    async def aclose(self) -> None:
        """Close the backend, the meta scorer and the cache."""
        await self.backend.aclose()
        if self.meta is not None:
            await self.meta.aclose()
        if self.cache is not None:
            await self.cache.aclose()
        await super().aclose()

    def _requests_limiter(self) -> anyio.Semaphore:
        """The bound on backend requests in flight across all calls (made on the runtime's loop, on first use)."""
        if self._limiter is None:
            self._limiter = anyio.Semaphore(self.max_concurrent_requests, fast_acquire=True)
        return self._limiter

    def _job(
        self,
        s: JudgeSettings,
        k: int,
        messages: tuple[Message, ...],
        texts: tuple[str, ...],
        permutations: list[Permutation],
        item_id: str,
    ) -> SamplingJob:
        return SamplingJob(
            backend=self.backend,
            limiter=self._requests_limiter(),
            template=s.template,
            query=messages,
            responses=texts,
            permutations=permutations,
            temperature=s.temperature_for(k),
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            extra_body=s.extra_body,
            seed=s.seed,
            item_id=item_id,
            max_resample_rounds=s.max_resample_rounds,
            cache=self.cache,
        )

    async def _draw_adaptive(
        self, job: SamplingJob, plan: AdaptivePlan
    ) -> tuple[list[Sample], Usage, AdaptiveProvenance]:
        """Draw round by round (re-asks within the round) until the plan's rule settles or k samples are in."""
        samples: list[Sample] = []
        usage = Usage()
        valid: dict[int, tuple[int, ...]] = {}
        rated: dict[int, float] | None = None if plan.k_meta is None else {}
        start, rounds, settled, kept = 0, 0, False, list[int]()
        for end in plan.ends:
            drawn, round_usage = await collect_samples(job, range(start, end))
            samples += drawn
            usage += round_usage
            fresh = [s for s in drawn if s.scores is not None]
            valid.update((s.index, s.scores) for s in fresh if s.scores is not None)
            if rated is not None:
                rated.update(await self._rate(fresh, job.query, job.responses))
            start, rounds = end, rounds + 1
            assessment = plan.assess(end, valid, rated)
            kept, settled = assessment.kept, assessment.settled
            if settled:
                break
        if rated is not None:
            samples = _marked(samples, rated, set(kept))
        record = AdaptiveProvenance(
            policy=plan.policy, samples=start, rounds=rounds, stop="settled" if settled else "k_reached"
        )
        return samples, usage, record

    async def _rate(
        self, valid: list[Sample], query: tuple[Message, ...], responses: tuple[str, ...]
    ) -> dict[int, float]:
        """The meta scores of ``valid`` samples, by sample index."""
        if self.meta is None:
            return {}
        return await rate_samples(self.meta, valid, query, responses)

    async def _mark_kept(
        self, samples: list[Sample], query: tuple[Message, ...], responses: tuple[str, ...], k_meta: int | None
    ) -> list[Sample]:
        """Without meta every valid sample is kept (as drawn); with meta only the top ``k_meta`` valid ones."""
        if k_meta is None or self.meta is None:
            return samples
        return await keep_by_meta(self.meta, samples, query, responses, k_meta)

    def _provenance(
        self, s: JudgeSettings, k: int, meta: bool, k_meta: int | None, item_id: str, markers: MarkerCount
    ) -> Provenance:
        return validated(
            Provenance,
            grmjudge_version=__version__,
            backend=self.backend.name,
            model=self.backend.model,
            template_id=s.template.id,
            template_hash=s.template.hash,
            k=k,
            meta=meta,
            k_meta=k_meta,
            shuffle=s.shuffle.value,
            seed=s.seed,
            item_id=item_id,
            temperature=s.temperature_for(k),
            top_p=s.top_p,
            max_tokens=s.max_tokens,
            max_resample_rounds=s.max_resample_rounds,
            markers_neutralised=markers.total,
            marked_responses=markers.responses,
        )


async def rate_samples(
    meta: MetaScorer, valid: list[Sample], query: tuple[Message, ...], responses: tuple[str, ...]
) -> dict[int, float]:
    """The meta scores of ``valid`` samples, by sample index; each judgement is rated with its own shown order."""
    if not valid:
        return {}
    inputs = [
        MetaInput(query=query, responses=tuple(apply_permutation(responses, s.permutation)), judgement=s.text or "")
        for s in valid
    ]
    meta_scores = await meta.score(inputs)
    if len(meta_scores) != len(inputs):
        raise ConfigurationError(f"meta scorer returned {len(meta_scores)} scores for {len(inputs)} judgements")
    return {s.index: score for s, score in zip(valid, meta_scores, strict=True)}


async def keep_by_meta(
    meta: MetaScorer, samples: list[Sample], query: tuple[Message, ...], responses: tuple[str, ...], k_meta: int
) -> list[Sample]:
    """``samples`` with the valid ones rated by ``meta`` and only the top ``k_meta`` of them kept."""
    by_index = await rate_samples(meta, [s for s in samples if s.valid], query, responses)
    if not by_index:
        return samples
    return _marked(samples, by_index, set(select_by_meta(by_index, k_meta)))


async def apply_meta(
    result: ScoreResult, meta: MetaScorer, query: tuple[Message, ...], responses: tuple[str, ...], k_meta: int
) -> ScoreResult:
    """The result ``score(..., meta=True)`` gives, from the result of the same call with ``meta=False``.

    The meta RM can then run apart from the GRM (on other machines, as a later stage of a pipeline): the
    samples, the tie-break seed and the provenance come out as the one-call path makes them.
    """
    samples = await keep_by_meta(meta, list(result.samples), query, responses, k_meta)
    p = result.provenance
    tally = _tally(samples, len(responses), lambda: random.Random(derive_seed(p.seed, p.item_id, "tie")))
    provenance = p.model_copy(update={"meta": True, "k_meta": k_meta})
    return validated(ScoreResult, **tally, samples=samples, usage=result.usage, provenance=provenance)


def adaptive_policy(adaptive: bool | AdaptivePolicy) -> AdaptivePolicy | None:
    """The policy an ``adaptive=`` argument asks for: ``True`` is the default policy, ``False`` none."""
    if isinstance(adaptive, AdaptivePolicy):
        return adaptive
    if isinstance(adaptive, bool):  # pyright: ignore[reportUnnecessaryIsInstance]
        return AdaptivePolicy() if adaptive else None
    raise ConfigurationError(f"adaptive must be a bool or an AdaptivePolicy, got {adaptive!r}")


def _marked(samples: list[Sample], meta_scores: dict[int, float], kept: set[int]) -> list[Sample]:
    """Valid samples with their meta score and whether the meta RM kept them."""
    return [
        s.model_copy(update={"meta_score": meta_scores[s.index], "kept": s.index in kept}) if s.valid else s
        for s in samples
    ]


def _tally(samples: list[Sample], n: int, tie_rng: Callable[[], random.Random]) -> dict[str, Any]:
    """The vote; ``tie_rng`` makes the seeded draw that breaks a tie at the top, only when there is one."""
    votes = [s.scores for s in samples if s.kept and s.scores is not None]
    n_valid = sum(1 for s in samples if s.valid)
    if not votes:
        failures = Counter(s.error.reason for s in samples if s.error is not None)
        return {
            "scores": None,
            "best": None,
            "n_valid": n_valid,
            "n_kept": 0,
            "spread": None,
            "no_verdict": validated(NoVerdict, failures=dict(failures)),
        }
    totals = sum_votes(votes, n)
    top = max(totals)
    return {
        "scores": totals,
        "best": totals.index(top) if totals.count(top) == 1 else pick_best(totals, tie_rng()),
        "n_valid": n_valid,
        "n_kept": len(votes),
        "spread": vote_spread(votes, n),
        "no_verdict": None,
    }
