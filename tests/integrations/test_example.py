"""``examples/rl_reward.py`` runs as a user runs it: a subprocess training against a local GRM server."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.servers import REPO_ROOT, serve

pytestmark = pytest.mark.engine


def test_the_example_trains_with_a_served_grm() -> None:
    for module in ("torch", "transformers", "trl", "datasets"):
        pytest.importorskip(module)
    with serve() as server:  # the fake GRM: a well-formed judgement scoring each response by its length
        done = subprocess.run(
            [sys.executable, "examples/rl_reward.py", "--base-url", server.base_url, "--model", "fake-grm"]
            + ["--steps", "2", "--num-generations", "3", "--k", "2"],
            cwd=REPO_ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=240,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(summary["step_rewards"]) == 2 and all(1 <= r <= 10 for r in summary["step_rewards"])
    assert summary["judge_calls"] == 2 * 2  # two prompts per step, one listwise call each
    assert summary["samples"] == summary["valid_samples"] == 2 * 2 * 2
    assert summary["fallback_rewards"] == 0 and summary["failures"] == {}
    assert summary["partial_groups"] == summary["singleton_groups"] == 0  # each prompt's 3 completions together
