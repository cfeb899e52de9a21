"""Long subprocesses started when collection finishes, so that their minutes overlap the rest of the suite
instead of adding to it. Output goes to files (a pipe nobody reads would fill and stall the process), and the
tests that need a run wait for it when they come."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass
class BackgroundRun:
    """A process started in the background and the files its output goes to."""

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


def start_in_background(
    command: Sequence[str], logs: Path, *, env: Mapping[str, str], cwd: Path | None = None, niceness: int = 0
) -> BackgroundRun:
    """Start ``command`` with its output in ``logs / "stdout.txt"`` and ``logs / "stderr.txt"``.

    A run whose tests come late in the session can take a positive ``niceness``: it then yields the CPU to the
    tests in front and fills the time the suite leaves idle, instead of slowing every test while it runs.
    """
    stdout, stderr = logs / "stdout.txt", logs / "stderr.txt"
    with stdout.open("wb") as out_file, stderr.open("wb") as err_file:
        process = subprocess.Popen(
            list(command), stdout=out_file, stderr=err_file, env=dict(env), cwd=cwd,
            preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
        )  # fmt: skip
    return BackgroundRun(process, stdout, stderr)
