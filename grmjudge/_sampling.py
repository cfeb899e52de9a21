"""Collect k judgements from a backend: one request per distinct response order, then bounded re-asks.

Samples that share a permutation share a prompt, so they go in one request with ``n`` = their count when
the backend supports ``n``; otherwise each is its own request with its own seed. A completion whose text is not
valid Unicode (a lone surrogate, as a server that cuts an emoji in half sends) is an ``invalid_text`` sample:
never parsed, cached or kept, so nothing downstream has to encode it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from grmjudge._inputs import lone_surrogate
from grmjudge._tasks import task_group
from grmjudge.backends.base import Backend
from grmjudge.cache import SampleCache, sample_keys
from grmjudge.exceptions import BackendError
from grmjudge.parsing import ParseFailure, ParseFailureReason, parse_judgement
from grmjudge.prompts import PromptTemplate, judge_messages
from grmjudge.results import Sample, SampleError
from grmjudge.types import Completion, GenerationRequest, Message, Usage
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


async def collect_samples(job: SamplingJob) -> tuple[list[Sample], Usage]:
    """Draw every sample; re-ask parse failures up to ``max_resample_rounds`` times when sampling is random."""
    samples: dict[int, Sample] = {}
    usage = Usage()
    pending = list(range(len(job.permutations)))
    for attempt in range(job.max_resample_rounds + 1):
        drawn, round_usage = await _draw(job, pending, attempt)
        usage += round_usage
        for index, sample in drawn.items():
            earlier = samples.get(index)
            samples[index] = _with_history(sample, earlier)
        pending = [i for i in pending if _is_parse_failure(samples[i])]
        if not pending or job.temperature == 0.0:
            break
    return [samples[i] for i in range(len(job.permutations))], usage


async def _draw(job: SamplingJob, indices: Sequence[int], attempt: int) -> tuple[dict[int, Sample], Usage]:
    drawn: dict[int, Sample] = {}
    usages: list[Usage] = []
    requests: list[tuple[Permutation, tuple[Message, ...], list[int]]] = []
    for perm, positions in group_by_permutation([job.permutations[i] for i in indices]).items():
        slots = [indices[p] for p in positions]
        messages = judge_messages(job.template, job.query, apply_permutation(job.responses, perm))
        if job.backend.supports_n:
            requests.append((perm, messages, slots))
        else:
            requests.extend((perm, messages, [slot]) for slot in slots)
    *others, last = requests
    async with task_group() as tg:
        for perm, messages, slots in others:
            tg.start_soon(_request, job, perm, messages, slots, attempt, drawn, usages)
        await _request(job, *last, attempt, drawn, usages)  # in this task: one task fewer per call
    return drawn, sum(usages, Usage())


async def _request(
    job: SamplingJob,
    perm: Permutation,
    messages: tuple[Message, ...],
    slots: list[int],
    attempt: int,
    drawn: dict[int, Sample],
    usages: list[Usage],
) -> None:
    seed = derive_seed(job.seed, job.item_id, "sample", slots[0], attempt)
    request = GenerationRequest(
        messages=messages,
        n=len(slots),
        temperature=job.temperature,
        top_p=job.top_p,
        max_tokens=job.max_tokens,
        seed=seed,
        extra_body=job.extra_body,
    )
    cache = job.cache
    keys = sample_keys(job.backend.name, job.backend.model, job.template.hash, request) if cache is not None else []
    cached = await cache.get_many(keys) if cache is not None else {}
    if cache is not None and len(cached) == len(keys):
        for slot, key in zip(slots, keys, strict=True):
            drawn[slot] = _judged_sample(job, slot, perm, cached[key], seed, attempt, cached=True)
        return
    try:
        async with job.limiter:
            generation = await job.backend.generate(request)
    except BackendError as exc:
        error = SampleError(kind="backend", reason=type(exc).__name__, message=str(exc))
        for slot in slots:
            drawn[slot] = Sample(index=slot, permutation=perm, error=error, seed=seed, attempt=attempt)
        return
    usages.append(generation.usage)
    if cache is not None:
        pairs = zip(keys, generation.completions, strict=True)
        await cache.put_many({key: c for key, c in pairs if lone_surrogate(c.text) is None})
    for slot, completion in zip(slots, generation.completions, strict=True):
        drawn[slot] = _judged_sample(job, slot, perm, completion, seed, attempt)


def _judged_sample(
    job: SamplingJob,
    slot: int,
    perm: Permutation,
    completion: Completion,
    seed: int,
    attempt: int,
    *,
    cached: bool = False,
) -> Sample:
    common: dict[str, Any] = {
        "index": slot,
        "permutation": perm,
        "text": completion.text,
        "finish_reason": completion.finish_reason,
        "seed": seed,
        "attempt": attempt,
        "cached": cached,
    }
    surrogate = lone_surrogate(completion.text)
    if surrogate is not None:
        message = f"the text has a lone surrogate at position {surrogate}: not valid Unicode, so it was dropped"
        error = SampleError(kind="parse", reason=ParseFailureReason.INVALID_TEXT.value, message=message)
        common["text"] = None
        return Sample(**common, error=error)
    outcome = parse_judgement(
        completion.text, completion.finish_reason, len(perm), job.template.score_range, job.template.parser
    )
    if isinstance(outcome, ParseFailure):
        error = SampleError(kind="parse", reason=outcome.reason.value, message=outcome.detail)
        return Sample(**common, error=error)
    return Sample(**common, scores=to_caller_order(outcome.scores, perm), kept=True)


def _is_parse_failure(sample: Sample) -> bool:
    return sample.error is not None and sample.error.kind == "parse"


def _with_history(sample: Sample, earlier: Sample | None) -> Sample:
    if earlier is None or earlier.error is None:
        return sample
    return sample.model_copy(update={"earlier_errors": (*earlier.earlier_errors, earlier.error)})
