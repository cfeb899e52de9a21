"""A 100,000-item run gives a page of bounded size that Chromium loads within a stated time.

The bound is generous: ``benchmarks/report_load.py`` measured 0.3 s to draw the page on two shared CPU cores. It
catches a page that would put every item on it, not a few hundred milliseconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from grmjudge.report import write_report
from tests.report.large import write_large_run

ITEMS = 100_000
LOAD_BOUND_S = 10.0
SIZE_BOUND = 5_000_000


@pytest.mark.slow
def test_a_100k_item_run_loads_within_the_bound(browser: Any, tmp_path: Path) -> None:
    run = tmp_path / "large.jsonl"
    write_large_run(run, ITEMS, k=2)
    stats = write_report(run, tmp_path / "large.html")
    assert (stats.items, stats.shown) == (ITEMS, 500)
    assert stats.size < SIZE_BOUND
    start = time.perf_counter()
    browser.get((tmp_path / "large.html").as_uri())
    ready = browser.execute_script("return document.body.dataset.ready")
    elapsed = time.perf_counter() - start
    assert ready == "true"
    assert elapsed < LOAD_BOUND_S
    cards = browser.find_element("css selector", ".cards").text
    assert "100,000" in cards
    assert browser.execute_script("return document.body.dataset.visible") == "500"
