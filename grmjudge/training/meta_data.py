"""Meta-RM data: sampled judgements labelled correct / incorrect by the strict rule (METHOD.md §8).

The paper trains the meta RM on (1) the non-hinted samples of the RFT stage, correct and incorrect alike,
and (2) N = 3 samples per item from the trained GRM itself, so the meta RM sees the policy it will rate.
Each row is the meta-RM chat (`grmjudge.prompts.meta_messages`: the meta template with the responses in the
order that judgement saw them, then the judgement as the assistant turn) and a 0/1 label. A judgement that
failed to parse is labelled 0 (it is wrong); a backend failure is not a judgement and is never a row.

Output directory: ``records.jsonl`` (one line per item; resumable), ``meta.jsonl`` (the rows),
``stats.json`` and ``run_card.json``. Needs no ML framework.
"""

from __future__ import annotations

import random
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel

from grmjudge.backends.base import Backend
from grmjudge.exceptions import ConfigurationError
from grmjudge.journal import Journal
from grmjudge.prompts import meta_messages
from grmjudge.rows import write_jsonl
from grmjudge.training._runcard import write_run_card
from grmjudge.training._runner import RunProgress, run_items
from grmjudge.training._sampler import Judgement, JudgementSampler, sampler_backend, sampler_from_config
from grmjudge.training.config import SampleOptions, option
from grmjudge.training.data import SPCTExample
from grmjudge.voting import apply_permutation, derive_seed

__all__ = [
    "MetaSampleConfig",
    "MetaSampleStats",
    "balance_classes",
    "meta_rows",
    "roc_auc",
    "run_meta_sampling",
    "sample_meta_records",
    "split_by_item",
]

RECORDS_FILE = "records.jsonl"
META_FILE = "meta.jsonl"
STATS_FILE = "stats.json"


@dataclass
class MetaSampleConfig(SampleOptions):
    """``train meta-sample``: sample judgements from the trained GRM and label them for the meta RM."""

    output_dir: str = option("meta-data", "Directory for records.jsonl, meta.jsonl, stats.json and run_card.json.")
    temperature: float = option(0.5, "Sampling temperature; 0.5 is the paper's inference-time temperature.")
    rft_records: list[str] | None = option(None, "RFT records.jsonl files whose non-hinted samples are added.")
    include_parse_failures: bool = option(True, "Keep judgements that failed to parse, as negatives (label 0).")

    def __post_init__(self) -> None:
        self.check_sample_options()
        if self.samples_per_item < 1:
            raise ConfigurationError("--samples-per-item must be at least 1")


class MetaSampleStats(BaseModel):
    """Rows written, by label and by origin, and the run's progress."""

    items: int
    rows: int
    positives: int
    negatives: int
    parse_failures: int
    by_origin: dict[str, int]
    backend_failed_ids: list[str]
    skipped_done: int


async def sample_meta_records(
    examples: Iterable[SPCTExample],
    sampler: JudgementSampler,
    output_dir: str | Path,
    *,
    k: int,
    concurrency: int = 16,
    progress: TextIO | None = None,
) -> RunProgress:
    """Sample ``k`` judgements of every item not yet recorded in ``output_dir/records.jsonl``.

    ``progress`` (e.g. ``sys.stderr``) receives the progress line.
    """

    async def job(example: SPCTExample) -> dict[str, Any] | None:
        judgements = await sampler.draw(example, k, "meta")
        if any(j.backend_error is not None for j in judgements):
            return None
        return {
            "id": example.id,
            "source": example.source,
            "example": example.model_dump(mode="json"),
            "judgements": [j.to_record() for j in judgements],
        }

    journal = Journal(Path(output_dir) / RECORDS_FILE, kind="records file")
    return await run_items(examples, job, journal, concurrency=concurrency, progress=progress)


def meta_rows(
    records: Iterable[Mapping[str, Any]], *, origin: str, include_parse_failures: bool = True
) -> Iterator[dict[str, Any]]:
    """One labelled meta-RM chat per non-hinted judgement of each record (RFT or meta-sample records)."""
    for record in records:
        example = SPCTExample.model_validate(record["example"])
        for index, raw in enumerate(record["judgements"]):
            judgement = Judgement.from_record(raw)
            if judgement.hinted or judgement.text is None:
                continue
            if judgement.failure is not None and not include_parse_failures:
                continue
            shown = apply_permutation(example.responses, judgement.permutation)
            messages = meta_messages(example.query, shown, judgement.text)
            yield {
                "id": f"{origin}:{example.id}/{index}",
                "item_id": example.id,
                "source": example.source,
                "origin": origin,
                "messages": [m.model_dump() for m in messages],
                "label": int(judgement.correct),
                "failure": judgement.failure,
            }


async def run_meta_sampling(config: MetaSampleConfig, *, backend: Backend | None = None) -> MetaSampleStats:
    """Load the data, sample and label judgements, add RFT samples, write ``meta.jsonl`` and the run card."""
    report = config.load_data()
    own = backend is None
    assert config.sampler is not None  # checked in __post_init__
    backend = backend or sampler_backend(config.sampler, config.sampler_base_url)
    try:
        sampler = sampler_from_config(backend, config)
        progress = await sample_meta_records(
            report.examples,
            sampler,
            config.output_dir,
            k=config.samples_per_item,
            concurrency=config.concurrency,
            progress=sys.stderr,
        )
    finally:
        if own:
            await backend.aclose()
    out = Path(config.output_dir)
    records = list(Journal(out / RECORDS_FILE).read())
    rows = list(meta_rows(records, origin="grm", include_parse_failures=config.include_parse_failures))
    for path in config.rft_records or ():
        rft = Journal(path).read()
        rows.extend(meta_rows(rft, origin="rft", include_parse_failures=config.include_parse_failures))
    write_jsonl(out / META_FILE, rows)
    stats = MetaSampleStats(
        items=len(records),
        rows=len(rows),
        positives=sum(row["label"] for row in rows),
        negatives=sum(1 - row["label"] for row in rows),
        parse_failures=sum(row["failure"] is not None for row in rows),
        by_origin=dict(Counter(row["origin"] for row in rows)),
        backend_failed_ids=progress.failed_ids,
        skipped_done=progress.skipped_done,
    )
    (out / STATS_FILE).write_text(stats.model_dump_json(indent=2) + "\n", encoding="utf-8")
    data_files = [config.data, *(config.rft_records or ())]
    results = {"data": report.summary(), "stats": stats.model_dump(), "usage": sampler.usage.model_dump()}
    write_run_card(config.output_dir, "meta-sample", config, data_files=data_files, results=results)
    return stats


def split_by_item(
    rows: Sequence[Mapping[str, Any]], eval_fraction: float, seed: int
) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    """(train, held-out) rows; all judgements of one item land on the same side, so nothing leaks."""
    train: list[Mapping[str, Any]] = []
    held_out: list[Mapping[str, Any]] = []
    for row in rows:
        draw = derive_seed(seed, "meta-split", row["item_id"]) / 0x80000000
        (held_out if draw < eval_fraction else train).append(row)
    return train, held_out


def balance_classes(rows: Sequence[Mapping[str, Any]], seed: int) -> list[Mapping[str, Any]]:
    """Down-sample the larger class to the size of the smaller (seeded), keeping the original row order."""
    positives = [i for i, row in enumerate(rows) if row["label"] == 1]
    negatives = [i for i, row in enumerate(rows) if row["label"] == 0]
    if not positives or not negatives:
        raise ConfigurationError(
            f"cannot balance meta-RM data with {len(positives)} correct and {len(negatives)} incorrect judgements; "
            "both classes are needed (sample more items, or from a weaker or stronger GRM)"
        )
    size = min(len(positives), len(negatives))
    rng = random.Random(seed)
    keep = set(rng.sample(positives, size)) | set(rng.sample(negatives, size))
    return [row for i, row in enumerate(rows) if i in keep]


def roc_auc(scores: Sequence[float], labels: Sequence[int]) -> float | None:
    """Area under the ROC curve (tied scores count one half); ``None`` unless both labels occur."""
    positives = sum(1 for label in labels if label == 1)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and scores[order[end + 1]] == scores[order[start]]:
            end += 1
        for position in range(start, end + 1):
            ranks[order[position]] = (start + end) / 2 + 1
        start = end + 1
    positive_rank_sum = sum(rank for rank, label in zip(ranks, labels, strict=True) if label == 1)
    return (positive_rank_sum - positives * (positives + 1) / 2) / (positives * negatives)
