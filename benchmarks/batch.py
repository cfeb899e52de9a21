"""Batch judging at scale: pairwise items streamed through ``python -m grmjudge.cli score``.

The CLI runs as a subprocess against the package's zero-latency fake GRM, served by uvicorn in its own process
behind a tiny wrapper that counts generation requests (``GET /count``). Three runs:

1. ``--small`` items with a fresh cache, 2. ``--items`` items with a fresh cache, 3. the same ``--items`` again
with the same cache (no ``--resume``): it must send zero requests.

Reported per run: wall time, items/s, samples/s, requests the server saw, and the CLI's peak RSS (``ru_maxrss``
of that one process, from ``os.wait4``). Memory is flat when the peak RSS of the large run is close to the
small one's. k defaults to 2 (one request per response order, two orders for a pair) so the run fits a
two-core machine in minutes; ``--k 8`` sends the paper's sample count with the same number of requests.

    python benchmarks/batch.py                      # 20,000 then 100,000 items, k=2, concurrency 64
    python benchmarks/batch.py --items 20000 --small 5000
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing grmjudge
    sys.path.insert(0, str(REPO_ROOT))
WORDS = "the a response answer explains careful step result because which other value check correct".split()


class CountingServer:
    """The package's fake GRM (recording off) plus a request counter at ``GET /count``."""

    def __init__(self) -> None:
        from grmjudge.testing.fake_openai import FakeOpenAIServer

        self.inner = FakeOpenAIServer(record=False)
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/count":
            body = json.dumps({"requests": self.requests}).encode()
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        if scope["type"] == "http" and scope["path"].endswith("completions"):
            self.requests += 1
        await self.inner(scope, receive, send)


@dataclass
class Run:
    label: str
    items: int
    seconds: float
    samples: int
    requests: int
    peak_rss_mb: float
    cpu_seconds: float
    status: int


def write_items(path: Path, n: int) -> None:
    """``n`` pairwise items of realistic size (a 20-word query, two 40-word responses), streamed to disk."""
    with path.open("w") as file:
        for i in range(n):
            query = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(20)) + f" #{i}?"
            responses = [" ".join(WORDS[(i * r + j) % len(WORDS)] for j in range(40 + r)) for r in (1, 2)]
            file.write(json.dumps({"id": f"q{i}", "query": query, "responses": responses}) + "\n")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen([sys.executable, __file__, "--serve", "--port", str(port)], cwd=REPO_ROOT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the fake server did not start")


def count(port: int) -> int:
    return int(httpx.get(f"http://127.0.0.1:{port}/count", timeout=5).json()["requests"])


def run_cli(label: str, port: int, source: Path, output: Path, cache: Path, n: int, args: argparse.Namespace) -> Run:
    command = [
        sys.executable, "-m", "grmjudge.cli", "score", str(source), "-o", str(output),
        "--judge", "openai:fake-grm", "--base-url", f"http://127.0.0.1:{port}/v1",
        "--k", str(args.k), "--concurrency", str(args.concurrency), "--cache", str(cache), "-q",
    ]  # fmt: skip
    before = count(port)
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    _, wait_status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(wait_status)
    samples = n * args.k
    return Run(
        label=label,
        items=n,
        seconds=seconds,
        samples=samples,
        requests=count(port) - before,
        peak_rss_mb=usage.ru_maxrss / 1024,  # Linux reports KiB
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        status=process.returncode,
    )


def report(runs: list[Run]) -> None:
    print(f"{'run':<28}{'items':>9}{'wall s':>9}{'items/s':>10}{'samples/s':>11}{'requests':>10}{'peak RSS MB':>13}")
    for r in runs:
        print(
            f"{r.label:<28}{r.items:>9,}{r.seconds:>9.1f}{r.items / r.seconds:>10,.0f}{r.samples / r.seconds:>11,.0f}"
            f"{r.requests:>10,}{r.peak_rss_mb:>13.1f}   (cli cpu {r.cpu_seconds:.1f}s, exit {r.status})"
        )
    small, large, cached = runs
    print(f"peak RSS {large.items:,} / {small.items:,} items: {large.peak_rss_mb / small.peak_rss_mb:.2f}x")
    print(f"cached rerun: {cached.requests} requests, {large.seconds / cached.seconds:.2f}x faster than the first run")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        import uvicorn

        uvicorn.run(CountingServer(), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
        return
    port = free_port()
    server = start_server(port)
    try:
        with tempfile.TemporaryDirectory(prefix="grmjudge-batch-") as folder:
            tmp = Path(folder)
            runs: list[Run] = []
            for label, n in (
                (f"fresh cache, {args.small:,}", args.small),
                (f"fresh cache, {args.items:,}", args.items),
            ):
                source = tmp / f"in-{n}.jsonl"
                write_items(source, n)
                runs.append(run_cli(label, port, source, tmp / f"out-{n}.jsonl", tmp / f"c-{n}.sqlite", n, args))
            big = args.items
            source, cache = tmp / f"in-{big}.jsonl", tmp / f"c-{big}.sqlite"
            runs.append(run_cli("same cache again", port, source, tmp / "out-again.jsonl", cache, big, args))
            lines = sum(1 for _ in (tmp / "out-again.jsonl").open())
            print(f"k={args.k}, concurrency={args.concurrency}; rerun output lines: {lines:,}")
            report(runs)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
