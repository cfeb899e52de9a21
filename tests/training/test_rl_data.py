"""GRPO rows carry the order their prompt shows; the pre-filter drops what a reference always gets right."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from grmjudge.prompts import DEFAULT_TEMPLATE, SINGLE_RESPONSE_TEMPLATE
from grmjudge.training._sampler import JudgementSampler
from grmjudge.training.rewards import spct_reward
from grmjudge.training.rl_data import grpo_rows, prefilter

from .scripted import ScriptedSampler, judgement, list_item, pair_item, single_item

ITEMS = [pair_item(f"item-{i}", best_first=i % 2 == 0) for i in range(30)] + [
    list_item("item-list", n=4, best=3),
    single_item("item-one", rating=1),
]


def test_rows_render_the_seeded_order_and_the_reward_checks_against_it() -> None:
    rows = grpo_rows(ITEMS, DEFAULT_TEMPLATE, SINGLE_RESPONSE_TEMPLATE, seed=5)
    assert rows == grpo_rows(ITEMS, DEFAULT_TEMPLATE, SINGLE_RESPONSE_TEMPLATE, seed=5)
    assert Counter(tuple(row["permutation"]) for row in rows[:30]).keys() == {(0, 1), (1, 0)}
    texts_right, texts_wrong = [], []
    for item, row in zip(ITEMS, rows, strict=True):
        prompt = row["prompt"][0]["content"]
        shown = [item.responses[i] for i in row["permutation"]]
        positions = [prompt.index(text) for text in shown]
        assert positions == sorted(positions)
        assert row["template_id"] == (SINGLE_RESPONSE_TEMPLATE if item.n == 1 else DEFAULT_TEMPLATE).id
        assert (row["best"], row["rating"], row["id"], row["source"]) == (item.best, item.rating, item.id, item.source)
        texts_right.append(judgement("right", shown).text)
        texts_wrong.append(judgement("wrong", shown).text)
    columns = {key: [row[key] for row in rows] for key in ("permutation", "best", "rating", "template_id", "source")}
    prompts = [row["prompt"] for row in rows]
    assert spct_reward(prompts, texts_right, **columns) == [1.0] * len(rows)
    assert spct_reward(prompts, texts_wrong, **columns) == [-1.0] * len(rows)


def test_rows_differ_by_seed() -> None:
    a = grpo_rows(ITEMS, DEFAULT_TEMPLATE, SINGLE_RESPONSE_TEMPLATE, seed=1)
    b = grpo_rows(ITEMS, DEFAULT_TEMPLATE, SINGLE_RESPONSE_TEMPLATE, seed=2)
    assert [r["permutation"] for r in a] != [r["permutation"] for r in b]


@pytest.mark.anyio
@pytest.mark.parametrize("drop_always_wrong", [False, True])
async def test_prefilter_drops_items_the_reference_always_gets_right(tmp_path: Path, drop_always_wrong: bool) -> None:
    items = [pair_item("item-easy"), pair_item("item-hard"), pair_item("item-mixed"), single_item("item-one", 1)]
    script = ScriptedSampler(
        {
            "item-easy": ["right"] * 3,
            "item-hard": ["wrong", "tie", "nobox"],
            "item-mixed": ["right", "wrong", "right"],
            "item-one": ["right"] * 3,
        }
    )
    report = await prefilter(
        items, JudgementSampler(script.backend()), tmp_path, k=3, drop_always_wrong=drop_always_wrong
    )
    assert report.too_easy_ids == ["item-easy", "item-one"]
    assert report.always_wrong_ids == (["item-hard"] if drop_always_wrong else [])
    assert [e.id for e in report.kept] == (["item-mixed"] if drop_always_wrong else ["item-hard", "item-mixed"])
    # resumed: nothing is sampled again, the decision is the same
    again = ScriptedSampler({})
    resumed = await prefilter(
        items, JudgementSampler(again.backend()), tmp_path, k=3, drop_always_wrong=drop_always_wrong
    )
    assert not again.calls and resumed == report
