"""``grmjudge score --engine ray`` against the local engine: the same lines, bad lines as error rows, a manifest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import RecordingServer, item, read_jsonl, run_in_process, score_args
from tests.ray.conftest import WORKER_KEY, error_lines, output_lines

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")]


def test_the_ray_engine_writes_the_local_engines_lines_with_the_meta_rm_as_its_own_stage(
    tmp_path: Path,
    ray_cluster: dict[str, Any],
    ray_fake: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", WORKER_KEY)
    items = [item(i, label=i % 2) for i in range(10)]
    del items[4]["id"]  # named by its line locally and by its content on Ray: compared apart
    lines = [json.dumps(x) for x in items]
    lines[6] = '{"id": "broken", "query": '  # not JSON
    lines[8] = json.dumps({"id": "bad", "query": "q", "responses": "not a list"})
    source = tmp_path / "in.jsonl"
    source.write_text("\n".join(lines) + "\n")
    meta = ("--meta", "http:meta-rm", "--meta-base-url", ray_fake.server.root, "--k-meta", "2")
    common = (*meta, "--k", "4", "--seed", "7")

    local_status, _ = run_in_process(score_args(source, tmp_path / "local.jsonl", ray_fake.base_url, *common), capsys)
    ray_args = ("--engine", "ray", "--batch-size", "3", "--cpus-per-actor", "0.5", "--progress-every", "0.001")
    status, stderr = run_in_process(score_args(source, tmp_path / "ray", ray_fake.base_url, *common, *ray_args), capsys)

    assert (local_status, status) == (1, 1), stderr  # two bad lines each
    local = {r["id"]: json.dumps(r) for r in read_jsonl(tmp_path / "local.jsonl")}
    ray_out = output_lines(tmp_path / "ray")
    (content_named,) = set(ray_out) - set(local)  # the item without an id; "5" (its line) locally
    assert "5" in local and json.loads(ray_out[content_named])["scores"] == json.loads(local["5"])["scores"]
    shared = set(local) & set(ray_out)
    assert len(shared) == 7
    for item_id in shared:
        assert json.loads(ray_out[item_id]) == json.loads(local[item_id]), item_id
    assert all(sum(s["kept"] for s in json.loads(line)["samples"]) == 2 for line in ray_out.values())
    errors = {json.loads(line)["type"] for line in error_lines(tmp_path / "ray").values()}
    assert errors == {"invalid_json", "invalid_item"}
    manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["counts"]["outputs"] == 8
    assert manifest["provenance"]["k_meta"] == 2
    assert "8 lines written" in stderr and WORKER_KEY not in stderr
    progress = [line for line in stderr.splitlines() if line.startswith("[") and "samples" in line]
    assert progress and "out 8" in progress[-1] and "samples 32" in progress[-1], stderr  # the local engine's line
