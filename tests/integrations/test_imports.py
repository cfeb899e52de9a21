"""The integrations import neither TRL nor verl nor any ML framework: they only follow their calling conventions."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "trl", "verl", "vllm", "datasets", "numpy")


def test_importing_the_integrations_stays_light() -> None:
    code = (
        "import sys, grmjudge.integrations.trl, grmjudge.integrations.verl;"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
