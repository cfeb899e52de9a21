"""Score one setting of a run: per-item values over subset draws, subset estimates, sections, bootstrap CIs."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grmjudge._optional import require
from grmjudge.eval.estimates import MeanEstimate, SubsetEstimate, TiesEstimate, TiesGroup, bootstrap_rng
from grmjudge.eval.items import EvalItem, LoadedBenchmark, TiesLabel
from grmjudge.eval.outcomes import TiePolicy, item_value, ties_scores
from grmjudge.eval.scaling import CallRecord, Setting, draw_totals, tie_rng
from grmjudge.eval.scorecards import Scorecard, scorecard

CI_LEVEL = 0.95


@dataclass(frozen=True)
class SettingScore:
    """A setting's scorecard, a bootstrap interval for each of its numbers, and how many calls had no verdict."""

    setting: Setting
    card: Scorecard
    intervals: dict[str, tuple[float, float]]
    sizes: dict[str, int]
    no_verdict: float
    calls: int
    extra: dict[str, Any] = field(default_factory=dict[str, Any])


@dataclass(frozen=True)
class ScoringPlan:
    """Everything a setting's score depends on besides the records."""

    policy: TiePolicy
    seed: int
    k_meta: int | None
    bootstrap: int


def score_setting(
    benchmark: LoadedBenchmark, setting: Setting, records: Mapping[str, CallRecord], plan: ScoringPlan
) -> SettingScore:
    """Per-item values (averaged over the setting's draws), subset estimates, the scorecard and its intervals."""
    values: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    ties: dict[tuple[str, str], TiesGroup] = {}
    ties_subset: dict[tuple[str, str], str] = {}
    missing = 0
    for item in benchmark.items:
        by_call = [draw_totals(records.get(c.id), setting, plan.seed, plan.k_meta) for c in item.calls]
        missing += sum(t is None for draws in by_call for t in draws)
        per_draw = [
            _value(item, [draws[draw] for draws in by_call], setting, draw, records, plan)
            for draw in range(setting.draws)
        ]
        if isinstance(item.label, TiesLabel):
            key = (item.label.group, item.label.prompt_id)
            group = ties.setdefault(key, TiesGroup(item.label.group, item.label.prompt_id))
            group.add(item.label.num_correct, per_draw)
            ties_subset[key] = item.subset
        else:
            values[item.subset].append(tuple(sum(column) / len(column) for column in zip(*per_draw, strict=True)))
    estimates: dict[str, SubsetEstimate] = {name: MeanEstimate(v) for name, v in values.items()}
    if ties:
        estimates[next(iter(ties_subset.values()))] = TiesEstimate(list(ties.values()))
    sizes = {name: estimate.size for name, estimate in estimates.items()}
    card = scorecard(benchmark.name, {name: e.point() for name, e in estimates.items()}, sizes)
    intervals = _intervals(benchmark.name, estimates, sizes, plan)
    n_calls = sum(len(item.calls) for item in benchmark.items)
    return SettingScore(setting, card, intervals, sizes, missing / max(setting.draws, 1), n_calls)


def _value(
    item: EvalItem,
    call_totals: list[tuple[float, ...] | None],
    setting: Setting,
    draw: int,
    records: Mapping[str, CallRecord],
    plan: ScoringPlan,
) -> tuple[float, ...]:
    if isinstance(item.label, TiesLabel):
        return ties_scores(call_totals[0], len(item.calls[0].responses))

    def rng_for(call_id: str) -> random.Random:
        record = records.get(call_id)
        return tie_rng(plan.seed, call_id, setting, len(record.votes) if record else 0, draw)

    return item_value(item, call_totals, plan.policy, rng_for)


def _intervals(
    benchmark: str, estimates: Mapping[str, SubsetEstimate], sizes: Mapping[str, int], plan: ScoringPlan
) -> dict[str, tuple[float, float]]:
    """Percentile intervals of every number, from stratified bootstrap replicates of the subsets."""
    if plan.bootstrap <= 0 or not estimates:
        return {}
    np = require("numpy", extra="eval")
    replicates = {name: e.replicates(bootstrap_rng(plan.seed, name), plan.bootstrap) for name, e in estimates.items()}
    collected: dict[str, list[float]] = defaultdict(list)
    for b in range(plan.bootstrap):
        card = scorecard(
            benchmark, {name: tuple(float(x) for x in reps[b]) for name, reps in replicates.items()}, sizes
        )
        for key, number in card.numbers().items():
            collected[key].append(number)
    tail = (1 - CI_LEVEL) / 2 * 100
    return {
        key: (float(np.percentile(numbers, tail)), float(np.percentile(numbers, 100 - tail)))
        for key, numbers in collected.items()
    }
