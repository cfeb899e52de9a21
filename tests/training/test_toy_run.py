"""The toy SPCT reproduction end to end in ``--quick`` mode, and ``grmjudge demo`` on the embedded models.

``--quick`` starts from the shipped toy GRM with seeded noise on every weight and runs every stage on a small
scale (about 4 minutes on one core; the session starts it in the background as soon as collection finishes,
see ``tests/training/background.py``). The tests check that each stage ran and produced what the next one
needs, that the report has its three rows and four columns, that a rerun resumes, and two results with a wide
margin:

- **the stages learn**: the noised start is right on few of the held-out items (measured: 19%); after the
  cold start's 60 steps of SFT on the teacher's transcripts it must be right on 25 points more (measured: 39
  more). A stage whose data, template, labels or loss were broken would
  not get there;
- **the final GRM judges**: after every stage, its greedy accuracy beats chance (the mean of 1/n) by 10 points.

The trends (RFT over the cold start, GRPO over RFT, voting over one sample, meta RM over voting) are the full
run's to show: at quick scale they are within noise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.engine, pytest.mark.timeout(900)]  # the quick run takes about 4 minutes

for _module in ("torch", "transformers", "trl", "datasets", "matplotlib"):
    pytest.importorskip(_module)

from grmjudge.training.data import load_examples  # noqa: E402
from grmjudge.training.toy.config import DEMO_DIR, QUICK  # noqa: E402
from grmjudge.training.toy.pipeline import GRM_STAGES, STAGES, read_stages  # noqa: E402
from tests.training.background import QUICK_RUN, start_quick_run  # noqa: E402

MARGIN = 0.10
"""How far above chance (the mean of 1/n over the held-out items) the final GRM's greedy accuracy must be."""
LEARNED = 0.25
"""How far the cold start's greedy accuracy must rise above the noised start's, on the same items."""


def _table(stdout: str) -> list[str]:
    """The report's table rows; the run's stdout also holds the trainers' log lines."""
    return [line for line in stdout.splitlines() if line.startswith("|")]


def _env() -> dict[str, str]:
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}


@pytest.fixture(scope="module")
def quick_run(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The quick run the session started in the background when collection finished (or one started now)."""
    run = request.config.stash.get(QUICK_RUN, None) or start_quick_run(tmp_path_factory.mktemp("toy"))
    done = run.wait(timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return run.out, done


def test_every_stage_ran_and_left_its_outputs(quick_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = quick_run
    stages = read_stages(out)
    assert list(stages) == list(STAGES)
    for model in ("init", *GRM_STAGES, "meta_rm"):
        assert (out / model / "model.safetensors").exists(), model
    assert stages["init"]["summary"] == {"start": "demo", "noise": QUICK.start_noise}
    assert stages["data"]["summary"]["teacher_accuracy"] == pytest.approx(1 - QUICK.teacher_error_rate, abs=0.05)
    assert stages["rft_sample"]["summary"]["examples"] > 0  # rejection sampling kept judgements to train on
    assert stages["meta_sample"]["summary"]["positives"] > 0 and stages["meta_sample"]["summary"]["negatives"] > 0
    select = stages["grpo_select"]["summary"]
    checkpoints = {name: value for name, value in select["validation_greedy"].items() if name != "rft"}
    assert len(checkpoints) == len(QUICK.grpo_lrs) * QUICK.grpo_steps // QUICK.grpo_save_steps
    assert "rft" in select["validation_greedy"]
    assert select["validation_greedy"][select["chosen"]] == max(checkpoints.values())
    chosen = out / "grpo_train" / select["chosen"] / "model.safetensors"
    assert (out / "grpo" / "model.safetensors").read_bytes() == chosen.read_bytes()  # the kept checkpoint
    for stage in GRM_STAGES:
        results = json.loads((out / "eval" / stage / "results.json").read_text())
        assert {"greedy", f"voting@{QUICK.eval_k}", f"metarm@{QUICK.eval_k}"} <= set(results["settings"])
        assert [p["k"] for p in results["curve"]["voting"]] == [1, 2]
        assert [p["k"] for p in results["curve"]["metarm"]] == [1, 2]


def test_report_prints_the_table_and_writes_the_plot(quick_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, done = quick_run
    table = done.stdout
    k = QUICK.eval_k  # below the full run's 8, the table shows the largest k the run drew
    assert f"| GRM | Greedy | Voting@1 | Voting@{k} | MetaRM@{k} |" in table
    for row in ("Cold start", "| RFT |", "RFT + GRPO"):
        assert row in table
    assert "| RFT > cold start (greedy) |" in table and "| RFT + GRPO > RFT (greedy) |" in table  # the claims
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    again = subprocess.run(
        [sys.executable, "-m", "grmjudge.training.toy", "report", str(out)],
        capture_output=True, text=True, env=_env(), timeout=300, check=False,
    )  # fmt: skip
    assert again.returncode == 0 and _table(again.stdout) == _table(table)


def _greedy(out: Path, stage: str) -> float:
    results = json.loads((out / "eval" / stage / "results.json").read_text())
    return results["settings"]["greedy"]["overall"]["value"]


def test_the_cold_start_learns_from_the_noised_start(quick_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = quick_run
    start, cold_start = _greedy(out, "init"), _greedy(out, "cold_start")
    assert cold_start > start + LEARNED, (start, cold_start)


def test_final_grm_beats_chance(quick_run: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    out, _ = quick_run
    heldout = load_examples(out / "data" / "heldout.jsonl", format="canonical").examples
    chance = sum(1 / item.n for item in heldout) / len(heldout)
    greedy = _greedy(out, "grpo")
    assert greedy > chance + MARGIN, (greedy, chance)


def test_a_rerun_skips_finished_stages_and_a_changed_config_is_refused(
    quick_run: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    out, _ = quick_run
    from grmjudge.exceptions import ConfigurationError
    from grmjudge.training.toy.config import FULL, QUICK
    from grmjudge.training.toy.pipeline import run

    lines: list[str] = []
    state = run(out, QUICK, log=lines.append)
    assert list(state) == list(STAGES) and all("done earlier" in line for line in lines)
    with pytest.raises(ConfigurationError, match="another config"):
        run(out, FULL)


def test_report_on_an_unfinished_run_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "grmjudge.training.toy", "report", str(tmp_path)],
        capture_output=True, text=True, env=_env(), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2 and "no finished toy run" in done.stderr


def test_demo_judges_with_the_embedded_models() -> None:
    assert (DEMO_DIR / "grm" / "model.safetensors").exists() and (DEMO_DIR / "meta_rm" / "model.safetensors").exists()
    done = subprocess.run(
        [sys.executable, "-m", "grmjudge.cli", "demo", "--items", "2", "--k", "4"],
        capture_output=True, text=True, env=_env(), timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    assert text.count("\n  sample ") == 4  # every sample of the first item, in full
    assert "principles: The answer must be" in text and "critique: Response 1 says" in text
    assert "kept" in text and "dropped" in text  # the meta RM kept half of the valid samples
    assert "final votes (kept samples summed)" in text and "Item 2:" in text
    assert "labelled best: response" in text
    assert "deliberately tiny" in text and "only the best-rated half of the samples keep their votes" in text
    assert "Loading weights" not in done.stdout + done.stderr and "it/s]" not in done.stdout + done.stderr
