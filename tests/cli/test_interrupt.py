"""Ctrl-C and ``kill`` write every finished verdict before exiting, so a run without a cache pays for nothing twice.

Nothing here waits for a quiet spell: the slow item is held by the server until the test releases it, and the
test signals the command once the command's own progress line says every other item is finished.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from grmjudge.cli.runner import REORDER_FACTOR
from tests.cli.conftest import cli_command, item, read_jsonl, recording_server, run_subprocess, score_args, write_jsonl
from tests.servers import REPO_ROOT

pytestmark = pytest.mark.slow

ITEM_ID = re.compile(r"item-\d+")
CONCURRENCY = 4
BEHIND = REORDER_FACTOR * CONCURRENCY
"""Items after the slow one: as many as the reorder buffer holds before reading pauses, so all of them are read."""
DEADLINE = 120.0
"""Seconds a wait may take before the test fails: a guard against a hang, never a pace the run must keep."""


@pytest.mark.parametrize(
    ("signals", "status"),
    [
        ([signal.SIGINT], 130),
        ([signal.SIGTERM], 143),  # what kill and schedulers send on preemption
        ([signal.SIGINT, signal.SIGINT], 130),  # a second Ctrl-C while the finished items are written
    ],
    ids=["ctrl-c", "kill", "ctrl-c-twice"],
)
def test_a_signal_writes_the_items_waiting_behind_a_slow_one_and_resume_judges_only_the_rest(
    tmp_path: Path, signals: list[signal.Signals], status: int
) -> None:
    items = [item(i) for i in range(6 + BEHIND)]
    items[5]["responses"][0] += " SLOW-ITEM"  # held by the server until the test ends
    ids = [i["id"] for i in items]
    source, output, release = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out.jsonl", tmp_path / "release"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    flags = ("--k", "2", "--concurrency", str(CONCURRENCY))  # no --cache: only the output keeps paid work
    progress = ("--progress-every", "0.05")

    slow = ("--slow-marker", "SLOW-ITEM", "--slow-until", str(release))

    with recording_server(tmp_path / "requests.jsonl", *slow) as server:
        try:
            with subprocess.Popen(
                cli_command(score_args(source, output, server.base_url, *flags, *progress)),
                cwd=REPO_ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            ) as process:
                stderr = _Lines(process)
                # every item but the slow one is finished: 5 written, the rest waiting in the reorder buffer
                stderr.wait_for(lambda line: f"lines {len(items) - 1:,}/{len(items):,} " in line)
                for signum in signals:
                    process.send_signal(signum)
                process.wait(timeout=DEADLINE)
                text = stderr.text()
        finally:
            release.touch()

    assert process.returncode == status, text
    assert f"interrupted ({signals[0].name})" in text and "Traceback" not in text
    written = [r["id"] for r in read_jsonl(output)]  # every line whole
    assert written == [i for i in ids if i != "item-5"]  # in input order, with a gap where item-5 is missing
    assert f"{BEHIND:,} finished items were written after items still in flight" in text

    with recording_server(tmp_path / "resumed.jsonl") as server:
        resumed = run_subprocess(score_args(source, output, server.base_url, *flags, "-q", "--resume"), env)
        asked_again = {_item_of(r) for r in server.requests()}

    assert resumed.returncode == 0, resumed.stderr
    assert sorted(r["id"] for r in read_jsonl(output)) == sorted(ids)  # each item exactly once
    assert asked_again == {"item-5"}  # no finished item paid for twice


class _Lines:
    """The stderr lines of a running command, read as they come by a thread."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        assert process.stderr is not None
        self._stream = process.stderr
        self._lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def wait_for(self, found: Callable[[str], bool]) -> None:
        """Wait until a line satisfies ``found``; fail if the command ends first or DEADLINE passes."""
        deadline = time.monotonic() + DEADLINE
        with self._changed:
            while not any(found(line) for line in self._lines):
                assert self._reader.is_alive(), "the command ended early:\n" + "".join(self._lines)
                assert time.monotonic() < deadline, "the command never got there:\n" + "".join(self._lines[-20:])
                self._changed.wait(timeout=1.0)

    def text(self) -> str:
        """Everything the command wrote, once it has ended."""
        self._reader.join(timeout=DEADLINE)
        return "".join(self._lines)

    def _read(self) -> None:
        for line in self._stream:
            with self._changed:
                self._lines.append(line)
                self._changed.notify_all()


def _item_of(request: dict[str, object]) -> str:
    body = request["body"]
    assert isinstance(body, dict)
    (found,) = set(ITEM_ID.findall(str(body["messages"])))  # pyright: ignore[reportUnknownArgumentType]
    return found
