"""The toy run's claims, each a paired bootstrap on the same held-out items.

A claim says that one (GRM, setting) scores above another: RFT above the cold start, RFT + GRPO above RFT on
greedy decoding and on one sample, Voting@k above Voting@1 and Voting@(k/2) at the run's largest k, MetaRM@8
above Voting@8.
Two intervals that overlap say little about such a difference, because both numbers come from the same items
and move together. So each claim resamples the items once per replicate and takes the difference on that
resample: the same stratified replicates (items resampled within each task family, `bootstrap_rng` seeded by
the family's name) that give the table its intervals.

Per-item values are recomputed from each GRM's eval journal with the evaluation's own rules (`draw_totals`,
`item_value`), and their mean must equal the ``results.json`` overall, so the claims and the table cannot drift
apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grmjudge._optional import require
from grmjudge.eval.estimates import MeanEstimate, bootstrap_rng
from grmjudge.eval.harness import JOURNAL
from grmjudge.eval.items import LoadedBenchmark
from grmjudge.eval.journal import read_journal
from grmjudge.eval.outcomes import TiePolicy, item_value
from grmjudge.eval.report import EvalReport
from grmjudge.eval.scaling import CallRecord, Setting, draw_totals, tie_rng
from grmjudge.exceptions import ConfigurationError
from grmjudge.journal import Journal

__all__ = [
    "CLAIMS",
    "META_CLAIMS",
    "STAGE_CLAIMS",
    "Claim",
    "ClaimResult",
    "check_claims",
    "has_setting",
    "item_values",
    "paired_difference",
    "scaling_claims",
]


@dataclass(frozen=True)
class Claim:
    """``better`` (a GRM stage and a setting name) scores above ``worse`` on the same items."""

    text: str
    better: tuple[str, str]
    worse: tuple[str, str]


STAGE_CLAIMS = (
    Claim("RFT > cold start (greedy)", ("rft", "greedy"), ("cold_start", "greedy")),
    Claim("RFT > cold start (Voting@8)", ("rft", "voting@8"), ("cold_start", "voting@8")),
    Claim("RFT + GRPO > RFT (greedy)", ("grpo", "greedy"), ("rft", "greedy")),
    Claim("RFT + GRPO > RFT (one sample, Voting@1)", ("grpo", "voting@1"), ("rft", "voting@1")),
)
"""Each training stage above the one before: greedy, as the paper reports it, and where GRPO's own objective
(the reward of one sample at the rollout temperature) is measured, Voting@1."""

META_CLAIMS = (Claim("RFT + GRPO: MetaRM@8 > Voting@8", ("grpo", "metarm@8"), ("grpo", "voting@8")),)
"""The meta RM's guided voting above plain voting at the same k."""

CLAIMS = (*STAGE_CLAIMS, *META_CLAIMS)
"""The orderings between GRMs and the meta RM's; `scaling_claims` adds Voting@k's."""


def scaling_claims(report: EvalReport, stage: str = "grpo") -> list[Claim]:
    """Voting@k rising with k for ``stage``: its largest k above k = 1 and above half that k (k >= 4)."""
    top = max((p.k for p in report.curve.get("voting", [])), default=1)
    claims = [Claim(f"RFT + GRPO: Voting@{top} > Voting@1", (stage, f"voting@{top}"), (stage, "voting@1"))]
    if top >= 4:
        half = top // 2
        claims.append(
            Claim(f"RFT + GRPO: Voting@{top} > Voting@{half}", (stage, f"voting@{top}"), (stage, f"voting@{half}"))
        )
    return claims if top > 1 else []


@dataclass(frozen=True)
class ClaimResult:
    """A claim's difference (better minus worse, a fraction), its 95% interval and the share of replicates > 0."""

    claim: Claim
    difference: float
    ci: tuple[float, float]
    share_above_zero: float

    @property
    def holds(self) -> bool:
        """Whether the whole 95% interval lies above zero."""
        return self.ci[0] > 0


def item_values(benchmark: LoadedBenchmark, report: EvalReport, setting_name: str, eval_dir: Path) -> dict[str, float]:
    """Each item's credit under one setting or curve point of a finished evaluation (averaged over its draws).

    The mean over items must equal the report's number; a mismatch raises `ConfigurationError`.
    """
    setting, expected = _setting(report, setting_name, eval_dir)
    sampling = report.settings["greedy"].provenance["sampling"]
    seed, k_meta = int(sampling["seed"]), sampling["k_meta"]
    records = _records(eval_dir / JOURNAL, "greedy" if setting.kind == "greedy" else "sampled")
    policy = TiePolicy(report.protocol["tie_policy"])
    values: dict[str, float] = {}
    for item in benchmark.items:
        record = records.get(item.calls[0].id)
        pool = len(record.votes) if record is not None else 0
        credits = [
            item_value(item, [totals], policy, lambda call_id, d=draw, n=pool: tie_rng(seed, call_id, setting, n, d))[0]
            for draw, totals in enumerate(draw_totals(record, setting, seed, k_meta))
        ]
        values[item.id] = sum(credits) / len(credits)
    mean = sum(values.values()) / len(values)
    if abs(mean - expected) > 1e-9:
        raise ConfigurationError(
            f"{eval_dir}: {setting_name} recomputed per item is {mean:.6f}, the report says {expected:.6f}"
        )
    return values


def _setting(report: EvalReport, name: str, eval_dir: Path) -> tuple[Setting, float]:
    """The setting a reported name stands for (a requested setting or a curve point), and its reported value."""
    found = report.settings.get(name)
    if found is not None:
        return Setting(found.kind, found.k, found.draws), found.overall.value
    kind, _, k = name.partition("@")
    points = report.curve.get(kind, [])
    point = next((p for p in points if str(p.k) == k), None)
    if kind not in ("voting", "metarm") or point is None:
        raise ConfigurationError(f"{eval_dir} has no {name} setting (the run drew fewer samples)")
    top = max(p.k for p in points)
    draws = 1 if point.k == top else int(report.protocol["subset_draws"])
    return Setting(kind, point.k, draws), point.value


def has_setting(report: EvalReport, name: str) -> bool:
    """Whether the report holds ``name`` as a setting or as a point of its Voting/MetaRM curve."""
    kind, _, k = name.partition("@")
    return name in report.settings or any(str(p.k) == k for p in report.curve.get(kind, []))


def _records(path: Path, pass_name: str) -> dict[str, CallRecord]:
    """The journal's records of one pass, checked against the fingerprint that pass was written with."""
    fingerprints = {
        str(line["pass"]): str(line["fingerprint"]) for _, line in Journal(path, kind="grmjudge eval journal").records()
    }
    if pass_name not in fingerprints:
        raise ConfigurationError(f"{path} has no record of the {pass_name} pass")
    return read_journal(path, {pass_name: fingerprints[pass_name]})[pass_name]


def paired_difference(
    better: dict[str, float], worse: dict[str, float], families: dict[str, str], *, seed: int, replicates: int
) -> tuple[float, tuple[float, float], float]:
    """Mean of ``better - worse`` over items, its stratified paired-bootstrap 95% interval, share of replicates > 0.

    ``families`` maps item id -> stratum; each replicate resamples items within every stratum (with the
    table's own per-stratum generators) and weights the strata by their sizes, as the toy's overall does.
    """
    np: Any = require("numpy", extra="eval")
    by_family: dict[str, list[tuple[float, ...]]] = defaultdict(list)
    for item_id, family in families.items():
        by_family[family].append((better[item_id], worse[item_id]))
    total = sum(len(rows) for rows in by_family.values())
    point = sum(a - b for rows in by_family.values() for a, b in rows) / total
    diffs = np.zeros(replicates)
    for family, rows in by_family.items():
        reps = MeanEstimate(rows).replicates(bootstrap_rng(seed, family), replicates)
        diffs += (reps[:, 0] - reps[:, 1]) * len(rows) / total
    low, high = np.percentile(diffs, [2.5, 97.5])
    return point, (float(low), float(high)), float((diffs > 0).mean())


def check_claims(
    benchmark: LoadedBenchmark,
    reports: dict[str, EvalReport],
    eval_root: Path,
    *,
    claims: Sequence[Claim] | None = None,
    replicates: int = 1000,
) -> list[ClaimResult]:
    """Every claim whose settings the run has (default: `CLAIMS` and `scaling_claims`), by `paired_difference`."""
    if claims is None:
        claims = [*STAGE_CLAIMS, *scaling_claims(reports["grpo"]), *META_CLAIMS]
    families = {item.id: item.subset for item in benchmark.items}
    cache: dict[tuple[str, str], dict[str, float]] = {}

    def values(stage: str, setting: str) -> dict[str, float]:
        if (stage, setting) not in cache:
            cache[stage, setting] = item_values(benchmark, reports[stage], setting, eval_root / stage)
        return cache[stage, setting]

    results: list[ClaimResult] = []
    for claim in claims:
        if not all(has_setting(reports[stage], setting) for stage, setting in (claim.better, claim.worse)):
            continue
        seed = int(reports[claim.better[0]].settings["greedy"].provenance["sampling"]["seed"])
        difference, ci, share = paired_difference(
            values(*claim.better), values(*claim.worse), families, seed=seed, replicates=replicates
        )
        results.append(ClaimResult(claim, difference, ci, share))
    return results
