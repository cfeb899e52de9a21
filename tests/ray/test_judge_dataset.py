"""``judge_dataset`` on a local cluster: the local judge's results, a killed actor retried without duplicates,
and an in-process transformers model on each actor."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest

from grmjudge import Judge, JudgeSettings
from grmjudge.backends.function import FunctionBackend
from grmjudge.integrations.ray import OUTPUT_COLUMNS, StageResources, judge_dataset, judge_options
from grmjudge.judge_options import build_backend, build_settings
from grmjudge.score_lines import output_record
from grmjudge.types import GenerationRequest

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")]


def _judgements(request: GenerationRequest) -> list[str]:
    """Deterministic judgements that depend on the prompt (so on the item and the order shown)."""
    first = 1 + len(request.messages[-1].content) % 9
    return [f"Principles: be right.\nAnalysis: fine.\nScores: \\boxed{{{first}, {10 - first}}}"] * request.n


def _dies_once(marker: str) -> Judge:
    """A judge whose first request anywhere kills its worker process (``marker`` makes it happen once)."""

    def generate(request: GenerationRequest) -> list[str]:
        if not os.path.exists(marker):
            Path(marker).touch()
            os._exit(1)
        return _judgements(request)

    return Judge(FunctionBackend(generate), settings=JudgeSettings(seed=3))


def _items(count: int) -> list[dict[str, Any]]:
    return [
        {"id": f"item-{i}", "query": f"Question {i}?", "responses": ["a" * (i % 5), "b" * (i % 7 + 1)]}
        for i in range(count)
    ]


def test_a_killed_actor_is_replaced_and_its_batch_judged_once_with_the_local_results(
    tmp_path: Path, ray_cluster: dict[str, Any]
) -> None:
    import ray

    items = _items(12)
    judged = judge_dataset(
        ray.data.from_items(items),
        functools.partial(_dies_once, str(tmp_path / "died")),
        k=4,
        grm=StageResources(batch_size=4, num_cpus=0.5),
    )
    rows = judged.take_all()

    assert (tmp_path / "died").exists()  # the first actor did die
    assert sorted(row["id"] for row in rows) == sorted(x["id"] for x in items)  # each once
    assert list(rows[0]) == list(OUTPUT_COLUMNS)
    local = Judge(FunctionBackend(_judgements), settings=JudgeSettings(seed=3))
    for row in rows:
        given = next(x for x in items if x["id"] == row["id"])
        result = local.score_sync(given["query"], given["responses"], k=4, item_id=row["id"])
        assert json.loads(row["line"]) == json.loads(json.dumps(output_record(result, row["id"], None, texts=True)))
        assert (row["kind"], row["samples"], row["verdict"]) == ("output", 4, 1)


@pytest.mark.usefixtures("ray_cluster")
def test_each_actor_holds_a_transformers_model_and_gets_the_local_results(tiny_model_dir: Path) -> None:
    import ray

    options = judge_options(f"hf:{tiny_model_dir}", max_tokens=8, temperature=1.0)
    items = _items(3)

    rows = judge_dataset(ray.data.from_items(items), options, k=2, grm=StageResources(num_cpus=1)).take_all()

    local = Judge(build_backend(options), settings=build_settings(options))
    for row in rows:
        record = json.loads(row["line"])
        given = next(x for x in items if x["id"] == row["id"])
        result = local.score_sync(given["query"], given["responses"], k=2, item_id=row["id"])
        assert record["provenance"]["backend"] == "transformers" and len(record["samples"]) == 2
        assert [s["text"] for s in record["samples"]] == [s.text for s in result.samples]
