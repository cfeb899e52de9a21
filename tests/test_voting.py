from __future__ import annotations

import random
from collections import Counter

import pytest

from grmjudge.settings import ShuffleMode
from grmjudge.voting import (
    apply_permutation,
    default_k_meta,
    derive_seed,
    group_by_permutation,
    pick_best,
    plan_permutations,
    select_by_meta,
    sum_votes,
    to_caller_order,
    vote_spread,
)


@pytest.mark.parametrize(("n", "k"), [(2, 8), (3, 9), (4, 8), (5, 10), (2, 2)])
def test_balanced_plan_puts_each_response_in_each_position_equally(n: int, k: int) -> None:
    plan = plan_permutations(n, k, ShuffleMode.BALANCED, random.Random(1))
    assert len(plan) == k
    for position in range(n):
        counts = Counter(perm[position] for perm in plan)
        assert set(counts) == set(range(n))
        assert set(counts.values()) == {k // n}
    assert all(sorted(perm) == list(range(n)) for perm in plan)


def test_balanced_pairwise_k8_is_two_orders_of_four() -> None:
    plan = plan_permutations(2, 8, ShuffleMode.BALANCED, random.Random(7))
    groups = group_by_permutation(plan)
    assert sorted(groups) == [(0, 1), (1, 0)]
    assert sorted(len(v) for v in groups.values()) == [4, 4]


def test_balanced_with_remainder_is_as_even_as_possible() -> None:
    plan = plan_permutations(3, 4, ShuffleMode.BALANCED, random.Random(3))
    for position in range(3):
        counts = Counter(perm[position] for perm in plan)
        assert max(counts.values()) - min(counts.get(i, 0) for i in range(3)) <= 1


def test_none_mode_keeps_caller_order() -> None:
    assert plan_permutations(3, 4, ShuffleMode.NONE, random.Random(0)) == [(0, 1, 2)] * 4


def test_random_mode_is_seeded_and_varied() -> None:
    a = plan_permutations(4, 32, ShuffleMode.RANDOM, random.Random(11))
    b = plan_permutations(4, 32, ShuffleMode.RANDOM, random.Random(11))
    c = plan_permutations(4, 32, ShuffleMode.RANDOM, random.Random(12))
    assert a == b
    assert a != c
    assert len(set(a)) > 4


def test_single_response_plan() -> None:
    for mode in ShuffleMode:
        assert plan_permutations(1, 3, mode, random.Random(0)) == [(0,)] * 3


def test_unshuffling_inverts_the_shown_order() -> None:
    responses = ["alpha", "bb", "cccc", "d"]
    perm = (2, 0, 3, 1)
    shown = apply_permutation(responses, perm)
    assert shown == ["cccc", "alpha", "d", "bb"]
    prompt_scores = [len(text) for text in shown]
    assert to_caller_order(prompt_scores, perm) == tuple(len(text) for text in responses)


def test_paper_worked_example_table_17() -> None:
    samples = [
        to_caller_order((8, 8), (0, 1)),
        to_caller_order((9, 5), (1, 0)),
        to_caller_order((10, 7), (1, 0)),
    ]
    assert sum_votes(samples, 2) == [20.0, 27.0]


def test_meta_selection_keeps_top_and_breaks_ties_by_index() -> None:
    scores = {0: 1.0, 1: 3.0, 2: 3.0, 3: -15.78, 5: 3.0}
    assert select_by_meta(scores, 2) == [1, 2]
    assert select_by_meta(scores, 10) == [0, 1, 2, 3, 5]


@pytest.mark.parametrize(("k", "expected"), [(1, 1), (2, 1), (3, 1), (8, 4), (32, 16)])
def test_default_k_meta(k: int, expected: int) -> None:
    assert default_k_meta(k) == expected


def test_pick_best_ties_are_seeded_and_fair() -> None:
    totals = [5.0, 9.0, 9.0, 1.0]
    picks = [pick_best(totals, random.Random(seed)) for seed in range(200)]
    assert set(picks) == {1, 2}
    assert picks == [pick_best(totals, random.Random(seed)) for seed in range(200)]
    assert pick_best([1.0, 2.0], random.Random(0)) == 1


def test_vote_spread() -> None:
    spread = vote_spread([(8, 2), (6, 2)], 2)
    assert (spread[0].min, spread[0].max, spread[0].stdev) == (6, 8, 1.0)
    assert spread[1].stdev == 0.0


def test_derive_seed_is_stable_and_distinct() -> None:
    assert derive_seed(0, "item", 1) == derive_seed(0, "item", 1)
    assert len({derive_seed(0, "item", i) for i in range(100)}) == 100
    assert 0 <= derive_seed("x") < 2**31
