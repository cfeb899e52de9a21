"""The README's first command, run as a new user runs it: a fresh copy of the checkout, no virtual environment.

The session starts the command in the background when collection finishes (``tests/docs/fresh_clone.py``);
the test waits for it, then checks that it printed the demo and installed a CPU build of torch without CUDA
packages. pip's cache, warmed by the development install, keeps the run to a few minutes.
"""

from __future__ import annotations

import subprocess

import pytest

from tests.docs.fresh_clone import FRESH_CLONE, FreshCloneRun, fresh_clone_blocks, start_fresh_clone, user_environment

pytestmark = [pytest.mark.engine, pytest.mark.timeout(1200)]

MAX_VENV_MB = 2000
"""A CPU torch with transformers is about 1 GB; a CUDA build with its nvidia packages is over 5 GB."""


@pytest.fixture
def fresh_clone_run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> FreshCloneRun:
    """The run the session started in the background when collection finished (or one started now)."""
    return request.config.stash.get(FRESH_CLONE, None) or start_fresh_clone(tmp_path_factory.mktemp("fresh-clone"))


def test_the_readme_has_one_fresh_clone_command() -> None:
    blocks = fresh_clone_blocks()
    assert len(blocks) == 1, [block.where for block in blocks]
    assert "grmjudge demo" in blocks[0].code


def test_the_readme_first_command_works_in_a_fresh_clone(fresh_clone_run: FreshCloneRun) -> None:
    done = fresh_clone_run.wait(timeout=1100)
    where = fresh_clone_blocks()[0].where
    assert done.returncode == 0, f"{where} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    assert "grmjudge demo: a" in done.stdout and "final votes (kept samples summed)" in done.stdout, done.stdout

    env = user_environment()
    python = fresh_clone_run.clone / ".venv" / "bin" / "python"
    probe = (
        "import importlib.metadata as m, torch; print(torch.version.cuda); "
        "print(sorted({d.metadata['Name'] for d in m.distributions()}))"
    )
    installed = subprocess.run([str(python), "-c", probe], env=env, capture_output=True, text=True, check=True)
    cuda, names = installed.stdout.splitlines()
    assert cuda == "None", f"torch was installed with CUDA {cuda}"
    assert "nvidia" not in names.lower(), names
    size_mb = sum(f.stat().st_size for f in (fresh_clone_run.clone / ".venv").rglob("*") if f.is_file()) / 2**20
    assert size_mb < MAX_VENV_MB, f"the fresh venv holds {size_mb:.0f} MB"
