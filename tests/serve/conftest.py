"""A real ``grmjudge serve`` process in front of a fake GRM server, as the tests of the service use it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.servers import REPO_ROOT, LocalServer, free_port, serve

KEY = "test-service-key-0123456789abcdef"
SECOND_KEY = "rotated-service-key-fedcba9876543210"


@dataclass
class Service:
    root: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text()


@contextmanager
def run_service(
    grm: LocalServer | str, args: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[Service]:
    """``grmjudge serve`` on a free port with the fake GRM as its backend; stops it (SIGTERM) on exit."""
    port = free_port()
    base = grm if isinstance(grm, str) else grm.base_url
    command = [sys.executable, "-m", "grmjudge.cli", "serve", "--judge", "openai:fake-grm", "--base-url", base]
    command += ["--port", str(port), *args]
    with (
        log.open("wb") as sink,
        subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=sink, env={**os.environ, **(env or {})}
        ) as process,
    ):
        root = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(root, process, log)
            yield Service(root, process, log)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_healthy(root: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(root + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the service did not start in time"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def grm() -> Iterator[LocalServer]:
    with serve("grmjudge.testing.fake_openai", ["--no-record"]) as server:
        yield server
