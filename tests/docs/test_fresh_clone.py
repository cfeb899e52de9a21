"""The README's first command, run as a new user runs it: a fresh copy of the checkout, no virtual environment.

The copy holds what a clone of this working tree would (git's tracked and not-ignored files), so local changes
are tested too. The block runs in real bash with the machine's own PATH and pip settings, minus any virtual
environment; then the test checks that it printed the demo and installed a CPU build of torch without CUDA
packages. pip's cache, warmed by the development install, keeps the run to a few minutes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import REPO, Block, read_blocks

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1200)]

MAX_VENV_MB = 2000
"""A CPU torch with transformers is about 1 GB; a CUDA build with its nvidia packages is over 5 GB."""


def _fresh_clone_blocks() -> list[Block]:
    return [block for block in read_blocks(REPO / "README.md") if block.marked("fresh-clone")]


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


def _user_environment() -> dict[str, str]:
    """The machine's environment without the virtual environment the tests run in."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p and p != venv_bin)
    env["HF_HUB_OFFLINE"] = "1"
    return env


def test_the_readme_has_one_fresh_clone_command() -> None:
    blocks = _fresh_clone_blocks()
    assert len(blocks) == 1, [block.where for block in blocks]
    assert "grmjudge demo" in blocks[0].code


def test_the_readme_first_command_works_in_a_fresh_clone(tmp_path: Path) -> None:
    (block,) = _fresh_clone_blocks()
    clone = tmp_path / "grmjudge"
    _copy_checkout(clone)
    env = _user_environment()
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block.code], cwd=clone, env=env,
        capture_output=True, text=True, timeout=1100, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{block.where} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert "grmjudge demo: a" in done.stdout and "final votes (kept samples summed)" in done.stdout, done.stdout

    python = clone / ".venv" / "bin" / "python"
    probe = (
        "import importlib.metadata as m, torch; print(torch.version.cuda); "
        "print(sorted({d.metadata['Name'] for d in m.distributions()}))"
    )
    installed = subprocess.run([str(python), "-c", probe], env=env, capture_output=True, text=True, check=True)
    cuda, names = installed.stdout.splitlines()
    assert cuda == "None", f"torch was installed with CUDA {cuda}"
    assert "nvidia" not in names.lower(), names
    size_mb = sum(f.stat().st_size for f in (clone / ".venv").rglob("*") if f.is_file()) / 2**20
    assert size_mb < MAX_VENV_MB, f"the fresh venv holds {size_mb:.0f} MB"
