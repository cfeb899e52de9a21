"""Time ``grmjudge report`` on a synthetic 100,000-item score output: writing the page and loading it in Chromium.

Run from the repository root with Debian's chromium, chromium-driver and selenium installed::

    python benchmarks/report_load.py --items 100000 --k 4

Prints the seconds to write the input, to build the page, the page's size, and the median of three cold loads
(a fresh tab each time) until the page's script has drawn the item table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from grmjudge.report import write_report
from tests.report.browser import chromium
from tests.report.large import write_large_run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--shown", type=int, default=500, help="items shown in full")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        run, page = Path(folder) / "run.jsonl", Path(folder) / "report.html"
        start = time.perf_counter()
        write_large_run(run, args.items, k=args.k)
        written = time.perf_counter() - start
        start = time.perf_counter()
        stats = write_report(run, page, items=args.shown)
        built = time.perf_counter() - start
        loads: list[float] = []
        with chromium() as browser:
            for _ in range(3):
                browser.get("about:blank")
                start = time.perf_counter()
                browser.get(page.as_uri())
                assert browser.execute_script("return document.body.dataset.ready") == "true"
                loads.append(time.perf_counter() - start)
    print(f"items {stats.items:,} (k={args.k}), shown in full {stats.shown}, input written in {written:.1f} s")
    print(f"page built in {built:.1f} s, {stats.size / 1e6:.2f} MB")
    print(f"load until drawn: median {statistics.median(loads):.2f} s of {', '.join(f'{t:.2f}' for t in loads)}")


if __name__ == "__main__":
    main()
