"""Rejection sampling (RFT data) against a scripted sampler: every keep / reject / too-easy decision exactly."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from grmjudge.backends import FunctionBackend
from grmjudge.exceptions import ConfigurationError, ServerError
from grmjudge.prompts import HINT_SUFFIX
from grmjudge.training._sampler import JudgementSampler
from grmjudge.training.data import SPCTExample, write_examples
from grmjudge.training.rft import RejectionSampler, RFTSampleConfig, run_rft_sampling
from grmjudge.types import GenerationRequest

from .scripted import ScriptedSampler, list_item, pair_item, single_item

pytestmark = pytest.mark.anyio

ITEMS = [
    pair_item("item-easy"),
    pair_item("item-mixed", best_first=False),
    pair_item("item-fails"),
    pair_item("item-trunc", best_first=False),
    single_item("item-single", rating=1),
    list_item("item-list"),
]
NON_HINTED = {
    "item-easy": ["right", "right", "right"],
    "item-mixed": ["right", "wrong", "tie"],
    "item-fails": ["nobox", "count", "range"],
    "item-trunc": ["truncated", "wrong", "right"],
    "item-single": ["right", "wrong", "right"],
    "item-list": ["right", "right", "wrong"],
}
HINTED = {
    "item-easy": ["right"],
    "item-mixed": ["right"],
    "item-fails": ["wrong"],
    "item-trunc": ["truncated"],
    "item-list": ["right"],
}


def rejection(
    script: ScriptedSampler, mode: str = "both", *, backend: FunctionBackend | None = None
) -> RejectionSampler:
    sampler = JudgementSampler(backend or script.backend(), temperature=1.0, max_tokens=256, seed=7)
    return RejectionSampler(sampler, samples_per_item=3, hint_mode=mode)  # type: ignore[arg-type]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_keeps_correct_samples_and_drops_too_easy_items(tmp_path: Path) -> None:
    script = ScriptedSampler(NON_HINTED, HINTED)
    stats = await rejection(script).run(ITEMS, tmp_path)

    assert stats.items == 6
    assert (stats.items_kept, stats.too_easy, stats.rejected_items) == (4, 1, 1)
    assert stats.non_hinted.model_dump() == {
        "drawn": 18,
        "correct": 3 + 1 + 0 + 1 + 2 + 2,
        "kept": 1 + 0 + 1 + 2 + 2,  # the too-easy item's three correct samples are not kept
        "rejected": 0 + 2 + 3 + 2 + 1 + 1,
        "ties": 1,
        "parse_failures": {"no_boxed": 1, "wrong_count": 1, "out_of_range": 1, "truncated": 1},
    }
    # hinted: every pair/list item that is not too easy; never the single-response item
    assert stats.hinted.model_dump() == {
        "drawn": 4,
        "correct": 2,
        "kept": 2,
        "rejected": 2,
        "ties": 0,
        "parse_failures": {"truncated": 1},
    }
    assert stats.examples == 6 + 2
    assert {item: calls[True] for item, calls in script.calls.items()} == {
        "item-easy": 0,
        "item-mixed": 1,
        "item-fails": 1,
        "item-trunc": 1,
        "item-single": 0,
        "item-list": 1,
    }
    assert all(calls[False] == 3 for calls in script.calls.values())
    assert script.hint_errors == []  # the hint named the labelled best as shown in that prompt
    assert stats.by_source["pairs"].too_easy == 1
    assert stats.by_source["singles"].non_hinted_acceptance == pytest.approx(2 / 3)
    assert stats.by_source["pairs"].hinted_acceptance == pytest.approx(1 / 3)
    assert json.loads((tmp_path / "stats.json").read_text()) == stats.model_dump()


async def test_sft_rows_are_the_kept_judgements_with_the_hint_stripped(tmp_path: Path) -> None:
    script = ScriptedSampler(NON_HINTED, HINTED)
    await rejection(script).run(ITEMS, tmp_path)
    rows = read_jsonl(tmp_path / "sft.jsonl")
    assert Counter(row["item_id"] for row in rows) == {
        "item-mixed": 2,
        "item-trunc": 1,
        "item-single": 2,
        "item-list": 3,
    }
    assert sum(row["hinted"] for row in rows) == 2
    records = {r["id"]: r for r in read_jsonl(tmp_path / "records.jsonl")}
    hinted_prompts = {item: prompt for item, hinted, prompt in script.prompts if hinted}
    for row in rows:
        prompt = row["prompt"][0]["content"]
        assert row["prompt"][0]["role"] == "user" and len(row["prompt"]) == 1
        assert HINT_SUFFIX.split("{")[0] not in prompt
        judgement = records[row["item_id"]]["judgements"][int(row["id"].split("/")[1])]
        assert judgement["correct"] and row["completion"] == [{"role": "assistant", "content": judgement["text"]}]
        example = SPCTExample.model_validate(records[row["item_id"]]["example"])
        shown = [example.responses[i] for i in judgement["permutation"]]
        positions = [prompt.index(text) for text in shown]
        assert positions == sorted(positions)  # the prompt shows the responses in the order that was judged
        if row["hinted"]:
            # the same prompt the sampler saw, minus the hint line
            assert hinted_prompts[row["item_id"]] == prompt + "\n" + HINT_SUFFIX.format(index=_best_position(prompt))


def _best_position(prompt: str) -> int:
    blocks = prompt.split("[The Begin of Response ")[1:]
    return next(i for i, block in enumerate(blocks, start=1) if "\nGOOD" in block)


@pytest.mark.parametrize(
    ("mode", "hinted_items", "examples"),
    [
        ("fallback", {"item-fails"}, 6),  # only the item with no correct non-hinted sample
        ("off", set(), 6),
        ("both", {"item-mixed", "item-fails", "item-trunc", "item-list"}, 8),
    ],
)
async def test_hint_modes(tmp_path: Path, mode: str, hinted_items: set[str], examples: int) -> None:
    script = ScriptedSampler(NON_HINTED, HINTED)
    stats = await rejection(script, mode).run(ITEMS, tmp_path)
    assert {item for item, calls in script.calls.items() if calls[True]} == hinted_items
    assert stats.hint_mode == mode
    assert stats.examples == examples


async def test_hint_only_mode_draws_no_unhinted_samples(tmp_path: Path) -> None:
    script = ScriptedSampler({}, HINTED)
    stats = await rejection(script, "only").run(ITEMS, tmp_path)
    assert stats.non_hinted.drawn == 0 and stats.too_easy == 0
    assert stats.hinted.drawn == 5 and stats.hinted.kept == 3  # easy, mixed, list right; fails, trunc wrong
    assert stats.by_source["singles"].items == 1 and stats.by_source["singles"].items_kept == 0


async def test_resumes_without_resampling_finished_items(tmp_path: Path) -> None:
    first = ScriptedSampler(NON_HINTED, HINTED)
    await rejection(first).run(ITEMS[:3], tmp_path)
    second = ScriptedSampler(NON_HINTED, HINTED)
    resumed = await rejection(second).run(ITEMS, tmp_path)
    assert set(second.calls) == {"item-trunc", "item-single", "item-list"}
    assert resumed.skipped_done == 3

    fresh_dir = tmp_path / "fresh"
    full = await rejection(ScriptedSampler(NON_HINTED, HINTED)).run(ITEMS, fresh_dir)
    assert resumed.model_dump(exclude={"skipped_done"}) == full.model_dump(exclude={"skipped_done"})
    assert (tmp_path / "sft.jsonl").read_text().count("\n") == full.examples


async def test_a_half_written_last_line_is_cut_off_and_that_item_resampled(tmp_path: Path) -> None:
    await rejection(ScriptedSampler(NON_HINTED, HINTED)).run(ITEMS[:2], tmp_path)
    records = tmp_path / "records.jsonl"
    lines = records.read_text().splitlines(keepends=True)
    records.write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # killed while writing the second item
    script = ScriptedSampler(NON_HINTED, HINTED)
    stats = await rejection(script).run(ITEMS[:2], tmp_path)
    assert stats.repaired_partial_line and stats.skipped_done == 1
    assert stats.items == 2 and len(read_jsonl(records)) == 2


async def test_a_corrupt_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    await rejection(ScriptedSampler(NON_HINTED, HINTED)).run(ITEMS[:2], tmp_path)
    records = tmp_path / "records.jsonl"
    records.write_text("{not json}\n" + records.read_text())
    with pytest.raises(ConfigurationError, match=r"line 1 of .*records\.jsonl is not valid JSON"):
        await rejection(ScriptedSampler(NON_HINTED, HINTED)).run(ITEMS[:2], tmp_path)


async def test_backend_failures_are_reported_and_retried_on_resume(tmp_path: Path) -> None:
    script = ScriptedSampler(NON_HINTED, HINTED)

    def flaky(request: GenerationRequest):
        if "item-mixed" in request.messages[-1].content:
            raise ServerError("upstream down", status_code=503)
        return script._reply(request)

    stats = await rejection(script, backend=FunctionBackend(flaky)).run(ITEMS[:3], tmp_path)
    assert stats.backend_failed_ids == ["item-mixed"] and stats.items == 2
    retry = ScriptedSampler(NON_HINTED, HINTED)
    again = await rejection(retry).run(ITEMS[:3], tmp_path)
    assert set(retry.calls) == {"item-mixed"} and again.items == 3 and again.backend_failed_ids == []


async def test_resuming_with_another_template_is_refused(tmp_path: Path) -> None:
    from grmjudge.prompts import PromptTemplate

    await rejection(ScriptedSampler(NON_HINTED, HINTED)).run(ITEMS[:2], tmp_path)
    other = PromptTemplate(id="other", text="Judge.\n{context}\n{responses}\nScores:")
    sampler = JudgementSampler(ScriptedSampler(NON_HINTED, HINTED).backend(), template=other)
    with pytest.raises(ConfigurationError, match="template 'deepseek-grm-default', unlike this run"):
        await RejectionSampler(sampler).run(ITEMS[:3], tmp_path)


async def test_resuming_with_another_hint_mode_is_refused(tmp_path: Path) -> None:
    await rejection(ScriptedSampler(NON_HINTED, HINTED)).run(ITEMS[:2], tmp_path)
    script = ScriptedSampler(NON_HINTED, HINTED)
    with pytest.raises(ConfigurationError, match="hint_mode='both'.*use a fresh output directory"):
        await rejection(script, "fallback").run(ITEMS[:3], tmp_path)
    assert not script.calls  # refused before sampling anything


async def test_run_from_a_config_writes_a_run_card(tmp_path: Path) -> None:
    data = tmp_path / "items.jsonl"
    write_examples(data, ITEMS)
    config = RFTSampleConfig(data=str(data), sampler="openai:unused", output_dir=str(tmp_path / "out"), seed=7)
    script = ScriptedSampler(NON_HINTED, HINTED)
    stats = await run_rft_sampling(config, backend=script.backend())
    assert stats.examples == 8
    card = json.loads((tmp_path / "out" / "run_card.json").read_text())
    assert card["stage"] == "rft-sample" and card["config"]["hint_mode"] == "both"
    assert card["data"][str(data)].startswith("sha256:")
    assert card["results"]["data"]["examples"] == 6


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"data": None}, "--data is required"),
        ({"sampler": None}, "--sampler is required"),
        ({"hint_mode": "sometimes"}, "--hint-mode must be one of"),
        ({"data_format": "csv"}, "--data-format must be one of"),
    ],
)
def test_config_checks(changes: dict, message: str) -> None:
    options = {"data": "x.jsonl", "sampler": "openai:m", **changes}
    with pytest.raises(ConfigurationError, match=message):
        RFTSampleConfig(**options)


def test_sampling_at_temperature_zero_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="temperature > 0"):
        JudgementSampler(ScriptedSampler({}).backend(), temperature=0.0)
