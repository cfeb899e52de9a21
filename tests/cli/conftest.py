"""Helpers for the CLI tests: a real latency server with a request log, input files, and running the command."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from grmjudge.cli import main
from tests.servers import REPO_ROOT, LocalServer, serve

MODEL = "fake-grm"


@dataclass
class RecordingServer:
    """A running ``tests.cli.servers`` process and the log of every generation request it received."""

    server: LocalServer
    log: Path

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def requests(self) -> list[dict[str, Any]]:
        """Every request so far, in arrival order: ``{"t": unix time, "body": JSON body}``."""
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text().splitlines()]


@contextmanager
def recording_server(log: Path, *args: str) -> Generator[RecordingServer]:
    with serve("tests.cli.servers", ["--record", str(log), *args]) as server:
        yield RecordingServer(server, log)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[RecordingServer]:
    """A zero-latency server with a request log."""
    with recording_server(tmp_path / "requests.jsonl") as server:
        yield server


def item(i: int, *, label: int | None = None) -> dict[str, Any]:
    """A pairwise item whose two responses get different fake scores (the fake scores 1 + len % 10)."""
    record: dict[str, Any] = {
        "id": f"item-{i}",
        "query": f"Question {i}?",
        "responses": [f"item-{i} " + "a" * (i % 7), f"item-{i} " + "b" * (i % 7 + 3)],
    }
    if label is not None:
        record["label"] = label
    return record


def expected_scores(responses: Sequence[str], k: int) -> list[float]:
    """What the fake GRM's k votes sum to for these responses."""
    return [float(k * (1 + len(text) % 10)) for text in responses]


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def score_args(source: Path, output: Path, base_url: str, *extra: str) -> list[str]:
    return ["score", str(source), "-o", str(output), "--judge", f"openai:{MODEL}", "--base-url", base_url, *extra]


def run_in_process(args: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``grmjudge ARGS`` in this process: (exit status, stderr)."""
    status = main(list(args))
    return status, capsys.readouterr().err


def cli_command(args: Sequence[str]) -> list[str]:
    """``python -m grmjudge.cli ARGS`` for a subprocess."""
    return [sys.executable, "-m", "grmjudge.cli", *args]


def run_subprocess(args: Sequence[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(args), cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
