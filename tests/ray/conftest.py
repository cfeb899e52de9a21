"""One local Ray cluster (2 CPUs) and one fake GRM server for the tests of this package, shut down when they end
(before tests/serve starts a Ray of its own); Ray's files under a temporary folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import RecordingServer, recording_server
from tests.servers import REPO_ROOT

pytest.importorskip("ray", reason="the Ray tests need the 'ray' extra")

WORKER_KEY = "sk-ray-worker-key-0123456789abcdef"
"""The API key the cluster's workers hold in their environment; no output, manifest or log may show it."""


@pytest.fixture(scope="package")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``ray.init(num_cpus=2)`` once; workers inherit ``WORKER_KEY`` as ``OPENAI_API_KEY``, as a node's env would."""
    import ray

    temp = tmp_path_factory.mktemp("ray")
    names = ("OPENAI_API_KEY", "RAY_USAGE_STATS_ENABLED", "PYTHONPATH")
    saved = {name: os.environ.get(name) for name in names}
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p)  # tests' own judges
    os.environ.update(OPENAI_API_KEY=WORKER_KEY, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=path)
    try:
        context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _temp_dir=str(temp))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield {"address": context.address_info["gcs_address"], "temp": temp}
    ray.shutdown()


@pytest.fixture(scope="package")
def ray_fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingServer]:
    """The CLI tests' zero-latency fake GRM (with a ``/classify`` meta RM), checking ``WORKER_KEY``."""
    log = tmp_path_factory.mktemp("fake") / "requests.jsonl"
    with recording_server(log, "--require-key", WORKER_KEY) as server:
        yield server


def output_lines(folder: Path) -> dict[str, str]:
    """Each output line of a Ray run's shards, by id; fails on a duplicate id."""
    return _lines(sorted(folder.glob("part-*.jsonl")))


def error_lines(folder: Path) -> dict[str, str]:
    """Each errors line of a Ray run, by id."""
    return _lines(sorted((folder / "errors").glob("part-*.jsonl")))


def _lines(files: list[Path]) -> dict[str, str]:
    import json

    found: dict[str, str] = {}
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            item_id = json.loads(line)["id"]
            assert item_id not in found, f"duplicate id {item_id}"
            found[item_id] = line
    return found
