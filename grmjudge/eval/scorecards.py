"""From subset scores to a benchmark's sections and overall score, by each benchmark's official rule.

Every rule here is a function of the subset scores and sizes only, so the same function turns bootstrap
replicates of the subsets into replicates of the sections and the overall score.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from grmjudge.eval.constants import (
    EXAMPLE_COUNTS,
    PPE_CORRECTNESS_SETS,
    PRIOR_SETS_SCORED,
    RB2_SUBSETS,
    RM_BENCH_DOMAINS,
    RMB_SUBSETS,
    SUBSET_MAPPING,
)

SubsetScores = Mapping[str, tuple[float, ...]]
"""Subset name -> score vector (one number; RM-Bench: hard, normal, easy)."""

RM_BENCH_LEVELS = ("hard", "normal", "easy")
PAPER_COLUMNS = {"rewardbench": "RB", "ppe-preference": "PPE-P", "ppe-correctness": "PPE-C", "rmb": "RMB"}
"""The four benchmarks of DeepSeek-GRM's Overall and their column names in its tables."""


@dataclass(frozen=True)
class Scorecard:
    """A benchmark's numbers: the headline score, its sections, the subset scores, and extra reported numbers."""

    overall: float
    sections: dict[str, float] = field(default_factory=dict[str, float])
    subsets: dict[str, float] = field(default_factory=dict[str, float])
    extras: dict[str, float] = field(default_factory=dict[str, float])

    def numbers(self) -> dict[str, float]:
        """Every number, keyed ``overall``, ``section:NAME``, ``subset:NAME`` and ``extra:NAME``."""
        out = {"overall": self.overall}
        out.update({f"section:{k}": v for k, v in self.sections.items()})
        out.update({f"subset:{k}": v for k, v in self.subsets.items()})
        out.update({f"extra:{k}": v for k, v in self.extras.items()})
        return out


def scorecard(benchmark: str, scores: SubsetScores, sizes: Mapping[str, int]) -> Scorecard:
    """The benchmark's official aggregation of its subset scores."""
    return _RULES[benchmark](scores, sizes)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def _ordered(scores: SubsetScores, order: tuple[str, ...]) -> dict[str, float]:
    known = {name: scores[name][0] for name in order if name in scores}
    others = {name: value[0] for name, value in sorted(scores.items()) if name not in order}
    return known | others


def _rewardbench(scores: SubsetScores, sizes: Mapping[str, int]) -> Scorecard:
    """Sections weight subsets by EXAMPLE_COUNTS (``calculate_scores_per_section``); RB is their plain mean."""
    del sizes
    subsets = _ordered(scores, tuple(EXAMPLE_COUNTS))
    sections: dict[str, float] = {}
    for section, members in SUBSET_MAPPING.items():
        present = [m for m in members if m in scores]
        if present:
            weight = sum(EXAMPLE_COUNTS[m] for m in present)
            sections[section] = sum(scores[m][0] * EXAMPLE_COUNTS[m] for m in present) / weight
    overall = _mean(list(sections.values()))
    extras: dict[str, float] = {}
    prior = [scores[name][0] for name in PRIOR_SETS_SCORED if name in scores]
    if prior:
        sections["Prior Sets"] = _mean(prior)
        core = [v for k, v in sections.items() if k != "Prior Sets"]
        extras["RB with Prior Sets"] = (2 * sum(core) + sections["Prior Sets"]) / (2 * len(core) + 1)
    return Scorecard(overall, sections, subsets, extras)


def _rewardbench2(scores: SubsetScores, sizes: Mapping[str, int]) -> Scorecard:
    """The leaderboard score is the plain mean of the six subset scores."""
    del sizes
    subsets = _ordered(scores, RB2_SUBSETS)
    return Scorecard(_mean(list(subsets.values())), {}, subsets)


def _plain_mean(order: tuple[str, ...]) -> Callable[[SubsetScores, Mapping[str, int]], Scorecard]:
    def rule(scores: SubsetScores, sizes: Mapping[str, int]) -> Scorecard:
        del sizes
        subsets = _ordered(scores, order)
        return Scorecard(_mean(list(subsets.values())), {}, subsets)

    return rule


def _rm_bench(scores: SubsetScores, sizes: Mapping[str, int]) -> Scorecard:
    """Domain = mean(hard, normal, easy); each level = mean over domains; overall = mean of the domains."""
    del sizes
    domains = [d for d in RM_BENCH_DOMAINS if d in scores]
    sections = {d.capitalize(): _mean(list(scores[d])) for d in domains}
    for level, name in enumerate(RM_BENCH_LEVELS):
        sections[name.capitalize()] = _mean([scores[d][level] for d in domains])
    subsets = {f"{d} {name}": scores[d][level] for d in domains for level, name in enumerate(RM_BENCH_LEVELS)}
    return Scorecard(_mean([sections[d.capitalize()] for d in domains]), sections, subsets)


def _judgebench(scores: SubsetScores, sizes: Mapping[str, int]) -> Scorecard:
    """Overall is correct pairs over all pairs, so categories weigh by their sizes."""
    order = ("Knowledge", "Reasoning", "Math", "Coding")
    return Scorecard(_item_weighted(scores, sizes).overall, {}, _ordered(scores, order))


def _item_weighted(scores: SubsetScores, sizes: Mapping[str, int]) -> Scorecard:
    """Accuracy over all items: the subsets weighted by their sizes (the toy SPCT task families)."""
    total = sum(sizes[name] for name in scores)
    overall = sum(scores[name][0] * sizes[name] for name in scores) / total if total else float("nan")
    return Scorecard(overall, {}, _ordered(scores, ()))


_RULES: dict[str, Callable[[SubsetScores, Mapping[str, int]], Scorecard]] = {
    "rewardbench": _rewardbench,
    "rewardbench2": _rewardbench2,
    "ppe-preference": _plain_mean(("human preference",)),
    "ppe-correctness": _plain_mean(tuple(PPE_CORRECTNESS_SETS.values())),
    "rmb": _plain_mean(RMB_SUBSETS),
    "rm-bench": _rm_bench,
    "judgebench": _judgebench,
    "toy-spct": _item_weighted,
}


def paper_overall(scores: Mapping[str, float]) -> float | None:
    """DeepSeek-GRM's Overall: the plain mean of RB, PPE-P, PPE-C and RMB, or ``None`` unless all four are given.

    ``scores`` maps benchmark names (``rewardbench``, ``ppe-preference``, ``ppe-correctness``, ``rmb``) to their
    overall scores; RB must be the score without prior sets, which is what ``overall`` always is.
    """
    if any(name not in scores for name in PAPER_COLUMNS):
        return None
    return sum(scores[name] for name in PAPER_COLUMNS) / len(PAPER_COLUMNS)
