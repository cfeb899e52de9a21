"""The position-bias figures: shares by shown position, flip rates against a brute-force count, label accuracy."""

from __future__ import annotations

import itertools
import random

import pytest

from grmjudge.eval.position import PositionTally, winner


def test_winner_is_the_unique_top_score_or_none() -> None:
    assert winner([3, 9, 4]) == 1
    assert winner([9, 9, 4]) is None
    assert winner(None) is None


def test_a_judge_that_always_prefers_the_first_shown_response_wins_only_there() -> None:
    tally = PositionTally()
    for permutation in itertools.permutations(range(3)):
        scores = [0, 0, 0]
        for position, caller in enumerate(permutation):
            scores[caller] = 9 - position
        tally.add([(permutation, scores)], best=2)
    row = tally.figures().rows[0]
    assert (row.n, row.decisive, row.ties) == (3, 6, 0)
    assert row.win_share == [1.0, 0.0, 0.0]
    assert row.labelled == [2, 2, 2]
    assert row.accuracy_by_label_position == [1.0, 0.0, 0.0]


def test_ties_and_failed_samples_name_no_position() -> None:
    tally = PositionTally()
    tally.add([((0, 1), (5, 5)), ((1, 0), None), ((1, 0), (2, 7))])
    row = tally.figures().rows[0]
    assert (row.decisive, row.ties, row.win_share) == (1, 1, [1.0, 0.0])


@pytest.mark.parametrize("seed", range(5))
def test_flip_counts_equal_a_count_over_every_pair(seed: int) -> None:
    rng = random.Random(seed)
    tally = PositionTally()
    across = [0, 0]
    within = [0, 0]
    for _ in range(20):
        orders = [tuple(rng.sample(range(3), 3)) for _ in range(2)]
        samples = [(rng.choice(orders), [rng.randint(1, 3) for _ in range(3)]) for _ in range(rng.randint(0, 8))]
        tally.add(samples)
        decided = [(order, winner(scores)) for order, scores in samples if winner(scores) is not None]
        for (order_a, won_a), (order_b, won_b) in itertools.combinations(decided, 2):
            counts = across if order_a != order_b else within
            counts[0] += won_a != won_b
            counts[1] += 1
    figures = tally.figures()
    assert (figures.pairs_across_orders, figures.pairs_within_order) == (across[1], within[1])
    assert figures.flip_across_orders == (across[0] / across[1] if across[1] else None)
    assert figures.flip_within_order == (within[0] / within[1] if within[1] else None)
