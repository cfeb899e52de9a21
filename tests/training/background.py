"""The toy quick run in the background: started when collection finishes, so that its few minutes on one core
overlap the rest of the suite instead of adding to it. Its output goes to files (a pipe nobody reads would
fill and stall it), and its tests wait for it when they come."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass
class BackgroundRun:
    """A ``grmjudge.training.toy run --quick`` process and where it writes."""

    out: Path
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def wait(self, timeout: float) -> subprocess.CompletedProcess[str]:
        """Wait for the run (killing it past ``timeout``) and return what it printed."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        args = [str(a) for a in self.process.args] if isinstance(self.process.args, list) else []
        return subprocess.CompletedProcess(
            args,
            self.process.returncode,
            self.stdout.read_text(errors="replace"),
            self.stderr.read_text(errors="replace"),
        )

    def stop(self) -> None:
        """End the run if it is still going (the session is over or the tests were not reached)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


QUICK_RUN = pytest.StashKey[BackgroundRun]()


def toy_env() -> dict[str, str]:
    """Offline, and one torch thread: the run takes one core and leaves the other to the rest of the suite."""
    return {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}


def start_quick_run(base: Path) -> BackgroundRun:
    """Start the quick toy run into ``base / "run"``."""
    out = base / "run"
    stdout, stderr = base / "stdout.txt", base / "stderr.txt"
    command = [sys.executable, "-m", "grmjudge.training.toy", "run", "--out", str(out), "--quick"]
    with stdout.open("wb") as out_file, stderr.open("wb") as err_file:
        process = subprocess.Popen(command, stdout=out_file, stderr=err_file, env=toy_env())
    return BackgroundRun(out, process, stdout, stderr)
