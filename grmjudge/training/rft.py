"""Stage 1 data: rejection sampling for rejective fine-tuning (RFT; METHOD.md §10).

For every item the sampler draws ``N`` (default 3) non-hinted judgements, each with a fresh shuffle of the
responses, and keeps the correct ones (strict rule, METHOD.md §6). An item whose ``N`` samples are **all**
correct is "too easy" and dropped whole. One hinted judgement ("The best response is: Response j", j as
shown) is kept if it is correct. The SFT example is (prompt = the rendered template **without** the hint,
completion = the kept judgement), so the training prompt is exactly the inference-time prompt.

``hint_mode`` chooses which items get the hinted pass: ``both`` (every item that is not too easy; default),
``fallback`` (only items with no correct non-hinted sample), ``off`` (no hinted pass) or ``only`` (hinted
pass only, for the paper's ablation). Single-response items (0/1 template) never get a hint: "the best
response" is undefined for one response.

Output directory: ``records.jsonl`` (one line per finished item, so a stopped run resumes where it left
off), ``sft.jsonl`` (prompt-completion rows for TRL's ``SFTTrainer``), ``stats.json`` and ``run_card.json``.
Needs no ML framework: the sampler is any grmjudge backend (vLLM or another OpenAI-compatible server,
Anthropic, a local transformers model).
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel, Field

from grmjudge.backends.base import Backend
from grmjudge.exceptions import ConfigurationError
from grmjudge.journal import Journal
from grmjudge.prompts import PromptTemplate, judge_messages
from grmjudge.rows import write_jsonl
from grmjudge.training._runcard import write_run_card
from grmjudge.training._runner import RunProgress, run_items
from grmjudge.training._sampler import Judgement, JudgementSampler, sampler_backend, sampler_from_config
from grmjudge.training.config import SampleOptions, option
from grmjudge.training.data import SPCTExample
from grmjudge.voting import apply_permutation

__all__ = [
    "HINT_MODES",
    "PassStats",
    "RFTSampleConfig",
    "RFTStats",
    "RejectionSampler",
    "export_sft_rows",
    "rft_stats",
    "run_rft_sampling",
]

HintMode = Literal["both", "fallback", "off", "only"]
HINT_MODES: tuple[str, ...] = ("both", "fallback", "off", "only")
RECORDS_FILE = "records.jsonl"
SFT_FILE = "sft.jsonl"
STATS_FILE = "stats.json"


@dataclass
class RFTSampleConfig(SampleOptions):
    """``train rft-sample``: rejection-sample judgements from a strong sampler model."""

    output_dir: str = option("rft-data", "Directory for records.jsonl, sft.jsonl, stats.json and run_card.json.")
    temperature: float = option(1.0, "Sampling temperature (not given by the paper).")
    hint_mode: str = option("both", "Which items get the hinted sample.", choices=list(HINT_MODES))

    def __post_init__(self) -> None:
        self.check_sample_options()
        if self.hint_mode not in HINT_MODES:
            raise ConfigurationError(f"--hint-mode must be one of {', '.join(HINT_MODES)}, got {self.hint_mode!r}")
        if self.samples_per_item < 1 and self.hint_mode != "only":
            raise ConfigurationError("--samples-per-item must be at least 1 (or use --hint-mode only)")


class PassStats(BaseModel):
    """Counts for the non-hinted or the hinted pass."""

    drawn: int = 0
    correct: int = 0
    kept: int = 0
    rejected: int = 0
    ties: int = 0
    parse_failures: dict[str, int] = Field(default_factory=dict[str, int])


class SourceStats(BaseModel):
    """Per-source counts and acceptance rates (kept / drawn)."""

    items: int = 0
    items_kept: int = 0
    too_easy: int = 0
    examples: int = 0
    non_hinted_acceptance: float | None = None
    hinted_acceptance: float | None = None


class RFTStats(BaseModel):
    """The report of a sampling run, computed from every record (so a resumed run reports totals)."""

    hint_mode: str
    samples_per_item: int
    items: int
    items_kept: int
    too_easy: int
    rejected_items: int
    examples: int
    non_hinted: PassStats
    hinted: PassStats
    by_source: dict[str, SourceStats]
    backend_failed_ids: list[str] = Field(default_factory=list[str])
    skipped_done: int = 0
    repaired_partial_line: bool = False


class RejectionSampler:
    """Rejection sampling of one item at a time; `run` drives many items and writes the outputs."""

    def __init__(self, sampler: JudgementSampler, *, samples_per_item: int = 3, hint_mode: HintMode = "both") -> None:
        if hint_mode not in HINT_MODES:
            raise ConfigurationError(f"hint_mode must be one of {', '.join(HINT_MODES)}, got {hint_mode!r}")
        self.sampler = sampler
        self.samples_per_item = 0 if hint_mode == "only" else samples_per_item
        self.hint_mode = hint_mode

    async def sample_item(self, example: SPCTExample) -> dict[str, Any] | None:
        """The item's record, or ``None`` if the backend failed (the item is then retried on resume)."""
        judgements: list[Judgement] = []
        if self.samples_per_item:
            judgements = await self.sampler.draw(example, self.samples_per_item, "rft")
        too_easy = bool(judgements) and all(j.correct for j in judgements)
        if not too_easy and self._wants_hint(example, judgements) and not _failed(judgements):
            judgements.append(await self.sampler.draw_hinted(example, "rft"))
        if _failed(judgements):
            return None
        kept = not too_easy and any(j.correct for j in judgements)
        template = self.sampler.template_for(example)
        return {
            "id": example.id,
            "source": example.source,
            "status": "too_easy" if too_easy else "kept" if kept else "rejected",
            "hint_mode": self.hint_mode,
            "samples_per_item": self.samples_per_item,
            "template_id": template.id,
            "template_hash": template.hash,
            "example": example.model_dump(mode="json"),
            "judgements": [j.to_record() for j in judgements],
        }

    async def run(
        self,
        examples: Iterable[SPCTExample],
        output_dir: str | Path,
        *,
        concurrency: int = 16,
        progress: TextIO | None = None,
    ) -> RFTStats:
        """Sample every item not yet recorded in ``output_dir``, then write ``sft.jsonl`` and ``stats.json``.

        ``progress`` (e.g. ``sys.stderr``) receives the progress line.
        """
        out = Path(output_dir)
        templates = {t.hash: t for t in (self.sampler.template, self.sampler.single_template)}
        journal = Journal(out / RECORDS_FILE, kind="records file")
        self._check_resumable(journal.read(), templates)
        run = await run_items(examples, self.sample_item, journal, concurrency=concurrency, progress=progress)
        records = list(journal.read())
        write_jsonl(out / SFT_FILE, export_sft_rows(records, templates))
        stats = rft_stats(records, hint_mode=self.hint_mode, samples_per_item=self.samples_per_item, progress=run)
        (out / STATS_FILE).write_text(stats.model_dump_json(indent=2) + "\n", encoding="utf-8")
        return stats

    def _check_resumable(self, records: Iterable[Mapping[str, Any]], templates: Mapping[str, PromptTemplate]) -> None:
        """A resumed run must sample as the run it continues did, or its data would mix two procedures."""
        for record in records:
            settings = (record["hint_mode"], record["samples_per_item"])
            if settings != (self.hint_mode, self.samples_per_item) or record["template_hash"] not in templates:
                raise ConfigurationError(
                    f"record {record['id']!r} was sampled with hint_mode={settings[0]!r}, samples_per_item="
                    f"{settings[1]} and template {record['template_id']!r}, unlike this run; resume with the same "
                    "settings or use a fresh output directory"
                )

    def _wants_hint(self, example: SPCTExample, judgements: Sequence[Judgement]) -> bool:
        if example.best is None or self.hint_mode == "off":
            return False
        if self.hint_mode == "fallback":
            return not any(j.correct for j in judgements)
        return True


def _failed(judgements: Sequence[Judgement]) -> bool:
    return any(j.backend_error is not None for j in judgements)


def export_sft_rows(
    records: Iterable[Mapping[str, Any]], templates: Mapping[str, PromptTemplate]
) -> Iterator[dict[str, Any]]:
    """Prompt-completion rows of the kept judgements: the prompt without the hint, in the order sampled.

    ``templates`` maps template hashes to templates; a record sampled with a template not given raises
    [`ConfigurationError`][grmjudge.exceptions.ConfigurationError] (a resumed run must keep its templates).
    """
    for record in records:
        if record["status"] != "kept":
            continue
        template = templates.get(record["template_hash"])
        if template is None:
            raise ConfigurationError(
                f"record {record['id']!r} was sampled with template {record['template_id']!r} "
                f"(hash {record['template_hash']}), not with this run's; use a fresh output directory"
            )
        example = SPCTExample.model_validate(record["example"])
        for index, raw in enumerate(record["judgements"]):
            judgement = Judgement.from_record(raw)
            if not judgement.correct or judgement.text is None:
                continue
            shown = apply_permutation(example.responses, judgement.permutation)
            prompt = judge_messages(template, example.query, shown)
            yield {
                "prompt": [m.model_dump() for m in prompt],
                "completion": [{"role": "assistant", "content": judgement.text}],
                "id": f"{example.id}/{index}",
                "item_id": example.id,
                "source": example.source,
                "hinted": judgement.hinted,
            }


def rft_stats(
    records: Sequence[Mapping[str, Any]],
    *,
    hint_mode: str,
    samples_per_item: int,
    progress: RunProgress | None = None,
) -> RFTStats:
    """Kept / rejected / too-easy / parse-failure counts over all records, overall and per source."""
    passes = {False: _PassCounter(), True: _PassCounter()}
    sources: dict[str, _SourceCounter] = defaultdict(_SourceCounter)
    status = Counter(record["status"] for record in records)
    for record in records:
        source = sources[record["source"]]
        source.items += 1
        source.items_kept += record["status"] == "kept"
        source.too_easy += record["status"] == "too_easy"
        for raw in record["judgements"]:
            judgement = Judgement.from_record(raw)
            kept = record["status"] == "kept" and judgement.correct
            passes[judgement.hinted].add(judgement, kept)
            source.add(judgement, kept)
    progress = progress or RunProgress()
    return RFTStats(
        hint_mode=hint_mode,
        samples_per_item=samples_per_item,
        items=len(records),
        items_kept=status["kept"],
        too_easy=status["too_easy"],
        rejected_items=status["rejected"],
        examples=sum(p.stats.kept for p in passes.values()),
        non_hinted=passes[False].stats,
        hinted=passes[True].stats,
        by_source={name: counter.stats() for name, counter in sorted(sources.items())},
        backend_failed_ids=progress.failed_ids,
        skipped_done=progress.skipped_done,
        repaired_partial_line=progress.repaired_partial_line,
    )


class _PassCounter:
    def __init__(self) -> None:
        self.stats = PassStats()

    def add(self, judgement: Judgement, kept: bool) -> None:
        s = self.stats
        s.drawn += 1
        s.correct += judgement.correct
        s.kept += kept
        s.rejected += not judgement.correct
        s.ties += judgement.tie
        if judgement.failure is not None:
            s.parse_failures[judgement.failure] = s.parse_failures.get(judgement.failure, 0) + 1


class _SourceCounter:
    def __init__(self) -> None:
        self.items = 0
        self.items_kept = 0
        self.too_easy = 0
        self.drawn = {False: 0, True: 0}
        self.kept = {False: 0, True: 0}

    def add(self, judgement: Judgement, kept: bool) -> None:
        self.drawn[judgement.hinted] += 1
        self.kept[judgement.hinted] += kept

    def stats(self) -> SourceStats:
        def rate(hinted: bool) -> float | None:
            return self.kept[hinted] / self.drawn[hinted] if self.drawn[hinted] else None

        return SourceStats(
            items=self.items,
            items_kept=self.items_kept,
            too_easy=self.too_easy,
            examples=sum(self.kept.values()),
            non_hinted_acceptance=rate(False),
            hinted_acceptance=rate(True),
        )


async def run_rft_sampling(config: RFTSampleConfig, *, backend: Backend | None = None) -> RFTStats:
    """Load the data, rejection-sample it, write the outputs and the run card; closes a backend it built."""
    report = config.load_data()
    own = backend is None
    assert config.sampler is not None  # checked in __post_init__
    backend = backend or sampler_backend(config.sampler, config.sampler_base_url)
    try:
        sampler = sampler_from_config(backend, config)
        rejection = RejectionSampler(
            sampler,
            samples_per_item=config.samples_per_item,
            hint_mode=config.hint_mode,  # pyright: ignore[reportArgumentType]  (checked in __post_init__)
        )
        stats = await rejection.run(
            report.examples, config.output_dir, concurrency=config.concurrency, progress=sys.stderr
        )
    finally:
        if own:
            await backend.aclose()
    results = {"data": report.summary(), "stats": stats.model_dump(), "usage": sampler.usage.model_dump()}
    write_run_card(config.output_dir, "rft-sample", config, data_files=[config.data], results=results)
    return stats
