"""The import contracts in pyproject.toml: they hold on the package, and each breaks on a planted violation."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACTS: list[str] = [
    contract["id"]
    for contract in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
]


def lint_imports(root: Path, contract: str) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package under ``root`` with that root's pyproject.toml, one contract."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--contract", contract, str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("contract", CONTRACTS)
def test_the_package_keeps_the_contract(contract: str) -> None:
    result = lint_imports(ROOT, contract)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_contract_is_checked_here() -> None:
    assert sorted(CONTRACTS) == ["layers", "no-cycles", "private", "testing"]


@pytest.fixture(scope="module")
def copy_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The package's Python files and pyproject.toml, copied to plant violations in."""
    root = tmp_path_factory.mktemp("copy")
    shutil.copytree(ROOT / "grmjudge", root / "grmjudge", ignore=shutil.ignore_patterns("_demo", "__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


VIOLATIONS = [
    # (contract, module that gains the import, the import, what the report must name)
    ("layers", "voting", "from grmjudge.backends import base", "grmjudge.voting -> grmjudge.backends.base"),
    ("layers", "backends/base", "from grmjudge import judge", "grmjudge.backends.base -> grmjudge.judge"),
    ("layers", "meta/base", "from grmjudge import scalar", "grmjudge.meta.base -> grmjudge.scalar"),
    ("no-cycles", "meta/base", "from grmjudge.meta import http", "No cycles are allowed in grmjudge.meta."),
    ("private", "judge", "from grmjudge.backends import _spec", "grmjudge.judge -> grmjudge.backends._spec"),
    ("testing", "cache", "from grmjudge.testing import faults", "grmjudge.cache -> grmjudge.testing.faults"),
]


@pytest.mark.parametrize(
    ("contract", "module", "line", "reported"), VIOLATIONS, ids=[v[0] + ":" + v[1] for v in VIOLATIONS]
)
def test_a_planted_violation_breaks_the_contract(
    copy_root: Path, contract: str, module: str, line: str, reported: str
) -> None:
    path = copy_root / "grmjudge" / f"{module}.py"
    original = path.read_text()
    path.write_text(f"{original}\n{line}  # noqa\n")
    try:
        result = lint_imports(copy_root, contract)
    finally:
        path.write_text(original)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "BROKEN" in result.stdout
    assert reported in result.stdout, result.stdout
