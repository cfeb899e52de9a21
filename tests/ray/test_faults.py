"""Faults on the Ray engine: a driver killed mid-run and resumed, and a key that no output, manifest or log shows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import cli_command, item, recording_server, run_in_process, score_args, write_jsonl
from tests.ray.conftest import WORKER_KEY, output_lines
from tests.servers import REPO_ROOT

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.*")]


def test_a_killed_driver_leaves_whole_shards_and_resume_judges_each_missing_item_once(
    tmp_path: Path, ray_cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    items = [item(i) for i in range(12)]
    source, out = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "HF_HUB_OFFLINE": "1"}
    with recording_server(tmp_path / "requests.jsonl", "--delay", "0.2", "--require-key", WORKER_KEY) as server:
        args = score_args(source, out, server.base_url, "--k", "2", "--engine", "ray")
        args += ["--batch-size", "2", "--cpus-per-actor", "0.5", "-q"]
        joined = [*args, "--ray-address", ray_cluster["address"]]  # a driver of its own on the running cluster
        with subprocess.Popen(cli_command(joined), cwd=REPO_ROOT, env=env, stderr=subprocess.DEVNULL) as driver:
            deadline = time.monotonic() + 60
            while not list(out.glob("part-*.jsonl")) and time.monotonic() < deadline and driver.poll() is None:
                time.sleep(0.02)
            driver.send_signal(signal.SIGKILL)
            driver.wait()
        first = output_lines(out)
        assert 0 < len(first) < len(items)  # killed partway, only whole shards left
        assert json.loads((out / "manifest.json").read_text())["status"] == "running"

        status, stderr = run_in_process([*args, "--resume"], capsys)

    assert status == 0, stderr
    final = output_lines(out)  # fails on a duplicate id
    assert sorted(final) == sorted(x["id"] for x in items)
    assert all(final[i] == line for i, line in first.items())  # nothing judged twice or rewritten
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["counts"]["already_done"] == len(first)


def test_refused_credentials_stop_the_job_and_no_output_manifest_or_log_shows_the_key(
    tmp_path: Path, ray_cluster: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    source, out = write_jsonl(tmp_path / "in.jsonl", [item(i) for i in range(4)]), tmp_path / "out"
    # a careless server that expects another key and echoes the one it was sent in its error
    with recording_server(tmp_path / "requests.jsonl", "--require-key", "sk-another-key-000000000000000") as server:
        args = score_args(source, out, server.base_url, "--k", "2", "--engine", "ray", "--cpus-per-actor", "0.5")
        status, stderr = run_in_process(args, capsys)

    assert status == 3 and "refused the credentials" in stderr, stderr
    assert json.loads((out / "manifest.json").read_text())["status"] == "aborted"
    written = [p for p in out.rglob("*") if p.is_file()]
    logs = [p for p in (ray_cluster["temp"]).rglob("*") if p.is_file() and p.suffix in (".log", ".out", ".err")]
    assert written and logs
    for path in [*written, *logs]:
        assert WORKER_KEY not in path.read_text(errors="replace"), path
    assert WORKER_KEY not in stderr
