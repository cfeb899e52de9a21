"""Stage 2 data: GRPO rows with the permutation the prompt was rendered with, and the "too easy" pre-filter.

Each row is one item rendered with one seeded random response order; the row carries that ``permutation``
and the label in the item's own order (``best`` / ``rating``), so `spct_reward` checks every completion in
the order the model saw. With ±1 rewards an item the policy always gets right (or always wrong) gives a
group of equal rewards and no gradient, so the paper removed items that DeepSeek-V2-Lite-Chat got right in
all of 3 samples; `prefilter` does the same with any reference backend. Needs no ML framework.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from grmjudge.journal import Journal
from grmjudge.prompts import PromptTemplate, judge_messages
from grmjudge.settings import ShuffleMode
from grmjudge.training._runner import run_items
from grmjudge.training._sampler import Judgement, JudgementSampler
from grmjudge.training.data import SPCTExample
from grmjudge.voting import apply_permutation, derive_seed, plan_permutations

__all__ = ["PrefilterReport", "grpo_rows", "prefilter"]


def grpo_rows(
    examples: Iterable[SPCTExample], template: PromptTemplate, single_template: PromptTemplate, *, seed: int = 0
) -> list[dict[str, Any]]:
    """One conversational GRPO row per item: the judge prompt in a seeded random order, and the label columns."""
    rows: list[dict[str, Any]] = []
    for example in examples:
        chosen = single_template if example.n == 1 else template
        rng = random.Random(derive_seed(seed, "grpo", example.id, "order"))
        perm = plan_permutations(example.n, 1, ShuffleMode.RANDOM, rng)[0]
        prompt = judge_messages(chosen, example.query, apply_permutation(example.responses, perm))
        rows.append(
            {
                "prompt": [m.model_dump() for m in prompt],
                "id": example.id,
                "source": example.source,
                "best": example.best,
                "rating": example.rating,
                "permutation": list(perm),
                "template_id": chosen.id,
            }
        )
    return rows


@dataclass(frozen=True)
class PrefilterReport:
    """The items kept for RL, and the ids removed as too easy (all correct) or always wrong."""

    kept: list[SPCTExample]
    too_easy_ids: list[str]
    always_wrong_ids: list[str]
    backend_failed_ids: list[str]


async def prefilter(
    examples: Sequence[SPCTExample],
    sampler: JudgementSampler,
    records_dir: str | Path,
    *,
    k: int = 3,
    drop_always_wrong: bool = False,
    concurrency: int = 16,
    progress: TextIO | None = None,
) -> PrefilterReport:
    """Sample ``k`` judgements per item from a reference backend and drop the items it always gets right.

    ``drop_always_wrong`` also drops items with no correct sample (they give no signal either, but may be
    label noise or simply hard). Samples are recorded in ``records_dir/records.jsonl``, so an interrupted
    filter resumes; an item whose backend failed is kept (and its id reported). ``progress`` (e.g. ``sys.stderr``)
    receives the progress line.
    """

    async def job(example: SPCTExample) -> dict[str, Any] | None:
        judgements = await sampler.draw(example, k, "prefilter")
        if any(j.backend_error is not None for j in judgements):
            return None
        return {"id": example.id, "judgements": [j.to_record() for j in judgements]}

    journal = Journal(Path(records_dir) / "records.jsonl", kind="records file")
    run = await run_items(examples, job, journal, concurrency=concurrency, progress=progress)
    outcomes = {
        record["id"]: [Judgement.from_record(j).correct for j in record["judgements"]] for record in journal.read()
    }
    kept: list[SPCTExample] = []
    too_easy: list[str] = []
    always_wrong: list[str] = []
    for example in examples:
        correct = outcomes.get(example.id)
        if correct and all(correct):
            too_easy.append(example.id)
        elif correct is not None and drop_always_wrong and not any(correct):
            always_wrong.append(example.id)
        else:
            kept.append(example)
    return PrefilterReport(kept, too_easy, always_wrong, run.failed_ids)
