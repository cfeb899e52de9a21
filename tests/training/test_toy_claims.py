"""The toy report's claims: a paired bootstrap on the same items, stratified by task family."""

from __future__ import annotations

import random

import pytest

pytest.importorskip("numpy")

from grmjudge.eval.report import CurvePoint, EvalReport
from grmjudge.training.toy.claims import CLAIMS, Claim, ClaimResult, paired_difference, scaling_claims
from grmjudge.training.toy.report import render_claims


def _items(n: int, seed: int = 0) -> tuple[dict[str, float], dict[str, str]]:
    rng = random.Random(seed)
    values = {f"item-{i}": float(rng.random() < 0.6) for i in range(n)}
    families = {item: ("sum", "sort", "count", "largest")[i % 4] for i, item in enumerate(values)}
    return values, families


def test_a_setting_against_itself_differs_by_nothing() -> None:
    values, families = _items(200)
    difference, ci, share = paired_difference(values, values, families, seed=0, replicates=200)
    assert difference == 0 and ci == (0.0, 0.0) and share == 0


def test_a_small_gain_on_a_few_items_is_resolved_by_pairing() -> None:
    worse, families = _items(1000)
    better = dict(worse)
    for item in list(better)[::25]:  # 40 items flip from wrong to right: +4 points
        better[item] = 1.0 if worse[item] == 0 else better[item]
    gained = sum(better.values()) - sum(worse.values())
    difference, (low, high), share = paired_difference(better, worse, families, seed=0, replicates=500)
    assert difference == pytest.approx(gained / 1000)
    assert 0 < low <= difference <= high and share == 1.0


def test_a_difference_in_noise_straddles_zero() -> None:
    first, families = _items(300, seed=1)
    second, _ = _items(300, seed=2)
    _, (low, high), share = paired_difference(first, second, families, seed=0, replicates=500)
    assert low < 0 < high and 0 < share < 1


def test_the_interval_depends_on_the_seed_only_through_the_resamples() -> None:
    better, families = _items(400, seed=3)
    worse, _ = _items(400, seed=4)
    once = paired_difference(better, worse, families, seed=5, replicates=300)
    again = paired_difference(better, worse, families, seed=5, replicates=300)
    other = paired_difference(better, worse, families, seed=6, replicates=300)
    assert once == again and once[0] == other[0] and once[1] != other[1]


def test_the_claims_cover_every_ordering_the_docs_discuss() -> None:
    texts = [c.text for c in CLAIMS]
    assert any("RFT > cold start" in t for t in texts) and "RFT + GRPO > RFT (greedy)" in texts
    assert any("MetaRM@8 > Voting@8" in t for t in texts)


def _report_with_curve(ks: list[int]) -> EvalReport:
    return EvalReport.model_construct(curve={"voting": [CurvePoint(k=k, value=0.5, ci=None) for k in ks]})


def test_voting_claims_follow_the_largest_k_the_run_drew() -> None:
    claims = scaling_claims(_report_with_curve([1, 2, 4, 8, 16]))
    assert [(c.better, c.worse) for c in claims] == [
        (("grpo", "voting@16"), ("grpo", "voting@1")),
        (("grpo", "voting@16"), ("grpo", "voting@8")),
    ]
    assert [c.text for c in scaling_claims(_report_with_curve([1, 2]))] == ["RFT + GRPO: Voting@2 > Voting@1"]
    assert scaling_claims(_report_with_curve([])) == []


def test_render_claims_says_whether_each_claim_holds() -> None:
    claim = Claim("A > B", ("rft", "greedy"), ("cold_start", "greedy"))
    table = render_claims([ClaimResult(claim, 0.05, (0.01, 0.09), 0.99), ClaimResult(claim, -0.01, (-0.04, 0.02), 0.3)])
    assert "| A > B | +5.0 | [+1.0, +9.0] | 99.0% | yes |" in table
    assert "| A > B | -1.0 | [-4.0, +2.0] | 30.0% | no |" in table
