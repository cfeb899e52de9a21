"""The Ray integration loads Ray and pyarrow only when a pipeline is built."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_ray_integration_and_the_commands_loads_neither_ray_nor_pyarrow() -> None:
    code = (
        "import sys, grmjudge.integrations.ray, grmjudge.cli.ray_engine, grmjudge.engine_options, grmjudge.eval.cli;"
        "print(','.join(m for m in ('ray', 'pyarrow', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
