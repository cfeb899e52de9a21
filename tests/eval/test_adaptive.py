"""Adaptive k in the eval: the replay on the fixed-k pass agrees with live adaptive calls on the same seeds."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from grmjudge import AdaptivePolicy, FunctionMetaScorer, Judge, JudgeSettings, MetaInput
from grmjudge.backends import FunctionBackend
from grmjudge.eval import EvalOptions, evaluate
from grmjudge.eval.items import BestLabel, Call, DataSource, EvalItem, LoadedBenchmark
from grmjudge.eval.outcomes import TiePolicy
from grmjudge.eval.report import markdown
from grmjudge.eval.scaling import CallRecord, Setting, replay
from grmjudge.eval.scoring import ScoringPlan
from grmjudge.rows import SourceFile
from grmjudge.types import GenerationRequest
from tests.judges import judgement, shown_responses

K = 16


def noisy(request: GenerationRequest) -> list[str]:
    """Choice i is seeded by ``seed + i``; the response starting with "right" usually scores higher."""
    assert request.seed is not None
    texts: list[str] = []
    for i in range(request.n):
        seed = request.seed + i
        if seed % 7 == 0:
            texts.append("no verdict")  # a parse failure, re-asked
            continue
        rng = random.Random(seed)
        texts.append(
            judgement(
                [rng.randint(4, 10) if t.startswith("right") else rng.randint(1, 9) for t in shown_responses(request)]
            )
        )
    return texts


def rate(inputs: list[MetaInput]) -> list[float]:
    return [float(len(i.judgement) % 5) for i in inputs]


def benchmark() -> LoadedBenchmark:
    items: list[EvalItem] = []
    for n in range(24):
        responses = [f"right {n}", f"wrong {n}", f"also wrong {n}"][: 2 + n % 2]
        call = Call(id=f"item-{n}", query=({"role": "user", "content": f"question {n}"},), responses=tuple(responses))  # type: ignore[arg-type]
        items.append(EvalItem(id=call.id, subset="toy", calls=(call,), label=BestLabel(0)))
    source = DataSource(kind="files", files=(SourceFile(path="toy.jsonl", sha256="0" * 64),), rows=24, items=24)
    return LoadedBenchmark("toy-spct", items, source)


def judge() -> Judge:
    return Judge(FunctionBackend(noisy), meta=FunctionMetaScorer(rate), settings=JudgeSettings(seed=11))


@pytest.mark.anyio
async def test_the_replay_stops_where_a_live_adaptive_call_stops(tmp_path: Path) -> None:
    bench = benchmark()
    policy = AdaptivePolicy()
    options = EvalOptions(bootstrap=50, adaptive=policy)
    report = await evaluate(judge(), bench, tmp_path, ks=[K], options=options)
    plan = ScoringPlan(TiePolicy.OFFICIAL, 11, None, 0, policy)
    live_samples: dict[str, list[int]] = {"adaptive": [], "adaptive-metarm": []}
    stops: set[str] = set()
    for item in bench.items:
        call = item.calls[0]
        for kind, meta in (("adaptive", False), ("adaptive-metarm", True)):
            live = await judge().score(call.query, call.responses, k=K, meta=meta, adaptive=policy, item_id=call.id)
            fixed = await judge().score(call.query, call.responses, k=K, meta=meta, item_id=call.id)  # the eval's pass
            assert live.provenance.adaptive is not None
            adaptive_plan = plan.adaptive_plan(Setting(kind, K), call)
            assert adaptive_plan is not None
            totals, drawn = replay(CallRecord.from_result(call.id, fixed), adaptive_plan)
            assert drawn == live.provenance.adaptive.samples
            assert totals == (tuple(live.scores) if live.scores is not None else None)
            live_samples[kind].append(drawn)
            stops.add(live.provenance.adaptive.stop)
    assert stops == {"settled", "k_reached"}  # both ways of stopping are exercised
    for kind, drawn in live_samples.items():
        setting = report.settings[f"{kind}@{K}"]
        assert setting.samples_per_item is not None and setting.samples_per_item.ci is not None
        assert setting.samples_per_item.value == pytest.approx(sum(drawn) / len(drawn))
        assert setting.vs_fixed is not None and setting.vs_fixed.ci is not None
    assert report.curve["voting"][-1].samples == K
    text = "\n".join(markdown(report))
    assert "## Accuracy per compute" in text and "Adaptive-MetaRM@16" in text
    assert (tmp_path / "compute.png").stat().st_size > 0
