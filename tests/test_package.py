from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grmjudge

HEAVY = ("torch", "transformers", "vllm", "trl", "datasets", "accelerate", "tokenizers", "numpy")


def test_import_is_light_in_a_fresh_interpreter() -> None:
    code = (
        "import sys, grmjudge, grmjudge.backends, grmjudge.meta, grmjudge.testing;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names_are_unique_and_importable() -> None:
    assert len(set(grmjudge.__all__)) == len(grmjudge.__all__)
    for name in grmjudge.__all__:
        assert hasattr(grmjudge, name), name


def test_ships_type_information() -> None:
    assert (Path(grmjudge.__file__).parent / "py.typed").exists()
