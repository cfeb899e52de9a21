"""Adaptive k: draw a call's samples in rounds and stop once the vote's leader is settled.

The k samples (orders and seeds) are planned up front as for a fixed-k call and drawn round by round, each
round a run of whole blocks of orders, so an adaptive call's samples are a prefix of the fixed-k call's. The
stopping rule here is pure and sees only the votes so far: the live judge and the eval's replay of a recorded
fixed-k pass share it, and so stop at the same sample. The rule and its justification: docs/concepts.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from grmjudge.voting import ShuffleMode, select_by_meta

StopReason = Literal["settled", "k_reached"]


class AdaptivePolicy(BaseModel):
    """How an adaptive call samples and when it stops.

    ``first_round`` and ``round_size`` are in samples, rounded up to whole blocks of orders (a block is one
    sample per rotation: n samples for n responses with the balanced shuffle, 1 otherwise). A call may stop
    after a round once ``min_samples`` valid samples are in and, for every other response, the leader's lead
    in the full-k vote is predicted with ``confidence`` (split evenly over the other responses and the rounds,
    so the chance of any wrong stop stays below ``1 - confidence``). ``min_std`` floors the per-sample
    margin's standard deviation, so a few identical votes are not taken as certainty.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    first_round: int = Field(default=4, ge=1)
    round_size: int = Field(default=4, ge=1)
    confidence: float = Field(default=0.95, gt=0.0, lt=1.0)
    min_samples: int = Field(default=4, ge=1)
    min_std: float = Field(default=1.0, gt=0.0)


@dataclass(frozen=True)
class Assessment:
    """The state after a round: the sample indices whose votes count, and whether sampling may stop."""

    kept: list[int]
    settled: bool


@dataclass(frozen=True)
class AdaptivePlan:
    """The rounds of one adaptive call and the rule that ends them.

    ``k`` is the most samples the call may draw; ``k_meta`` (with a meta RM) how many the full call keeps.
    """

    policy: AdaptivePolicy
    k: int
    n_responses: int
    shuffle: ShuffleMode
    k_meta: int | None = None

    @property
    def ends(self) -> list[int]:
        """How many samples are drawn by the end of each round; the last is ``k``."""
        block = self.n_responses if self.shuffle is ShuffleMode.BALANCED else 1
        ends: list[int] = []
        size = self.policy.first_round
        while not ends or ends[-1] < self.k:
            ends.append(min(self.k, (ends[-1] if ends else 0) + block * math.ceil(size / block)))
            size = self.policy.round_size
        return ends

    def assess(self, drawn: int, valid: Mapping[int, Sequence[int]], meta: Mapping[int, float] | None) -> Assessment:
        """Which votes count after ``drawn`` samples, and whether the leader is settled.

        ``valid`` maps the index of every valid sample drawn so far to its scores (caller's order); ``meta``
        their meta scores when the call uses a meta RM. With meta, the kept share of the drawn samples is the
        full call's (``k_meta`` of ``k``), chosen by [`select_by_meta`][grmjudge.voting.select_by_meta].
        """
        if meta is None or self.k_meta is None:
            kept, horizon = sorted(valid), self.k
        else:
            rated = {i: meta[i] for i in valid if i in meta}
            kept, horizon = select_by_meta(rated, max(1, drawn * self.k_meta // self.k)), self.k_meta
        if drawn >= self.k or len(valid) < self.policy.min_samples or not kept:
            return Assessment(kept, False)
        votes = [valid[i] for i in kept]
        return Assessment(kept, leader_settled(votes, horizon, self.critical_value, self.policy.min_std))

    @property
    def critical_value(self) -> float:
        """The one-sided test's z: ``1 - confidence`` split over the other responses and the rounds but the last."""
        tests = max(1, self.n_responses - 1) * max(1, len(self.ends) - 1)
        return NormalDist().inv_cdf(1 - (1 - self.policy.confidence) / tests)


def leader_settled(votes: Sequence[Sequence[int]], horizon: int, z: float, min_std: float) -> bool:
    """Whether the current leader is predicted to lead the vote over ``horizon`` samples, against each rival.

    For a rival, the per-sample margins d (leader's score minus the rival's) of the m votes have mean d̄ and
    standard deviation s (at least ``min_std``). If margins are independent with unknown mean, the final sum
    over ``horizon`` = H votes is predicted as normal with mean H·d̄ and variance s²·(H - m)·H / m (the
    remaining H - m draws plus the uncertainty of d̄). The leader is settled when that sum is above 0 by ``z``
    standard deviations for every rival. A tie at the top, or a single response, is never settled.
    """
    m = len(votes)
    n = len(votes[0]) if votes else 0
    if n < 2:
        return False
    totals = [sum(vote[i] for vote in votes) for i in range(n)]
    top = max(totals)
    if totals.count(top) > 1:
        return False
    leader = totals.index(top)
    remaining = max(0, horizon - m)
    for rival in range(n):
        if rival == leader or remaining == 0:
            continue
        margins = [vote[leader] - vote[rival] for vote in votes]
        mean = sum(margins) / m
        var = sum((d - mean) ** 2 for d in margins) / (m - 1) if m > 1 else 0.0
        sd = max(math.sqrt(var), min_std)
        if horizon * mean <= z * sd * math.sqrt(remaining * horizon / m):
            return False
    return True
