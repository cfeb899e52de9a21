"""Per-example evaluation rules: from one item's summed scores to its credit, under a recorded tie policy.

This is the **evaluation** rule (METHOD.md §9), kept apart from the training correctness rule (§6), which
counts every tie as wrong. Here a tie at the top is resolved by the benchmark's convention (BENCHMARKS.md §8):

- ``half``: the labelled best shares the credit of a top tie, 1/m for an m-way tie (0.5 for a pair, as
  RewardBench's "effectively a tie"; 1/k as RewardBench 2's classifier rule). A call with no verdict counts as
  an n-way tie (0.5 for a pair, 0.25 for RewardBench 2's four completions).
- ``wrong``: a tie, or no verdict, earns 0 (the classifier convention: chosen must score strictly higher).
- ``random``: the DeepSeek-GRM convention (shuffle, then argmax): the top tie is broken by a seeded draw with
  [`pick_best`][grmjudge.voting.pick_best], seeded from (global seed, call id); no verdict is an n-way tie.

A call without a verdict is still counted as a failure in the report, whatever credit the policy gives it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from enum import StrEnum

from grmjudge.eval.items import AllPairsLabel, BestLabel, EvalItem, GamesLabel, StyleMatrixLabel
from grmjudge.voting import pick_best

Totals = tuple[float, ...] | None
"""One call's summed scores in the call's response order, or ``None`` when it produced no verdict."""

RngFor = Callable[[str], random.Random]
"""The seeded tie-break generator of a call, by call id."""


class TiePolicy(StrEnum):
    """How a top tie (or a call without a verdict) is credited; ``official`` picks the benchmark's convention."""

    OFFICIAL = "official"
    HALF = "half"
    WRONG = "wrong"
    RANDOM = "random"


_OFFICIAL: dict[str, TiePolicy] = {
    "rewardbench": TiePolicy.HALF,
    "rewardbench2": TiePolicy.HALF,
    "ppe-preference": TiePolicy.WRONG,
    "ppe-correctness": TiePolicy.WRONG,
    "rmb": TiePolicy.WRONG,
    "rm-bench": TiePolicy.WRONG,
    "judgebench": TiePolicy.WRONG,
    "toy-spct": TiePolicy.WRONG,
}


def resolve_policy(requested: TiePolicy, benchmark: str, *, scalar: bool) -> TiePolicy:
    """The concrete policy: the benchmark's convention for ``official`` (scalar heads count RB v1 ties as wrong)."""
    if requested is not TiePolicy.OFFICIAL:
        return requested
    if benchmark == "rewardbench" and scalar:
        return TiePolicy.WRONG
    return _OFFICIAL[benchmark]


def credit(totals: Totals, best: int, n: int, policy: TiePolicy, rng: Callable[[], random.Random]) -> float:
    """Credit in [0, 1] for the labelled ``best`` of ``n`` responses given the call's totals."""
    if totals is None:
        if policy is TiePolicy.RANDOM:
            return float(pick_best([0.0] * n, rng()) == best)
        return 1.0 / n if policy is TiePolicy.HALF else 0.0
    if policy is TiePolicy.RANDOM:
        return float(pick_best(totals, rng()) == best)
    top = max(totals)
    if totals[best] != top:
        return 0.0
    tied = sum(1 for total in totals if total == top)
    if tied == 1:
        return 1.0
    return 1.0 / tied if policy is TiePolicy.HALF else 0.0


def item_value(item: EvalItem, totals: Sequence[Totals], policy: TiePolicy, rng_for: RngFor) -> tuple[float, ...]:
    """An item's value vector (most benchmarks: one credit; RM-Bench: hard, normal, easy); not for Ties items."""
    label = item.label
    if isinstance(label, BestLabel):
        call = item.calls[0]
        return (credit(totals[0], label.best, len(call.responses), policy, lambda: rng_for(call.id)),)
    if isinstance(label, AllPairsLabel):
        credits = [credit(t, 0, 2, policy, _bound(rng_for, c.id)) for t, c in zip(totals, item.calls, strict=True)]
        return (math.prod(credits),)
    if isinstance(label, StyleMatrixLabel):
        return style_matrix_value(totals[0], label.styles, policy, rng_for(item.calls[0].id))
    if isinstance(label, GamesLabel):
        return (two_games_value(totals, label.a_wins, policy, [rng_for(c.id) for c in item.calls]),)
    raise TypeError(f"{type(label).__name__} items are scored by grmjudge.eval.ties")  # TiesLabel


def style_matrix_value(
    totals: Totals, styles: int, policy: TiePolicy, rng: random.Random
) -> tuple[float, float, float]:
    """RM-Bench's 3x3 matrix: cell (i, j) credits chosen_i over rejected_j; returns (hard, normal, easy).

    hard is the mean of the cells above the diagonal (plainer chosen against fancier rejected), normal the
    diagonal, easy the cells below it (``THU-KEG/RM-Bench: scripts/utils.py, compute_accuracy``).
    """
    cells: dict[tuple[int, int], float] = {}
    for i in range(styles):
        for j in range(styles):
            pair = None if totals is None else (totals[i], totals[styles + j])
            cells[(i, j)] = credit(pair, 0, 2, policy, lambda: rng)
    hard = [v for (i, j), v in cells.items() if i < j]
    normal = [v for (i, j), v in cells.items() if i == j]
    easy = [v for (i, j), v in cells.items() if i > j]
    return (sum(hard) / len(hard), sum(normal) / len(normal), sum(easy) / len(easy))


def two_games_value(totals: Sequence[Totals], a_wins: bool, policy: TiePolicy, rngs: Sequence[random.Random]) -> float:
    """JudgeBench's two-game rule: 1.0 when the games agree with the label on balance, else 0.0.

    Game 1 shows (A, B), game 2 shows (B, A). Each game adds +1 if it agrees with the label, -1 if it contradicts
    it and 0 for a tie ("A=B") or no decision; the pair is correct when the sum is positive
    (``ScalerLab/JudgeBench: utils/metrics.py, compute_final_metrics``). Under ``random`` a tie is broken.
    """
    counter = 0
    for game, (game_totals, rng) in enumerate(zip(totals, rngs, strict=True)):
        first = _first_wins(game_totals, policy, rng)
        if first is None:
            continue
        a_better = first if game == 0 else not first
        counter += 1 if a_better == a_wins else -1
    return 1.0 if counter > 0 else 0.0


def _first_wins(totals: Totals, policy: TiePolicy, rng: random.Random) -> bool | None:
    if totals is None:
        return None
    if totals[0] != totals[1]:
        return totals[0] > totals[1]
    if policy is TiePolicy.RANDOM:
        return pick_best(totals, rng) == 0
    return None


def ties_scores(totals: Totals, n: int) -> tuple[float, ...]:
    """A Ties row's absolute scores; no verdict scores every completion -1, the official parse-failure value."""
    return totals if totals is not None else (-1.0,) * n


def _bound(rng_for: RngFor, call_id: str) -> Callable[[], random.Random]:
    return lambda: rng_for(call_id)
