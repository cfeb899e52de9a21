"""One headless Chromium per test module, and one judged score run per module (both take seconds to make)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.report.browser import browser_paths, chromium
from tests.report.runs import write_score_run


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A selenium driver on Debian's chromium; skipped where the browser or selenium is not installed."""
    pytest.importorskip("selenium")
    if browser_paths() is None:
        pytest.skip("chromium and chromedriver are not installed (scripts/dev-install.sh installs them)")
    with chromium() as driver:
        yield driver


@pytest.fixture(scope="module")
def score_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The input and output files of a real judge run (see ``tests/report/runs.py``)."""
    return write_score_run(tmp_path_factory.mktemp("score-run"))
