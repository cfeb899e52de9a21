"""The toy run's stage record: a journal whose first line is the config, one line per finished stage."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grmjudge.journal import ProvenanceMismatch
from grmjudge.training.toy import pipeline
from grmjudge.training.toy.config import FULL, QUICK


@pytest.fixture
def cheap_stages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Three stages that only note that they ran (the real ones train models)."""
    ran: list[str] = []

    def stage(name: str) -> Any:
        def run(_: object) -> dict[str, str]:
            ran.append(name)
            return {"stage": name}

        return run

    monkeypatch.setattr(pipeline, "STAGES", {name: stage(name) for name in ("data", "init", "eval")})
    return ran


def test_finished_stages_are_recorded_and_skipped_on_a_rerun(tmp_path: Path, cheap_stages: list[str]) -> None:
    state = pipeline.run(tmp_path, QUICK)
    assert cheap_stages == ["data", "init", "eval"] and state["init"]["summary"] == {"stage": "init"}
    lines = [json.loads(line) for line in (tmp_path / pipeline.STAGES_FILE).read_text().splitlines()]
    assert lines[0] == {"config": QUICK.to_dict()} and [line.get("stage") for line in lines[1:]] == [
        "data",
        "init",
        "eval",
    ]
    assert pipeline.read_stages(tmp_path) == state

    log: list[str] = []
    assert pipeline.run(tmp_path, QUICK, log=log.append) == state
    assert cheap_stages == ["data", "init", "eval"] and all("done earlier" in line for line in log)


def test_a_stage_cut_off_mid_record_is_run_again(tmp_path: Path, cheap_stages: list[str]) -> None:
    pipeline.run(tmp_path, QUICK)
    path = tmp_path / pipeline.STAGES_FILE
    text = path.read_text()
    path.write_text(text[: len(text) - 10])  # killed while recording the last stage
    cheap_stages.clear()
    pipeline.run(tmp_path, QUICK)
    assert cheap_stages == ["eval"] and list(pipeline.read_stages(tmp_path)) == ["data", "init", "eval"]


def test_another_config_is_refused_naming_what_differs(tmp_path: Path, cheap_stages: list[str]) -> None:
    pipeline.run(tmp_path, QUICK)
    with pytest.raises(ProvenanceMismatch, match="another config") as caught:
        pipeline.run(tmp_path, FULL)
    wanted, recorded = FULL.to_dict(), QUICK.to_dict()
    assert caught.value.line == 1 and wanted[caught.value.key] != recorded[caught.value.key]
    assert cheap_stages == ["data", "init", "eval"]  # nothing ran the second time
