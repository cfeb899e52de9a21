"""``grmjudge.training`` stays out of ``import grmjudge``, loads its names lazily, and names the extra it needs."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import grmjudge.training as training

HEAVY = ("torch", "transformers", "trl", "datasets", "peft", "accelerate")


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)


def test_import_grmjudge_does_not_import_training() -> None:
    out = run("import sys, grmjudge; print('grmjudge.training' in sys.modules)")
    assert out.returncode == 0 and out.stdout.strip() == "False"


def test_data_rewards_and_sampling_need_no_ml_framework() -> None:
    code = (
        "import sys, grmjudge.training as t;"
        "t.SPCTExample, t.spct_reward, t.is_correct, t.RejectionSampler, t.run_meta_sampling, t.grpo_rows;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ""


@pytest.mark.parametrize("name", ["train_sft", "JudgeGRPOConfig", "train_meta_rm"])
def test_trainers_without_trl_raise_missing_dependency_naming_the_extra(name: str) -> None:
    code = (
        "import sys; sys.modules['trl'] = None\n"
        "import grmjudge.training as t\n"
        "from grmjudge.exceptions import MissingDependencyError\n"
        "try:\n"
        f"    t.{name}\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    out = run(code)
    assert out.returncode == 0, out.stderr
    assert "pip install 'grmjudge[train]'" in out.stdout


def test_every_exported_name_resolves_to_its_module() -> None:
    where = training._WHERE  # pyright: ignore[reportPrivateUsage]
    assert sorted(where) == training.__all__
    for name, module in where.items():
        if module in training._HEAVY:  # pyright: ignore[reportPrivateUsage]
            continue  # imports torch and TRL: resolved by the engine tests
        assert getattr(training, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        training.nothing  # noqa: B018
