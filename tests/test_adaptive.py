"""Adaptive k: the stopping rule on scripted backends, and that an adaptive call is a prefix of the fixed-k call."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest

from grmjudge import (
    AdaptivePolicy,
    ConfigurationError,
    FunctionMetaScorer,
    Judge,
    JudgeSettings,
    MetaInput,
    MetaScorer,
    ScoreResult,
    ShuffleMode,
)
from grmjudge.adaptive import AdaptivePlan, leader_settled
from grmjudge.backends import FunctionBackend
from grmjudge.types import GenerationRequest

from .judges import judgement, shown_responses

QUERY = "Which answer is right?"
GOOD, BAD, OTHER = "good answer", "bad answer", "other answer"

Scorer = Callable[[str, int], int]
"""(response text, choice seed) -> that response's score in the choice."""


class Scripted:
    """A backend function: choice i of a request is seeded by ``request.seed + i``, as vLLM seeds it."""

    def __init__(self, score: Scorer, broken: Callable[[int], bool] = lambda seed: False) -> None:
        self.score = score
        self.broken = broken
        self.requests: list[GenerationRequest] = []

    def __call__(self, request: GenerationRequest) -> list[str]:
        self.requests.append(request)
        assert request.seed is not None
        texts: list[str] = []
        for i in range(request.n):
            seed = request.seed + i
            shown = shown_responses(request)
            texts.append("no verdict" if self.broken(seed) else judgement([self.score(t, seed) for t in shown]))
        return texts


def unanimous(text: str, seed: int) -> int:
    return 9 if text == GOOD else 3


def even_split(text: str, seed: int) -> int:
    """Consecutive choice seeds alternate the favourite, so every request of two splits the vote evenly."""
    favourite = GOOD if seed % 2 == 0 else BAD
    return 9 if text == favourite else 4


def noisy(text: str, seed: int) -> int:
    """GOOD usually wins, by a margin that varies with the seed."""
    rng = random.Random(f"{seed}:{text}")
    return rng.randint(5, 10) if text == GOOD else rng.randint(1, 8)


async def score(
    backend: Scripted,
    k: int = 16,
    *,
    meta: bool = False,
    adaptive: bool | AdaptivePolicy = False,
    meta_scorer: MetaScorer | None = None,
    settings: JudgeSettings | None = None,
) -> ScoreResult:
    judge = Judge(FunctionBackend(backend), meta=meta_scorer, settings=settings)
    return await judge.score(QUERY, [GOOD, BAD], k=k, meta=meta, adaptive=adaptive)


@pytest.mark.anyio
async def test_unanimous_samples_stop_after_the_first_round() -> None:
    backend = Scripted(unanimous)
    result = await score(backend, adaptive=True)
    record = result.provenance.adaptive
    assert record is not None and (record.samples, record.rounds, record.stop) == (4, 1, "settled")
    assert len(result.samples) == result.n_kept == 4
    assert result.scores == [36.0, 12.0] and result.best == 0
    assert result.provenance.k == 16
    # the round is whole blocks of the balanced shuffle: two orders, one request each with n = 2
    assert sorted(r.n for r in backend.requests) == [2, 2]


@pytest.mark.anyio
async def test_a_split_vote_runs_to_k() -> None:
    result = await score(Scripted(even_split), adaptive=True)
    record = result.provenance.adaptive
    assert record is not None and (record.samples, record.rounds, record.stop) == (16, 4, "k_reached")
    assert result.scores == [104.0, 104.0]


@pytest.mark.anyio
async def test_a_tie_at_the_top_never_stops() -> None:
    result = await score(Scripted(lambda text, seed: 7), adaptive=True)
    record = result.provenance.adaptive
    assert record is not None and (record.samples, record.stop) == (16, "k_reached")


@pytest.mark.anyio
async def test_k_is_the_maximum_and_rounds_are_whole_blocks() -> None:
    backend = Scripted(lambda text, seed: 7)  # a tie: never settled
    judge = Judge(FunctionBackend(backend))
    policy = AdaptivePolicy(first_round=2, round_size=5)
    result = await judge.score(QUERY, [GOOD, BAD, OTHER], k=10, adaptive=policy)
    record = result.provenance.adaptive
    assert record is not None and record.samples == 10 and record.rounds == 3  # 3, then 6 (capped at 10): 3, 9, 10
    assert AdaptivePlan(policy, 10, 3, ShuffleMode.BALANCED).ends == [3, 9, 10]
    assert AdaptivePlan(policy, 10, 3, ShuffleMode.RANDOM).ends == [2, 7, 10]


@pytest.mark.anyio
async def test_an_adaptive_call_draws_a_prefix_of_the_fixed_k_call_with_re_asks() -> None:
    broken = lambda seed: seed % 3 == 0  # noqa: E731  (first attempts and re-asks both fail sometimes)
    settings = JudgeSettings(max_resample_rounds=2, seed=5)
    fixed = await score(Scripted(noisy, broken), settings=settings)
    adaptive = await score(Scripted(noisy, broken), settings=settings, adaptive=True)
    again = await score(Scripted(noisy, broken), settings=settings, adaptive=True)
    record = adaptive.provenance.adaptive
    assert record is not None and 4 < record.samples < 16  # a real stop, after the first round
    assert any(s.attempt > 0 for s in fixed.samples[4 : record.samples])  # and re-asks in a later round
    assert adaptive.samples == fixed.samples[: record.samples]
    assert again == adaptive


@pytest.mark.anyio
async def test_parse_failures_do_not_count_towards_min_samples() -> None:
    # one choice of every request of two fails (choice seeds alternate parity), and is not re-asked
    broken = lambda seed: seed % 2 == 0  # noqa: E731
    settings = JudgeSettings(max_resample_rounds=0)
    result = await score(Scripted(unanimous, broken), settings=settings, adaptive=AdaptivePolicy(min_samples=4))
    record = result.provenance.adaptive
    assert record is not None and record.samples == 8 and record.rounds == 2
    assert result.n_valid == 4 and len(result.samples) == 8


@pytest.mark.anyio
async def test_with_meta_the_decision_is_on_the_kept_votes() -> None:
    def rate(inputs: list[MetaInput]) -> list[float]:
        # the meta RM trusts judgements that favour GOOD
        return [1.0 if _favours_good(i) else 0.0 for i in inputs]

    meta = FunctionMetaScorer(rate)
    plain = await score(Scripted(even_split), adaptive=True, meta_scorer=meta)
    assert plain.provenance.adaptive is not None and plain.provenance.adaptive.samples == 16
    kept = await score(Scripted(even_split), adaptive=True, meta=True, meta_scorer=meta)
    record = kept.provenance.adaptive
    assert record is not None and (record.samples, record.stop) == (4, "settled")
    assert kept.n_kept == 2 and all(s.scores == (9, 4) for s in kept.samples if s.kept)
    assert all(s.meta_score is not None for s in kept.samples)
    assert kept.best == 0 and kept.provenance.k_meta == 8


def _favours_good(item: MetaInput) -> bool:
    scores = item.judgement.rsplit("{", 1)[1].rstrip("}").split(", ")
    return scores[list(item.responses).index(GOOD)] == "9"


def test_leader_settled_refuses_ties_and_single_responses() -> None:
    assert not leader_settled([(7, 7)] * 8, 16, 2.0, 1.0)
    assert not leader_settled([(9, 3, 9)] * 8, 16, 2.0, 1.0)
    assert not leader_settled([(9,)] * 8, 16, 2.0, 1.0)
    assert leader_settled([(9, 3, 8)] * 8, 16, 2.0, 1.0)
    assert leader_settled([(5, 4), (4, 5), (5, 4)], 3, 2.0, 1.0)  # all votes in: any strict lead is final


def test_leader_settled_needs_more_evidence_for_a_narrow_noisy_margin() -> None:
    wide = [(9, 3), (8, 4), (9, 2), (9, 4)]
    narrow = [(9, 3), (3, 9), (9, 3), (4, 8)]
    assert leader_settled(wide, 16, 2.0, 1.0)
    assert not leader_settled(narrow, 16, 2.0, 1.0)
    # the standard deviation floor: one identical margin of 1 is not enough with a large floor
    assert leader_settled([(6, 5)] * 4, 16, 2.0, 1.0)
    assert not leader_settled([(6, 5)] * 4, 16, 2.0, 3.0)


def test_more_confidence_means_a_larger_critical_value() -> None:
    low = AdaptivePlan(AdaptivePolicy(confidence=0.8), 16, 2, ShuffleMode.BALANCED).critical_value
    high = AdaptivePlan(AdaptivePolicy(confidence=0.99), 16, 2, ShuffleMode.BALANCED).critical_value
    more_rivals = AdaptivePlan(AdaptivePolicy(confidence=0.8), 16, 4, ShuffleMode.BALANCED).critical_value
    assert low < high and low < more_rivals


@pytest.mark.anyio
async def test_bad_adaptive_arguments_raise_before_anything_is_sent() -> None:
    backend = Scripted(unanimous)
    with pytest.raises(ConfigurationError, match="adaptive"):
        await score(backend, adaptive="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="first_round"):
        AdaptivePolicy(first_round=0)
    assert backend.requests == []
