"""The shared pure parts: grouping, normalising votes into rewards, and the counters."""

from __future__ import annotations

from collections import Counter

import pytest

from grmjudge.integrations.rewarder import RewardStats, Vote, normalise, plan_groups


def test_contiguous_groups_are_runs_of_a_key_cut_to_size() -> None:
    # TRL's layout: runs of one prompt; a new run always starts a new group, even for a key seen before
    keys = ["a", "a", "b", "b", "a", "a", "c"]
    assert plan_groups(keys, None, contiguous=True) == [[0, 1], [2, 3], [4, 5], [6]]
    assert plan_groups(keys, 2, contiguous=True) == [[0, 1], [2, 3], [4, 5], [6]]
    assert plan_groups(["a"] * 5 + ["b"] * 3, 2, contiguous=True) == [[0], [1, 2], [3, 4], [5, 6], [7]]
    assert plan_groups(["a"] * 5, 2, contiguous=True) == [[0, 1], [2, 3], [4]]
    assert plan_groups([], 4, contiguous=True) == []


def test_a_batch_that_begins_inside_a_row_keeps_the_rows_apart() -> None:
    # num_generations=4 and a process batch of 10 that begins with the last 2 completions of a row of prompt
    # "p", then a whole row of the same prompt "p", then a whole row of "q": the tail stays its own group
    keys = ["p"] * 2 + ["p"] * 4 + ["q"] * 4
    assert plan_groups(keys, 4, contiguous=True) == [[0, 1], [2, 3, 4, 5], [6, 7, 8, 9]]
    # the tail of a row of "p", a row of "q", the head of another row of "p": three groups, never one "p" group
    keys = ["p"] * 2 + ["q"] * 4 + ["p"] * 2
    assert plan_groups(keys, 4, contiguous=True) == [[0, 1], [2, 3, 4, 5], [6, 7]]


def test_keyed_groups_gather_a_key_wherever_it_sits() -> None:
    # verl's batch balancing reorders completions, so verl's groups are keyed, not positional
    keys = ["a", "b", "a", "b", "a", "a", "c"]
    assert plan_groups(keys, None, contiguous=False) == [[0, 2, 4, 5], [1, 3], [6]]
    assert plan_groups(keys, 2, contiguous=False) == [[0, 2], [4, 5], [1, 3], [6]]
    assert plan_groups(keys, 3, contiguous=False) == [[0, 2, 4], [5], [1, 3], [6]]
    assert plan_groups([], 4, contiguous=False) == []


def test_no_verdict_stays_none_and_is_left_out_of_the_group_statistics() -> None:
    votes = [Vote(8, 2), None, Vote(4, 2), Vote(4, 1)]  # means 4, -, 2, 4
    assert normalise(votes, "raw", (1, 10)) == [8, None, 4, 4]
    assert normalise(votes, "mean", (1, 10)) == [4, None, 2, 4]
    assert normalise(votes, "unit", (1, 10)) == pytest.approx([1 / 3, None, 1 / 9, 1 / 3])
    centre, spread = 10 / 3, (2 / 9) ** 0.5 * 2
    assert normalise(votes, "zscore", (1, 10)) == pytest.approx(
        [(4 - centre) / spread, None, (2 - centre) / spread, (4 - centre) / spread]
    )
    assert normalise(votes, "rank", (1, 10)) == [0.75, None, 0.0, 0.75]  # a tie shares its average rank


def test_level_groups_single_members_and_empty_groups() -> None:
    assert normalise([Vote(5, 1), Vote(10, 2)], "zscore", (1, 10)) == [0.0, 0.0]
    assert normalise([Vote(5, 1), Vote(10, 2)], "rank", (1, 10)) == [0.5, 0.5]
    assert normalise([Vote(5, 1)], "rank", (1, 10)) == [0.5]
    assert normalise([None, None], "zscore", (1, 10)) == [None, None]
    assert normalise([Vote(0, 1), Vote(1, 1)], "unit", (0, 1)) == [0.0, 1.0]


def test_stats_add_up_and_report_rates() -> None:
    total = RewardStats()
    assert (total.fallback_rate, total.valid_sample_rate) == (0.0, 0.0)
    total.add(
        RewardStats(batches=1, completions=4, fallback_rewards=2, samples=8, valid_samples=6, failures=Counter(a=2))
    )
    total.add(RewardStats(batches=1, completions=4, samples=8, valid_samples=8, failures=Counter(a=1, b=1)))
    assert (total.batches, total.completions, total.fallback_rewards) == (2, 8, 2)
    assert total.failures == {"a": 3, "b": 1}
    assert (total.fallback_rate, total.valid_sample_rate) == (0.25, 14 / 16)
