"""Scaling curves from one sampling pass: Voting@k and MetaRM@k for every k <= K from subsets of K samples.

Each call is sampled once with K samples. For a smaller k, ``draws`` random k-subsets of those samples are
voted on ([`sum_votes`][grmjudge.voting.sum_votes]; with the meta RM, [`select_by_meta`][grmjudge.voting.select_by_meta]
keeps the top ``k_meta`` of the subset first), and the benchmark score is averaged over the draws. Because the K
samples are exchangeable, a k-subset is distributed like k fresh samples, so the curve costs one pass. At k = K
the only subset is the whole pass, whose totals are exactly what the judge returned.

Adaptive@K (and Adaptive MetaRM@K) replay the stopping rule of [`grmjudge.adaptive`][grmjudge.adaptive] on the
pass's samples in their drawn order. An adaptive call draws a prefix of the fixed-K call's samples (the same
orders and seeds), so the replay stops where a live adaptive call would, with the same votes.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from grmjudge.adaptive import AdaptivePlan
from grmjudge.progress import failure_name
from grmjudge.results import ScoreResult
from grmjudge.voting import default_k_meta, derive_seed, select_by_meta, sum_votes

SettingKind = Literal["greedy", "voting", "metarm", "adaptive", "adaptive-metarm"]


@dataclass(frozen=True)
class Vote:
    """One sample of a call: its scores in the call's response order, its meta score, or why it failed."""

    scores: tuple[int, ...] | None
    meta: float | None = None
    failure: str | None = None


@dataclass(frozen=True)
class CallRecord:
    """What scoring needs from one judged call: its verdict, its samples, or the error it raised."""

    call_id: str
    scores: tuple[float, ...] | None
    votes: tuple[Vote, ...] = ()
    error: str | None = None

    @classmethod
    def from_result(cls, call_id: str, result: ScoreResult) -> CallRecord:
        """Keep the numbers, drop the texts (a large run's judgements do not fit in memory)."""
        votes = tuple(
            Vote(
                scores=s.scores,
                meta=s.meta_score,
                failure=None if s.error is None else failure_name(s.error.kind, s.error.reason),
            )
            for s in result.samples
        )
        return cls(call_id, tuple(result.scores) if result.scores is not None else None, votes)


@dataclass(frozen=True)
class Setting:
    """One reported setting: ``greedy``, or ``voting``/``metarm`` at k with ``draws`` subsets of the pool."""

    kind: SettingKind
    k: int
    draws: int = 1

    @property
    def name(self) -> str:
        """``greedy``, ``voting@8``, ``metarm@32``, ``adaptive@32``."""
        return "greedy" if self.kind == "greedy" else f"{self.kind}@{self.k}"

    @property
    def adaptive(self) -> bool:
        """Whether the setting replays the adaptive stopping rule (k is then the most samples a call may use)."""
        return self.kind in ("adaptive", "adaptive-metarm")

    @property
    def meta(self) -> bool:
        """Whether the setting votes on the meta RM's kept samples."""
        return self.kind in ("metarm", "adaptive-metarm")


def curve_ks(ks: Sequence[int]) -> list[int]:
    """The curve's points: powers of two up to the largest k, and every requested k (k > 1), from 1."""
    top = max(ks)
    powers = [2**i for i in range(top.bit_length()) if 2**i <= top]
    return sorted({*powers, *(k for k in ks if k > 1)}) if top > 1 else []


def plan_settings(ks: Sequence[int], *, meta: bool, draws: int, adaptive: bool = False) -> list[Setting]:
    """Greedy (when 1 is asked for), the voting/meta curves up to the largest k, and adaptive at the largest k."""
    settings = [Setting("greedy", 1)] if 1 in ks else []
    top = max(ks)
    for k in curve_ks(ks):
        count = 1 if k == top else draws
        settings.append(Setting("voting", k, count))
        if meta:
            settings.append(Setting("metarm", k, count))
    if adaptive and top > 1:
        settings.append(Setting("adaptive", top))
        if meta:
            settings.append(Setting("adaptive-metarm", top))
    return settings


def subsets(pool: int, k: int, draws: int, seed: int, call_id: str) -> list[list[int]]:
    """The sample indices of each draw: the whole pool at k >= pool, else seeded random k-subsets."""
    if k >= pool:
        return [list(range(pool))] * draws
    rng = random.Random(derive_seed(seed, call_id, "subset", k))
    return [sorted(rng.sample(range(pool), k)) for _ in range(draws)]


def tie_rng(seed: int, call_id: str, setting: Setting, pool: int, draw: int) -> random.Random:
    """The evaluation tie-break of a call; for greedy and the full pool it is the judge's own (so ``best`` agrees)."""
    if setting.kind == "greedy" or setting.k >= pool:
        return random.Random(derive_seed(seed, call_id, "tie"))
    return random.Random(derive_seed(seed, call_id, "tie", setting.kind, setting.k, draw))


def draw_totals(
    record: CallRecord | None, setting: Setting, seed: int, k_meta: int | None, adaptive: AdaptivePlan | None = None
) -> list[tuple[float, ...] | None]:
    """The call's summed scores under ``setting``, one per draw; ``None`` where there is no verdict.

    Adaptive settings need the call's ``adaptive`` plan (see [`replay`][grmjudge.eval.scaling.replay]).
    """
    if record is None or record.error is not None:
        return [None] * setting.draws
    if setting.kind == "greedy" or not record.votes:
        return [record.scores] * setting.draws
    if adaptive is not None:
        return [replay(record, adaptive)[0]]
    return [
        _vote(record, chosen, setting, k_meta)
        for chosen in subsets(len(record.votes), setting.k, setting.draws, seed, record.call_id)
    ]


def _vote(record: CallRecord, chosen: list[int], setting: Setting, k_meta: int | None) -> tuple[float, ...] | None:
    valid = {i: record.votes[i] for i in chosen if record.votes[i].scores is not None}
    if setting.kind == "metarm":
        rated = {i: vote.meta for i, vote in valid.items() if vote.meta is not None}
        keep = select_by_meta(rated, k_meta or default_k_meta(setting.k))
        valid = {i: valid[i] for i in keep}
    votes = [vote.scores for vote in valid.values() if vote.scores is not None]
    if not votes:
        return None
    return tuple(sum_votes(votes, len(votes[0])))


def replay(record: CallRecord, plan: AdaptivePlan) -> tuple[tuple[float, ...] | None, int]:
    """The totals an adaptive call would have returned, and how many samples it would have drawn.

    The plan's rounds are walked over the recorded samples in index order (the order they were planned and
    drawn); each round is assessed exactly as the live judge assesses it.
    """
    valid: dict[int, tuple[int, ...]] = {}
    meta: dict[int, float] | None = None if plan.k_meta is None else {}
    kept: list[int] = []
    drawn = 0
    for end in plan.ends:
        for index in range(drawn, min(end, len(record.votes))):
            vote = record.votes[index]
            if vote.scores is not None:
                valid[index] = vote.scores
                if meta is not None and vote.meta is not None:
                    meta[index] = vote.meta
        drawn = end
        assessment = plan.assess(end, valid, meta)
        kept = assessment.kept
        if assessment.settled:
            break
    votes = [valid[i] for i in kept]
    return (tuple(sum_votes(votes, len(votes[0]))) if votes else None), drawn
