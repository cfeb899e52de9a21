"""The toy quick run and the GPU script's tiny run in the background: started when collection finishes (see
``tests/background.py``), so that their minutes on one core overlap the rest of the suite; their tests wait for
them when they come."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.background import BackgroundRun, start_in_background


@dataclass
class QuickRun(BackgroundRun):
    """A ``grmjudge.training.toy run --quick`` process and the directory it writes its run into."""

    out: Path


LATE_TESTS_NICENESS = 10
"""Their tests are the suite's last (tests/training): the runs yield the CPU to the tests in front of them."""

QUICK_RUN = pytest.StashKey[QuickRun]()
TINY_GPU_SCRIPT_RUN = pytest.StashKey[QuickRun]()
GPU_TOY_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_toy.sh"


def toy_env() -> dict[str, str]:
    """Offline, and one torch thread: the run takes one core and leaves the other to the rest of the suite."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def start_quick_run(base: Path) -> QuickRun:
    """Start the quick toy run into ``base / "run"``."""
    out = base / "run"
    command = [sys.executable, "-m", "grmjudge.training.toy", "run", "--out", str(out), "--quick"]
    started = start_in_background(command, base, env=toy_env(), niceness=LATE_TESTS_NICENESS)
    return QuickRun(started.process, started.stdout, started.stderr, out)


def start_tiny_gpu_script(base: Path) -> QuickRun:
    """Start ``scripts/gpu_toy.sh --scale tiny`` into ``base / "run"``, with this interpreter."""
    out = base / "run"
    command = ["bash", str(GPU_TOY_SCRIPT), "--scale", "tiny", "--out", str(out)]
    started = start_in_background(
        command, base, env={**toy_env(), "PYTHON": sys.executable}, niceness=LATE_TESTS_NICENESS
    )
    return QuickRun(started.process, started.stdout, started.stderr, out)
