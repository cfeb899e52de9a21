"""What serving adds: ``grmjudge serve``'s latency and throughput against the same judge in process.

Both sides judge with one ``Judge`` over a zero-latency backend (a ``FunctionBackend`` that writes the fake GRM's
judgement from the prompt), so the difference is the service: HTTP, JSON, validation, the gate and the hand-over
to grmjudge's loop. The service runs ``create_app`` under uvicorn in a child process (as ``grmjudge serve`` does,
access log included); the client is aiohttp in this process. Printed, from one run:

1. latency: one request at a time (``--latency-requests``), p50 and p99 of each side, the added milliseconds
   and the ratio served / in process;
2. throughput: ``--throughput-requests`` with ``--concurrency`` in flight, requests per second and the ratio;
3. load: ``--load-requests`` from ``--concurrency`` concurrent clients, with the count of every status and
   of requests lost (sent but never answered).

The numbers are for this machine (client and service share its cores): compare ratios, not seconds.

Usage: ``python benchmarks/serve.py [--k 8] [--latency-requests 300] [--throughput-requests 2000]
[--load-requests 10000] [--concurrency 64]``
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import platform
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing grmjudge
    sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402

from grmjudge import GenerationRequest, Judge  # noqa: E402
from grmjudge.backends import FunctionBackend  # noqa: E402
from grmjudge.testing.fake_openai import FakeRequest, default_judgement  # noqa: E402

QUERY = "Which answer explains the result better?"


def zero_latency_judge() -> Judge:
    def answer(request: GenerationRequest) -> list[str]:
        body = {"messages": [m.model_dump() for m in request.messages]}
        text = default_judgement(FakeRequest(path="/v1/chat/completions", body=body, headers={}), 0)
        return [text] * request.n

    return Judge(FunctionBackend(answer, model="zero-latency"), max_concurrent_requests=256)


def item(i: int) -> dict[str, Any]:
    return {"query": f"{QUERY} (#{i})", "responses": [f"answer {i}", f"a longer answer {i}"]}


def serve_child(port: int) -> None:
    import uvicorn

    from grmjudge.serve.app import create_app
    from grmjudge.serve.config import ServiceConfig, ServiceLimits

    access = logging.getLogger("grmjudge.serve.access")
    access.addHandler(logging.FileHandler(os.devnull))
    access.setLevel(logging.INFO)
    access.propagate = False
    config = ServiceConfig(k=8, limits=ServiceLimits(max_queue=4096))
    uvicorn.run(
        create_app(zero_latency_judge(), config), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(root: str, process: subprocess.Popen[bytes]) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.poll() is not None:
                raise SystemExit("the service exited")
            try:
                async with session.get(root + "/healthz") as reply:
                    if reply.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit("the service did not start")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def latencies(call: Callable[[int], Awaitable[Any]], count: int, offset: int) -> list[float]:
    for i in range(20):  # warm-up
        await call(offset - 1 - i)
    seconds = []
    for i in range(count):
        start = time.perf_counter()
        await call(offset + i)
        seconds.append(time.perf_counter() - start)
    return seconds


async def pooled(
    call: Callable[[int], Awaitable[int]], count: int, concurrency: int, offset: int
) -> tuple[float, Counter[str]]:
    statuses: Counter[str] = Counter()
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index = next_index
            next_index += 1
            try:
                statuses[str(await call(offset + index))] += 1
            except Exception as exc:  # a lost request: counted, never hidden
                statuses[type(exc).__name__] += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))  # noqa: TID251 - a benchmark's client pool
    return time.perf_counter() - start, statuses


async def run(args: argparse.Namespace, root: str, child: subprocess.Popen[bytes]) -> None:
    try:
        await wait_ready(root, child)
        judge = zero_latency_judge()
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:

            async def served(i: int) -> int:
                async with session.post(root + "/v1/score", json={**item(i), "k": args.k}) as reply:
                    await reply.read()
                    return reply.status

            async def local(i: int) -> int:
                body = item(i)
                await judge.score(body["query"], body["responses"], args.k)
                return 200

            local_lat = await latencies(local, args.latency_requests, 1_000_000)
            served_lat = await latencies(served, args.latency_requests, 1_000_000)
            local_time, _ = await pooled(local, args.throughput_requests, args.concurrency, 2_000_000)
            served_time, served_status = await pooled(served, args.throughput_requests, args.concurrency, 2_000_000)
            load_time, load_status = await pooled(served, args.load_requests, args.concurrency, 3_000_000)
    finally:
        child.terminate()
        child.wait(timeout=30)
    print(
        f"grmjudge serve vs in process, k={args.k}, pairwise items, zero-latency backend; {platform.python_version()}, "
        f"{os.cpu_count()} CPUs shared by client and service"
    )
    print("\nlatency, one request at a time        p50 ms    p99 ms")
    for name, values in (("in process", local_lat), ("served", served_lat)):
        print(f"  {name:<34} {percentile(values, 0.5) * 1000:8.2f}  {percentile(values, 0.99) * 1000:8.2f}")
    added50 = (percentile(served_lat, 0.5) - percentile(local_lat, 0.5)) * 1000
    added99 = (percentile(served_lat, 0.99) - percentile(local_lat, 0.99)) * 1000
    print(f"  {'added by the service':<34} {added50:8.2f}  {added99:8.2f}")
    ratio50 = percentile(served_lat, 0.5) / percentile(local_lat, 0.5)
    ratio99 = percentile(served_lat, 0.99) / percentile(local_lat, 0.99)
    print(f"  {'ratio served / in process':<34} {ratio50:8.2f}  {ratio99:8.2f}")
    local_rps = args.throughput_requests / local_time
    served_rps = args.throughput_requests / served_time
    print(f"\nthroughput, {args.concurrency} in flight, {args.throughput_requests:,} requests")
    print(
        f"  in process {local_rps:9.1f} items/s   served {served_rps:9.1f} req/s   ratio {served_rps / local_rps:.3f}"
    )
    print(f"  served statuses: {dict(served_status)}")
    answered = sum(n for status, n in load_status.items() if status.isdigit())
    print(
        f"\nload: {args.load_requests:,} requests from {args.concurrency} concurrent clients in {load_time:.1f} s "
        f"({args.load_requests / load_time:.1f} req/s)"
    )
    print(f"  statuses: {dict(load_status)}; answered {answered:,}; lost {args.load_requests - answered:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--latency-requests", type=int, default=300)
    parser.add_argument("--throughput-requests", type=int, default=2000)
    parser.add_argument("--load-requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        serve_child(args.child)
        return
    port = free_port()
    child = subprocess.Popen([sys.executable, __file__, "--child", str(port)], cwd=REPO_ROOT)
    asyncio.run(run(args, f"http://127.0.0.1:{port}", child))


if __name__ == "__main__":
    main()
