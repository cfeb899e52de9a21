"""The toy quick run in the background: started when collection finishes (see ``tests/background.py``), so that
its few minutes on one core overlap the rest of the suite; its tests wait for it when they come."""

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


QUICK_RUN = pytest.StashKey[QuickRun]()


def toy_env() -> dict[str, str]:
    """Offline, and one torch thread: the run takes one core and leaves the other to the rest of the suite."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def start_quick_run(base: Path) -> QuickRun:
    """Start the quick toy run into ``base / "run"``."""
    out = base / "run"
    command = [sys.executable, "-m", "grmjudge.training.toy", "run", "--out", str(out), "--quick"]
    started = start_in_background(command, base, env=toy_env())
    return QuickRun(started.process, started.stdout, started.stderr, out)
