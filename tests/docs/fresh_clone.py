"""The README's first command in a fresh copy of the checkout, started in the background when collection
finishes (see ``tests/background.py``): its minute or more of installing overlaps the rest of the suite.

The copy holds what a clone of this working tree would (git's tracked and not-ignored files), so local changes
are tested too. The block runs in real bash with the machine's own PATH and pip settings, minus any virtual
environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.background import BackgroundRun, start_in_background
from tests.docs.blocks import REPO, Block, read_blocks


@dataclass
class FreshCloneRun(BackgroundRun):
    """The README's first command running in ``clone``, a fresh copy of the checkout."""

    clone: Path


FRESH_CLONE = pytest.StashKey[FreshCloneRun]()


def fresh_clone_blocks() -> list[Block]:
    """The README blocks marked ``fresh-clone`` (there must be exactly one)."""
    return [block for block in read_blocks(REPO / "README.md") if block.marked("fresh-clone")]


def user_environment() -> dict[str, str]:
    """The machine's environment without the virtual environment the tests run in."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def start_fresh_clone(base: Path) -> FreshCloneRun:
    """Copy the checkout to ``base / "grmjudge"`` and start the README's first command there."""
    (block,) = fresh_clone_blocks()
    clone = base / "grmjudge"
    _copy_checkout(clone)
    command = ["bash", "-euo", "pipefail", "-c", block.code]
    # its test comes minutes later (after the docs pages): it yields the CPU to the tests in front of it
    started = start_in_background(command, base, env=user_environment(), cwd=clone, niceness=10)
    return FreshCloneRun(started.process, started.stdout, started.stderr, clone)


def _copy_checkout(target: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=True,
    )  # fmt: skip
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = REPO / name
        if source.is_file():  # a tracked file deleted in the working tree is gone from a commit of it too
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
