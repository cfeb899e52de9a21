"""Ctrl-C writes every finished verdict before exiting, so a run without a cache pays for nothing twice."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

from grmjudge.cli.runner import REORDER_FACTOR
from tests.cli.conftest import (
    RecordingServer,
    cli_command,
    item,
    read_jsonl,
    recording_server,
    run_subprocess,
    score_args,
    write_jsonl,
)
from tests.servers import REPO_ROOT

ITEM_ID = re.compile(r"item-\d+")
CONCURRENCY = 4


def test_ctrl_c_writes_the_items_waiting_behind_a_slow_one_and_resume_judges_only_the_rest(tmp_path: Path) -> None:
    items = [item(i) for i in range(400)]
    items[5]["responses"][0] += " SLOW-ITEM"  # holds the reorder buffer until the interrupt
    ids = [i["id"] for i in items]
    source, output = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    slow = ("--slow-marker", "SLOW-ITEM", "--slow-delay", "30")
    flags = ("--k", "2", "--concurrency", str(CONCURRENCY), "-q")  # no --cache: only the output keeps paid work

    with recording_server(tmp_path / "requests.jsonl", *slow) as server:
        process = subprocess.Popen(
            cli_command(score_args(source, output, server.base_url, *flags)),
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _wait_until_reading_pauses(server, process)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        answered = {_item_of(r) for r in server.requests()} - {"item-5"}  # every request but the slow one returned

    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    written = [r["id"] for r in read_jsonl(output)]  # every line whole
    assert len(answered) > REORDER_FACTOR * CONCURRENCY  # the reorder buffer was full at the interrupt
    assert sorted(written, key=ids.index) == written  # in input order, with a gap where item-5 is missing
    assert set(written) == answered  # nothing judged was dropped
    assert f"{len(written) - 5:,} finished items were written after items still in flight" in stderr

    with recording_server(tmp_path / "resumed.jsonl") as server:
        resumed = run_subprocess(score_args(source, output, server.base_url, *flags, "--resume"), env)
        asked_again = {_item_of(r) for r in server.requests()}

    assert resumed.returncode == 0, resumed.stderr
    final = [r["id"] for r in read_jsonl(output)]
    assert sorted(final) == sorted(ids)  # each item exactly once
    assert asked_again == set(ids) - answered  # no finished item paid for twice


def _wait_until_reading_pauses(server: RecordingServer, process: subprocess.Popen[str]) -> None:
    """Wait until the run stalls behind the slow item: the reorder buffer is full and no request went out for 1.5 s."""
    deadline = time.monotonic() + 60
    seen, quiet_since = -1, time.monotonic()
    while True:
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        assert time.monotonic() < deadline, "the run never paused behind the slow item"
        requests = server.requests()
        if len(requests) != seen:
            seen, quiet_since = len(requests), time.monotonic()
        elif time.monotonic() - quiet_since > 1.5:
            if len({_item_of(r) for r in requests} - {"item-5"}) > REORDER_FACTOR * CONCURRENCY:
                return
        time.sleep(0.05)


def _item_of(request: dict[str, object]) -> str:
    body = request["body"]
    assert isinstance(body, dict)
    (found,) = set(ITEM_ID.findall(str(body["messages"])))  # pyright: ignore[reportUnknownArgumentType]
    return found
