"""``grmjudge eval --engine ray``: each pass's calls judged on Ray actors give the local engine's records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grmjudge.cli import main
from tests.cli.conftest import RecordingServer
from tests.eval.conftest import DATA
from tests.ray.conftest import WORKER_KEY

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")]


def _records(run: Path) -> dict[str, Any]:
    """Each call's journal record, without timings."""
    lines = (run / "items.jsonl").read_text().splitlines()[1:]  # the first line is the run's header
    return {r["call_id"]: r for r in map(json.loads, lines) if "call_id" in r}


@pytest.mark.usefixtures("ray_cluster")
def test_eval_on_ray_records_what_the_local_engine_records(
    tmp_path: Path, ray_fake: RecordingServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", WORKER_KEY)
    data = str(DATA / "e2e" / "filtered.jsonl")
    args = ["eval", "rewardbench", "--judge", "openai:fake-grm", "--base-url", ray_fake.base_url, "--data", data]
    args += ["--k", "2", "--bootstrap", "0", "-q"]

    assert main([*args, "--out", str(tmp_path / "local")]) == 0, capsys.readouterr().err
    status = main([*args, "--out", str(tmp_path / "ray"), "--engine", "ray", "--cpus-per-actor", "0.5"])

    assert status == 0, capsys.readouterr().err
    local, on_ray = _records(tmp_path / "local"), _records(tmp_path / "ray")
    assert local and set(on_ray) == set(local)
    for call_id, record in local.items():
        assert on_ray[call_id]["result"] == record["result"], call_id
    results = [json.loads((tmp_path / run / "results.json").read_text())["settings"] for run in ("local", "ray")]
    assert results[0]["voting@2"]["overall"] == results[1]["voting@2"]["overall"]
