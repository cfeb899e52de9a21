"""Collect k judgements from a backend: one request per distinct response order, then bounded re-asks.

Samples that share a permutation share a prompt, so they go in one request with ``n`` = their count when
the backend supports ``n``; otherwise each is its own request with its own seed. A sample's seed depends on its
slot alone: the j-th sample of an order (in plan order) is choice j of a request seeded by the order's first slot
(servers seed choice i with ``seed + i``), so drawing the plan in rounds, or re-asking some of its samples, asks
for exactly the samples the whole plan at once would. A completion whose text is not
valid Unicode (a lone surrogate, as a server that cuts an emoji in half sends) is an ``invalid_text`` sample:
never parsed, cached or kept, so nothing downstream has to encode it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from grmjudge._inputs import lone_surrogate
from grmjudge._records import validated
from grmjudge._tasks import runtime_task_group
from grmjudge.backends.base import Backend
from grmjudge.cache import SampleCache, sample_keys
from grmjudge.exceptions import BackendError
from grmjudge.parsing import ParseFailure, ParseFailureReason, parse_judgement
from grmjudge.prompts import PromptTemplate, judge_messages
from grmjudge.results import Sample, SampleError
from grmjudge.types import Completion, FinishReason, GenerationRequest, Message, Usage
from grmjudge.voting import Permutation, apply_permutation, derive_seed, group_by_permutation, to_caller_order


@dataclass(frozen=True)
class SamplingJob:
    """Everything needed to draw the samples of one judge call."""

    backend: Backend
    limiter: anyio.Semaphore
    template: PromptTemplate
    query: tuple[Message, ...]
    responses: tuple[str, ...]
    permutations: Sequence[Permutation]
    temperature: float
    top_p: float | None
    max_tokens: int
    extra_body: Mapping[str, Any] | None
    seed: int
    item_id: str
    max_resample_rounds: int
    cache: SampleCache | None = None


async def collect_samples(job: SamplingJob, indices: Sequence[int] | None = None) -> tuple[list[Sample], Usage]:
    """Draw the samples at ``indices`` (every slot by default), in that order; re-ask parse failures.

    Failures are re-asked up to ``max_resample_rounds`` times when sampling is random. It runs on grmjudge's
    own loop (its callers are ``runs_on_runtime``), which lets it spawn its requests on asyncio's task group.
    """
    wanted = list(range(len(job.permutations)) if indices is None else indices)
    slots_of = group_by_permutation(job.permutations)
    samples: dict[int, Sample] = {}
    usage = Usage()
    pending = wanted
    for attempt in range(job.max_resample_rounds + 1):
        drawn, round_usage = await _draw(job, slots_of, pending, attempt)
        usage += round_usage
        for index, sample in drawn.items():
            earlier = samples.get(index)
            samples[index] = _with_history(sample, earlier)
        pending = [i for i in pending if _is_parse_failure(samples[i])]
        if not pending or job.temperature == 0.0:
            break
    return [samples[i] for i in wanted], usage


Request = tuple[Permutation, tuple[Message, ...], list[int], int]
"""An order, its prompt, the slots it draws and the request seed."""


async def _draw(
    job: SamplingJob, slots_of: Mapping[Permutation, list[int]], indices: Sequence[int], attempt: int
) -> tuple[dict[int, Sample], Usage]:
    drawn: dict[int, Sample] = {}
    usages: list[Usage] = []
    requests: list[Request] = []
    for perm, positions in group_by_permutation([job.permutations[i] for i in indices]).items():
        slots = [indices[p] for p in positions]
        messages = judge_messages(job.template, job.query, apply_permutation(job.responses, perm))
        if job.backend.supports_n:
            plan = slots_of[perm]
            base = derive_seed(job.seed, job.item_id, "sample", plan[0], attempt)
            requests.extend((perm, messages, run, base + start) for start, run in _runs(slots, plan))
        else:
            requests.extend(
                (perm, messages, [slot], derive_seed(job.seed, job.item_id, "sample", slot, attempt)) for slot in slots
            )
    *others, last = requests
    if others:
        async with runtime_task_group() as tg:
            for request in others:
                tg.start_soon(_request, job, *request, attempt, drawn, usages)
            await _request(job, *last, attempt, drawn, usages)  # in this task: one task fewer per call
    else:
        await _request(job, *last, attempt, drawn, usages)  # a single request needs no task group
    return drawn, _total(usages)


def _total(usages: list[Usage]) -> Usage:
    """The round's usage: the one request's own when it made one, else the sum."""
    return usages[0] if len(usages) == 1 else sum(usages, Usage())


def _runs(slots: list[int], plan: list[int]) -> list[tuple[int, list[int]]]:
    """``slots`` (ascending, all of one order) cut into runs of consecutive positions in the order's ``plan``."""
    if slots == plan[: len(slots)]:  # a whole call, or its first round: one run from position 0
        return [(0, slots)]
    position = {slot: i for i, slot in enumerate(plan)}
    runs: list[tuple[int, list[int]]] = []
    for slot in slots:
        if runs and position[slot] == runs[-1][0] + len(runs[-1][1]):
            runs[-1][1].append(slot)
        else:
            runs.append((position[slot], [slot]))
    return runs


async def _request(
    job: SamplingJob,
    perm: Permutation,
    messages: tuple[Message, ...],
    slots: list[int],
    seed: int,
    attempt: int,
    drawn: dict[int, Sample],
    usages: list[Usage],
) -> None:
    request = generation_request(job, messages, len(slots), seed)
    cache = job.cache
    keys = sample_keys(job.backend.name, job.backend.model, job.template.hash, request) if cache is not None else []
    cached = await cache.get_many(keys) if cache is not None else {}
    if cache is not None and len(cached) == len(keys):
        for i, (slot, key) in enumerate(zip(slots, keys, strict=True)):
            drawn[slot] = judged_sample(job, slot, perm, cached[key], seed + i, attempt, cached=True)
        return
    try:
        async with job.limiter:
            generation = await job.backend.generate(request)
    except BackendError as exc:
        error = validated(SampleError, kind="backend", reason=type(exc).__name__, message=str(exc))
        for i, slot in enumerate(slots):
            drawn[slot] = validated(Sample, index=slot, permutation=perm, error=error, seed=seed + i, attempt=attempt)
        return
    usages.append(generation.usage)
    if cache is not None:
        pairs = zip(keys, generation.completions, strict=True)
        await cache.put_many({key: c for key, c in pairs if lone_surrogate(c.text) is None})
    for i, (slot, completion) in enumerate(zip(slots, generation.completions, strict=True)):
        drawn[slot] = judged_sample(job, slot, perm, completion, seed + i, attempt)


def generation_request(job: SamplingJob, messages: tuple[Message, ...], n: int, seed: int) -> GenerationRequest:
    """The request for ``n`` samples of one prompt."""
    return validated(
        GenerationRequest,
        messages=messages,
        n=n,
        temperature=job.temperature,
        top_p=job.top_p,
        max_tokens=job.max_tokens,
        seed=seed,
        extra_body=job.extra_body,
    )


def judged_sample(
    job: SamplingJob,
    slot: int,
    perm: Permutation,
    completion: Completion,
    seed: int,
    attempt: int,
    *,
    cached: bool = False,
) -> Sample:
    """One completion as a sample: parsed, its scores put back in the caller's order, or why it cast no vote."""
    text, finish_reason = completion.text, completion.finish_reason
    surrogate = lone_surrogate(text)
    if surrogate is not None:
        message = f"the text has a lone surrogate at position {surrogate}: not valid Unicode, so it was dropped"
        error = validated(SampleError, kind="parse", reason=ParseFailureReason.INVALID_TEXT.value, message=message)
        return _sample(slot, perm, None, finish_reason, seed, attempt, cached, error=error)
    template = job.template
    outcome = parse_judgement(text, finish_reason, len(perm), template.score_range, template.parser)
    if isinstance(outcome, ParseFailure):
        error = validated(SampleError, kind="parse", reason=outcome.reason.value, message=outcome.detail)
        return _sample(slot, perm, text, finish_reason, seed, attempt, cached, error=error)
    scores = to_caller_order(outcome.scores, perm)
    return _sample(slot, perm, text, finish_reason, seed, attempt, cached, scores=scores, kept=True)


def _sample(
    slot: int,
    perm: Permutation,
    text: str | None,
    finish_reason: FinishReason,
    seed: int,
    attempt: int,
    cached: bool,
    **outcome: Any,
) -> Sample:
    """The sample's record (``Sample(...)`` through ``validated``)."""
    return validated(
        Sample,
        index=slot,
        permutation=perm,
        text=text,
        finish_reason=finish_reason,
        seed=seed,
        attempt=attempt,
        cached=cached,
        **outcome,
    )


def _is_parse_failure(sample: Sample) -> bool:
    return sample.error is not None and sample.error.kind == "parse"


def _with_history(sample: Sample, earlier: Sample | None) -> Sample:
    if earlier is None or earlier.error is None:
        return sample
    return sample.model_copy(update={"earlier_errors": (*earlier.earlier_errors, earlier.error)})
