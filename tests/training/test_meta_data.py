"""Meta-RM data (labelled judgements in the order each one saw), balancing, the held-out split and AUC."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

import pytest

from grmjudge.exceptions import ConfigurationError
from grmjudge.meta import MetaInput
from grmjudge.training._sampler import JudgementSampler
from grmjudge.training.data import write_examples
from grmjudge.training.meta_data import (
    MetaSampleConfig,
    balance_classes,
    meta_rows,
    roc_auc,
    run_meta_sampling,
    sample_meta_records,
    split_by_item,
)
from grmjudge.training.rft import RejectionSampler

from .scripted import ScriptedSampler, list_item, pair_item, single_item

ITEMS = [pair_item("item-a"), list_item("item-b"), single_item("item-c", rating=0)]
SCRIPT = {
    "item-a": ["right", "wrong", "nobox"],
    "item-b": ["right", "tie", "truncated"],
    "item-c": ["wrong", "right", "right"],
}


def brute_force_auc(scores: list[float], labels: list[int]) -> float:
    pairs = [(p, n) for p, n in itertools.product(range(len(scores)), repeat=2) if labels[p] == 1 and labels[n] == 0]
    wins = sum(1.0 if scores[p] > scores[n] else 0.5 if scores[p] == scores[n] else 0.0 for p, n in pairs)
    return wins / len(pairs)


def test_auc_matches_the_pairwise_definition_with_ties() -> None:
    rng = random.Random(0)
    for _ in range(50):
        labels = [rng.randint(0, 1) for _ in range(12)]
        if len(set(labels)) < 2:
            continue
        scores = [float(rng.randint(0, 4)) for _ in range(12)]
        assert roc_auc(scores, labels) == pytest.approx(brute_force_auc(scores, labels))
    assert roc_auc([0.1, 0.9], [0, 1]) == 1.0 and roc_auc([0.9, 0.1], [0, 1]) == 0.0
    assert roc_auc([0.5, 0.2], [1, 1]) is None


def test_balancing_down_samples_the_larger_class() -> None:
    rows = [{"label": 1, "i": i} for i in range(10)] + [{"label": 0, "i": i} for i in range(10, 13)]
    balanced = balance_classes(rows, seed=1)
    assert sum(r["label"] for r in balanced) == 3 and len(balanced) == 6
    assert [r["i"] for r in balanced] == sorted(r["i"] for r in balanced)  # original order kept
    assert balance_classes(rows, seed=1) == balanced
    with pytest.raises(ConfigurationError, match="both classes are needed"):
        balance_classes([{"label": 1}], seed=0)


def test_the_held_out_split_keeps_items_whole() -> None:
    rows = [{"item_id": f"item-{i // 3}", "label": i % 2} for i in range(300)]
    train, held_out = split_by_item(rows, 0.2, seed=4)
    assert {r["item_id"] for r in train}.isdisjoint({r["item_id"] for r in held_out})
    assert 0.1 < len(held_out) / len(rows) < 0.3
    assert split_by_item(rows, 0.0, seed=4) == (rows, [])


@pytest.mark.anyio
async def test_meta_rows_are_labelled_chats_in_the_order_each_judgement_saw(tmp_path: Path) -> None:
    script = ScriptedSampler(SCRIPT)
    sampler = JudgementSampler(script.backend(), seed=3)
    await sample_meta_records(ITEMS, sampler, tmp_path, k=3)
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    rows = list(meta_rows(records, origin="grm"))
    assert len(rows) == 9
    assert sorted((r["item_id"], r["label"], r["failure"] or "") for r in rows) == sorted(
        [
            ("item-a", 1, ""), ("item-a", 0, ""), ("item-a", 0, "no_boxed"),
            ("item-b", 1, ""), ("item-b", 0, ""), ("item-b", 0, "truncated"),
            ("item-c", 0, ""), ("item-c", 1, ""), ("item-c", 1, ""),
        ]
    )  # fmt: skip
    by_id = {record["id"]: record for record in records}
    for row in rows:
        judgement = by_id[row["item_id"]]["judgements"][int(row["id"].rsplit("/", 1)[1])]
        example = by_id[row["item_id"]]["example"]
        shown = [example["responses"][i] for i in judgement["permutation"]]
        expected = MetaInput(query=tuple(ITEMS[0].query), responses=tuple(shown), judgement=judgement["text"])
        assert row["messages"][1] == {"role": "assistant", "content": judgement["text"]}
        user = row["messages"][0]["content"]
        assert [user.index(text) for text in shown] == sorted(user.index(text) for text in shown)
        if row["item_id"] == "item-a":
            assert row["messages"] == [m.model_dump() for m in expected.messages]  # the chat the scorer reads
    assert len(list(meta_rows(records, origin="grm", include_parse_failures=False))) == 7


@pytest.mark.anyio
async def test_meta_sampling_reuses_non_hinted_rft_samples(tmp_path: Path) -> None:
    rft_script = ScriptedSampler(SCRIPT, {"item-a": ["right"], "item-b": ["right"]})
    await RejectionSampler(JudgementSampler(rft_script.backend())).run(ITEMS, tmp_path / "rft")
    data = tmp_path / "items.jsonl"
    write_examples(data, ITEMS)
    config = MetaSampleConfig(
        data=str(data),
        sampler="openai:unused",
        output_dir=str(tmp_path / "meta"),
        rft_records=[str(tmp_path / "rft" / "records.jsonl")],
    )
    stats = await run_meta_sampling(config, backend=ScriptedSampler(SCRIPT).backend())
    assert stats.by_origin == {"grm": 9, "rft": 9}  # the two hinted RFT samples are not meta-RM data
    assert (stats.positives, stats.negatives, stats.parse_failures) == (8, 10, 4)
    lines = (tmp_path / "meta" / "meta.jsonl").read_text().splitlines()
    assert len(lines) == 18 and len({json.loads(line)["id"] for line in lines}) == 18
