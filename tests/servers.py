"""Real local servers for tests: a module served by uvicorn in its own process on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalServer:
    base_url: str  # ends in /v1
    root: str
    process: subprocess.Popen[bytes]


@contextmanager
def serve(
    module: str = "grmjudge.testing.fake_openai", args: Sequence[str] = (), headers: Mapping[str, str] | None = None
) -> Iterator[LocalServer]:
    """Run ``python -m module --port N *args`` and wait until GET /v1/models (with ``headers``) answers 200."""
    port = free_port()
    command = [sys.executable, "-m", module, "--port", str(port), *args]
    with subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as process:
        root = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(root, process, headers or {})
            yield LocalServer(base_url=root + "/v1", root=root, process=process)
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_ready(root: str, process: subprocess.Popen[bytes], headers: Mapping[str, str]) -> None:
    deadline = time.monotonic() + 20
    with httpx.Client(base_url=root, timeout=5, headers=dict(headers)) as client:
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                if client.get("/v1/models").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start in time"
            time.sleep(0.05)
