"""The figures over every item of a run, added up one item at a time (so 100k items cost no memory per item).

Vote agreement is the share of an item's valid samples whose own winner is the verdict's best; an item is
unanimous when every valid sample names that best. Accuracy is per item, the verdict's best against the label.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from grmjudge.eval.position import PositionBias, PositionTally
from grmjudge.report.items import ItemView


@dataclass
class Section:
    """One section's (subset's) item counts."""

    items: int = 0
    labelled: int = 0
    right: int = 0
    no_verdict: int = 0


@dataclass
class Summary:
    """Every figure of the report's summary; ``add`` one item, then read the fields."""

    items: int = 0
    verdicts: int = 0
    errors: Counter[str] = field(default_factory=Counter[str])
    no_verdict_reasons: Counter[str] = field(default_factory=Counter[str])
    samples: int = 0
    valid_samples: int = 0
    sample_failures: Counter[str] = field(default_factory=Counter[str])
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    tokens_reported: bool = False
    labelled: int = 0
    right: int = 0
    scores: Counter[int] = field(default_factory=Counter[int])
    agreement: Counter[int] = field(default_factory=Counter[int])
    agreement_sum: float = 0.0
    agreement_items: int = 0
    unanimous: int = 0
    split: int = 0
    spreads: Counter[int] = field(default_factory=Counter[int])
    meta_items: int = 0
    meta_valid: int = 0
    meta_kept: int = 0
    meta_scores_kept: list[float] = field(default_factory=list[float])
    meta_scores_dropped: list[float] = field(default_factory=list[float])
    sections: dict[str, Section] = field(default_factory=dict[str, Section])
    position: PositionTally = field(default_factory=PositionTally)

    def add(self, item: ItemView) -> None:
        """Count one item."""
        self.items += 1
        self.verdicts += item.verdict
        if item.error is not None:
            self.errors[item.error] += 1
        elif not item.verdict:
            self.no_verdict_reasons.update(item.failures.keys() or ["no samples"])
        self._add_samples(item)
        if item.label is not None and item.verdict:
            self.labelled += 1
            self.right += not item.wrong
        agreement = item.agreement
        if agreement is not None:
            self.agreement_items += 1
            self.agreement_sum += agreement
            self.agreement[min(9, int(agreement * 10))] += 1
            self.unanimous += agreement == 1.0
        self.split += item.split
        self.spreads[item.spread] += 1
        if item.section is not None:
            section = self.sections.setdefault(item.section, Section())
            section.items += 1
            section.no_verdict += not item.verdict
            if item.label is not None and item.verdict:
                section.labelled += 1
                section.right += not item.wrong
        self.position.add(((s.shown, s.scores) for s in item.samples), item.label)

    def _add_samples(self, item: ItemView) -> None:
        self.requests += item.requests
        if item.prompt_tokens is not None or item.completion_tokens is not None:
            self.tokens_reported = True
            self.prompt_tokens += item.prompt_tokens or 0
            self.completion_tokens += item.completion_tokens or 0
        if item.meta:
            self.meta_items += 1
        for sample in item.samples:
            self.samples += 1
            if sample.scores is None:
                self.sample_failures[sample.failure or "unknown"] += 1
                continue
            self.valid_samples += 1
            self.scores.update(sample.scores)
            if item.meta:
                self.meta_valid += 1
                self.meta_kept += sample.kept
                if sample.meta is not None:
                    (self.meta_scores_kept if sample.kept else self.meta_scores_dropped).append(sample.meta)

    @property
    def position_bias(self) -> PositionBias:
        """The position-bias figures of every item so far."""
        return self.position.figures()
