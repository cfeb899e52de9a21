"""Score one setting of a run: per-item values over subset draws, subset estimates, sections, bootstrap CIs."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from grmjudge._optional import require
from grmjudge.adaptive import AdaptivePlan, AdaptivePolicy
from grmjudge.eval.estimates import MeanEstimate, SubsetEstimate, TiesEstimate, TiesGroup, bootstrap_rng
from grmjudge.eval.items import Call, EvalItem, LoadedBenchmark, TiesLabel
from grmjudge.eval.outcomes import TiePolicy, item_value, ties_scores
from grmjudge.eval.scaling import CallRecord, Setting, draw_totals, replay, tie_rng
from grmjudge.eval.scorecards import Scorecard, scorecard
from grmjudge.settings import ShuffleMode
from grmjudge.voting import default_k_meta

CI_LEVEL = 0.95


@dataclass(frozen=True)
class SettingScore:
    """A setting's scorecard, a bootstrap interval for each of its numbers, and how many calls had no verdict.

    ``samples`` is how many samples each item's calls used (k per call, or what the adaptive rule drew);
    ``overall_replicates`` the bootstrap replicates of the overall score, paired across settings.
    """

    setting: Setting
    card: Scorecard
    intervals: dict[str, tuple[float, float]]
    sizes: dict[str, int]
    no_verdict: float
    calls: int
    extra: dict[str, Any] = field(default_factory=dict[str, Any])
    samples: tuple[int, ...] = ()
    samples_ci: tuple[float, float] | None = None
    overall_replicates: tuple[float, ...] = ()


@dataclass(frozen=True)
class ScoringPlan:
    """Everything a setting's score depends on besides the records."""

    policy: TiePolicy
    seed: int
    k_meta: int | None
    bootstrap: int
    adaptive: AdaptivePolicy | None = None
    shuffle: ShuffleMode = ShuffleMode.BALANCED

    def adaptive_plan(self, setting: Setting, call: Call) -> AdaptivePlan | None:
        """The stopping rule's plan for one call of an adaptive setting (``None`` for the other settings)."""
        if not setting.adaptive or self.adaptive is None:
            return None
        shuffle = ShuffleMode.NONE if call.fixed_order else self.shuffle
        k_meta = (self.k_meta or default_k_meta(setting.k)) if setting.meta else None
        return AdaptivePlan(self.adaptive, setting.k, len(call.responses), shuffle, k_meta)


def score_setting(
    benchmark: LoadedBenchmark, setting: Setting, records: Mapping[str, CallRecord], plan: ScoringPlan
) -> SettingScore:
    """Per-item values (averaged over the setting's draws), subset estimates, the scorecard and its intervals."""
    values: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    ties: dict[tuple[str, str], TiesGroup] = {}
    ties_subset: dict[tuple[str, str], str] = {}
    missing = 0
    samples: list[int] = []
    for item in benchmark.items:
        by_call = [
            draw_totals(records.get(c.id), setting, plan.seed, plan.k_meta, plan.adaptive_plan(setting, c))
            for c in item.calls
        ]
        samples.append(sum(_samples(records.get(c.id), setting, plan.adaptive_plan(setting, c)) for c in item.calls))
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
    intervals, overall = _intervals(benchmark.name, estimates, sizes, plan)
    n_calls = sum(len(item.calls) for item in benchmark.items)
    no_verdict = missing / max(setting.draws, 1)
    return SettingScore(
        setting,
        card,
        intervals,
        sizes,
        no_verdict,
        n_calls,
        samples=tuple(samples),
        samples_ci=_mean_interval(samples, plan),
        overall_replicates=overall,
    )


def _mean_interval(values: Sequence[int], plan: ScoringPlan) -> tuple[float, float] | None:
    """A bootstrap interval of the mean of per-item values (items resampled with replacement)."""
    if plan.bootstrap <= 0 or not values:
        return None
    np = require("numpy", extra="eval")
    data = np.asarray(values, dtype=np.float64)
    rng = bootstrap_rng(plan.seed, "samples per item")
    means = [float(data[rng.integers(0, len(data), len(data))].mean()) for _ in range(plan.bootstrap)]
    return percentile_interval(means)


def _samples(record: CallRecord | None, setting: Setting, adaptive: AdaptivePlan | None) -> int:
    """Samples a call uses under ``setting``: 1 greedy, k voting, what the rule drew adaptive."""
    if setting.kind == "greedy":
        return 1
    if adaptive is not None and record is not None and record.error is None and record.votes:
        return replay(record, adaptive)[1]
    return setting.k


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
) -> tuple[dict[str, tuple[float, float]], tuple[float, ...]]:
    """Percentile intervals of every number from stratified bootstrap replicates, and the overall's replicates."""
    if plan.bootstrap <= 0 or not estimates:
        return {}, ()
    replicates = {name: e.replicates(bootstrap_rng(plan.seed, name), plan.bootstrap) for name, e in estimates.items()}
    collected: dict[str, list[float]] = defaultdict(list)
    for b in range(plan.bootstrap):
        card = scorecard(
            benchmark, {name: tuple(float(x) for x in reps[b]) for name, reps in replicates.items()}, sizes
        )
        for key, number in card.numbers().items():
            collected[key].append(number)
    intervals = {key: percentile_interval(numbers) for key, numbers in collected.items()}
    return intervals, tuple(collected.get("overall", ()))


def percentile_interval(values: Sequence[float]) -> tuple[float, float]:
    """The central ``CI_LEVEL`` percentile interval of bootstrap replicates."""
    np = require("numpy", extra="eval")
    tail = (1 - CI_LEVEL) / 2 * 100
    return float(np.percentile(values, tail)), float(np.percentile(values, 100 - tail))
