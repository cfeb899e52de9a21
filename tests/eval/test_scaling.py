"""Scaling curves from one pass, against the binomial expectation.

The judge is a FunctionBackend whose every sample is independently right with probability P: it scores the
labelled-better response 6 and the other 4, or, with probability 1 - P, the reverse (seeded by the request seed,
so the test is deterministic). With the sum of k such votes the better response wins iff more than k/2 samples
are right; PPE's official rule counts a tie at k/2 as wrong. So Voting@k = P(X > k/2), X ~ Binomial(k, P).

A k-subset of K exchangeable samples is distributed like k fresh samples, so the curve computed from subsets of
one K-sample pass must match that expectation at every k. With a perfect meta RM (it rates right samples 1 and
wrong ones 0) MetaRM@k keeps m = max(1, k // 2) samples, right ones first: min(X, m) right and the rest wrong, so
MetaRM@k = P(min(X, m) > m/2).

Tolerance: each item's value (averaged over subset draws) lies in [0, 1] with mean a_k, so its variance is at most
a_k (1 - a_k), and the mean over N independent items has standard deviation at most sqrt(a_k (1 - a_k) / N).
Four of those standard deviations (N = 400: at most 0.1, and 0.05 or less where a_k > 0.93) bound a deviation by
chance to about 6e-5 per point (normal approximation), while the curve rises by about 0.3 over the range tested.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from grmjudge import FunctionMetaScorer, Judge, MetaInput
from grmjudge.backends import FunctionBackend
from grmjudge.eval import EvalOptions, evaluate, load_benchmark
from grmjudge.types import GenerationRequest
from tests.judges import judgement, shown_responses

pytestmark = pytest.mark.anyio

P = 0.65
N = 400
K = 16
GOOD = "(better)"


def noisy(request: GenerationRequest) -> list[str]:
    rng = random.Random(request.seed)
    texts: list[str] = []
    for _ in range(request.n):
        right = rng.random() < P
        texts.append(judgement([6 if (GOOD in text) == right else 4 for text in shown_responses(request)]))
    return texts


def perfect_meta(inputs: Sequence[MetaInput]) -> list[float]:
    rated: list[float] = []
    for item in inputs:
        box = re.findall(r"\\boxed\{([^}]*)\}", item.judgement)[-1]
        scores = [int(s) for s in box.split(",")]
        better = next(i for i, text in enumerate(item.responses) if GOOD in text)
        rated.append(float(scores[better] == max(scores)))
    return rated


def binomial_at_least(k: int, threshold: int) -> float:
    return sum(math.comb(k, x) * P**x * (1 - P) ** (k - x) for x in range(threshold, k + 1))


def voting_expected(k: int) -> float:
    return binomial_at_least(k, k // 2 + 1)  # X > k/2


def metarm_expected(k: int) -> float:
    m = max(1, k // 2)
    # min(X, m) > m/2  <=>  X > m/2 (as m/2 < m)
    return binomial_at_least(k, m // 2 + 1)


def tolerance(expected: float) -> float:
    return 4 * math.sqrt(expected * (1 - expected) / N)


def write_items(path: Path) -> Path:
    rows = []
    for i in range(N):
        better_first = i % 2 == 0
        better, worse = f"{GOOD} answer {i}", f"answer {i} (worse)"
        rows.append(
            {
                "question_id": f"q{i}",
                "model_a": "a",
                "model_b": "b",
                "winner": "model_a" if better_first else "model_b",
                "prompt": f"Question {i}?",
                "response_1": better if better_first else worse,
                "response_2": worse if better_first else better,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.mark.slow
async def test_voting_and_metarm_curves_follow_the_binomial_expectation(tmp_path: Path) -> None:
    benchmark = load_benchmark("ppe-preference", write_items(tmp_path / "items.jsonl"))
    judge = Judge(FunctionBackend(noisy), meta=FunctionMetaScorer(perfect_meta))
    report = await evaluate(judge, benchmark, tmp_path / "out", ks=[1, 4, K], options=EvalOptions(bootstrap=0))

    assert report.passes["sampled"].samples == N * K  # one pass of K samples per item
    assert report.passes["greedy"].samples == N
    greedy = report.settings["greedy"].overall.value
    assert abs(greedy - P) < tolerance(P)
    curves = {kind: {p.k: p.value for p in points} for kind, points in report.curve.items()}
    assert sorted(curves["voting"]) == [1, 2, 4, 8, 16]
    for k, value in curves["voting"].items():
        expected = voting_expected(k)
        assert abs(value - expected) < tolerance(expected), (k, value, expected)
    for k, value in curves["metarm"].items():
        expected = metarm_expected(k)
        assert abs(value - expected) < tolerance(expected), (k, value, expected)
    # the curve is what scaling means: it must rise well beyond its own noise
    assert curves["voting"][16] - curves["voting"][1] > 0.2
    assert curves["metarm"][4] - curves["voting"][4] > 0.1
    # the requested settings are the curve's points at the requested k
    assert report.settings["voting@4"].overall.value == curves["voting"][4]
    assert set(report.settings) == {"greedy", "voting@4", "metarm@4", "voting@16", "metarm@16"}
    assert report.settings["voting@4"].draws == 16 and report.settings["voting@16"].draws == 1


async def test_the_full_pool_setting_is_exactly_the_judges_verdict(tmp_path: Path) -> None:
    """At k = K the only subset is the whole pass: the totals are the judge's own (meta-filtered) scores."""
    benchmark = load_benchmark("ppe-preference", write_items(tmp_path / "items.jsonl")).limited(40)
    judge = Judge(FunctionBackend(noisy), meta=FunctionMetaScorer(perfect_meta))
    report = await evaluate(judge, benchmark, tmp_path / "out", ks=[8], options=EvalOptions(bootstrap=0))
    lines = [json.loads(line) for line in (tmp_path / "out" / "items.jsonl").read_text().splitlines()]
    labels = {item.calls[0].id: item.label.best for item in benchmark.items}  # type: ignore[union-attr]
    right = [line["result"]["best"] == labels[line["call_id"]] for line in lines]
    strictly = [
        line["result"]["scores"][labels[line["call_id"]]] > line["result"]["scores"][1 - labels[line["call_id"]]]
        for line in lines
    ]
    assert report.settings["metarm@8"].overall.value == pytest.approx(sum(strictly) / len(lines))
    assert sum(right) >= sum(strictly)  # the judge's best breaks ties at random; PPE counts them wrong
