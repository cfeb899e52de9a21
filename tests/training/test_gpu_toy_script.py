"""``scripts/gpu_toy.sh`` at tiny scale on the CPU: the GPU run's script and the pipeline stay in step.

The tiny scale runs a step or two of every stage from the shipped GRM, so what this checks is the wiring (the
script's options, every stage's hand-off, the report's table and claims), not that anything learns.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.timeout(600)]

for _module in ("torch", "transformers", "trl", "datasets", "matplotlib"):
    pytest.importorskip(_module)

from grmjudge.training.toy.config import GPU, TINY  # noqa: E402
from grmjudge.training.toy.pipeline import STAGES, read_stages  # noqa: E402
from tests.training.background import (  # noqa: E402
    GPU_TOY_SCRIPT,
    TINY_GPU_SCRIPT_RUN,
    QuickRun,
    start_tiny_gpu_script,
)


@pytest.fixture
def tiny_gpu_script_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> QuickRun:
    """The tiny run the session started in the background when collection finished (or one started now)."""
    return request.config.stash.get(TINY_GPU_SCRIPT_RUN, None) or start_tiny_gpu_script(tmp_path_factory.mktemp("gpu"))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        ["bash", str(GPU_TOY_SCRIPT), *args], capture_output=True, text=True, env=env, timeout=540, check=False
    )


def test_the_script_runs_every_stage_at_tiny_scale_and_prints_the_table(tiny_gpu_script_run: QuickRun) -> None:
    out = tiny_gpu_script_run.out
    done = tiny_gpu_script_run.wait(timeout=540)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert list(read_stages(out)) == list(STAGES)
    k = TINY.eval_k
    assert f"| GRM | Greedy | Voting@1 | Voting@{k} | MetaRM@{k} |" in done.stdout
    for row in ("| Cold start (SFT on teacher) |", "| RFT |", "| RFT + GRPO |"):
        assert row in done.stdout
    assert "| RFT + GRPO > RFT (greedy) |" in done.stdout  # the claims table follows
    assert f"{TINY.heldout_items} held-out items" in done.stdout
    assert (out / "report.md").exists() and (out / "scaling.png").exists()


def test_the_script_refuses_an_unknown_scale(tmp_path: Path) -> None:
    done = _run("--scale", "huge", "--out", str(tmp_path / "run"))
    assert done.returncode == 2 and "--scale must be gpu or tiny" in done.stderr


def test_the_gpu_scale_is_larger_than_the_cpu_run_in_model_and_data() -> None:
    from grmjudge.training.toy.config import FULL
    from grmjudge.training.toy.model import SHAPES

    assert GPU.device == "cuda" and GPU.start == "random"
    assert SHAPES[GPU.shape]["hidden_size"] > SHAPES[FULL.shape]["hidden_size"]
    assert GPU.train_items > FULL.train_items and GPU.heldout_items > FULL.heldout_items


def test_grpo_runs_once_per_learning_rate_on_one_prefilter_and_validation_picks_among_all(
    tiny_gpu_script_run: QuickRun,
) -> None:
    out = tiny_gpu_script_run.out
    assert tiny_gpu_script_run.wait(timeout=540).returncode == 0
    stages = read_stages(out)
    runs = [f"lr-{lr:g}" for lr in TINY.grpo_lrs]
    assert len(runs) == 2 and list(stages["grpo"]["summary"]) == runs
    first, second = (out / "grpo_train" / name / "prefilter" for name in runs)
    records = sorted(path.name for path in first.iterdir())
    assert records and records == sorted(path.name for path in second.iterdir())
    for name in records:  # the second run read the first's pre-filter samples instead of drawing its own
        assert (first / name).read_bytes() == (second / name).read_bytes()
    validation = stages["grpo_select"]["summary"]["validation_greedy"]
    per_run = TINY.grpo_steps // TINY.grpo_save_steps
    expected = {f"{name}/checkpoint-{step}" for name in runs for step in range(1, per_run + 1)}
    assert set(validation) == {"rft", *expected}
    chosen = stages["grpo_select"]["summary"]["chosen"]
    assert validation[chosen] == max(validation[name] for name in expected)
    kept = (out / "grpo_train" / chosen / "model.safetensors").read_bytes()
    assert (out / "grpo" / "model.safetensors").read_bytes() == kept
