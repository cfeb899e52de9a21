"""Client overhead of grmjudge against a zero-latency OpenAI-compatible server.

Starts ``python -m grmjudge.testing.fake_openai`` (uvicorn) in a separate process, then sends the same HTTP
requests three ways, in this order, each timed with ``time.perf_counter`` after a short warm-up:

a. a raw ``aiohttp.ClientSession`` (the floor),
b. a raw ``httpx.AsyncClient`` on httpx's own transport (for reference),
c. ``Judge(OpenAIBackend(base_url, model)).score_many(items, k, concurrency)``.

The raw clients send exactly the requests the judge sends: one per distinct response order of each item (for
pairwise items, k=8 and the balanced design: 2 requests of n=4), with the bodies OpenAIBackend builds from
the real prompt-rendering code. They keep ``concurrency`` requests in flight with a fixed pool of workers,
serialize each body to JSON and decode each answer, as any client must. The server is single-process, so the
numbers are for this machine only; compare ratios, not seconds. Each row also gives the CPU time the client
process spent, which a busy machine disturbs much less than wall time.

``--breakdown`` adds two rows that split grmjudge's overhead: httpx on the aiohttp transport alone (for
reference: grmjudge's own client for plain HTTP is its lean HTTP/1.1 client) and the judge on an in-memory
backend (no HTTP at all). ``--profile`` prints a cProfile of the timed grmjudge pass.

Every run also prints the judge's own work per item, step by step: a separate pass calls, on the same items, the
functions a judge call runs (validation and the order plan, prompt rendering, request building, reply decoding,
parsing into samples, the vote, the result and its provenance), each timed with ``time.perf_counter`` (best of 3
passes), so the library itself carries no timing code. The JSON steps are work every HTTP client does (the raw
clients too). With ``--breakdown``, what the in-memory judge spends beyond these steps is the async part: tasks,
batching, the request limiter.

Usage: ``python benchmarks/overhead.py [--items 2000] [--k 8] [--concurrency 64] [--repeats 1]
[--skip-httpx] [--breakdown] [--profile]``
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import itertools
import json
import os
import platform
import pstats
import random
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing grmjudge
    sys.path.insert(0, str(REPO_ROOT))

import aiohttp  # noqa: E402
import httpx  # noqa: E402
from httpx_aiohttp import HttpxAiohttpClient  # noqa: E402

from grmjudge import BatchResult, Completion, Generation, GenerationRequest, Judge, JudgeItem, JudgeSettings  # noqa: E402
from grmjudge import judge as judge_module  # noqa: E402
from grmjudge._inputs import check_item_id, check_k, validate_input  # noqa: E402
from grmjudge._records import validated  # noqa: E402
from grmjudge._runtime import run_on_runtime  # noqa: E402
from grmjudge._sampling import generation_request, judged_sample  # noqa: E402
from grmjudge.backends import Backend, FunctionBackend, OpenAIBackend  # noqa: E402
from grmjudge.prompts import count_markers, judge_messages  # noqa: E402
from grmjudge.results import ScoreResult  # noqa: E402
from grmjudge.testing.fake_openai import FakeOpenAIServer, FakeRequest, default_judgement  # noqa: E402
from grmjudge.types import Usage  # noqa: E402
from grmjudge.voting import apply_permutation, derive_seed, group_by_permutation, plan_permutations  # noqa: E402

MODEL = "fake-grm"
TARGET_RATIO = 1.5
WARMUP_ITEMS = 64
STEP_ITEMS = 500
"""Items of the step-by-step pass (their first STEP_ITEMS), enough for steady per-item times."""


@dataclass
class Run:
    """One timed pass of one client: wall time, and the CPU time this (client) process spent in it."""

    requests: int
    samples: int
    seconds: float
    cpu_seconds: float


@dataclass
class Row:
    """Every repeat of one client."""

    name: str
    runs: list[Run]

    @property
    def best(self) -> Run:
        return min(self.runs, key=lambda run: run.seconds)


class Clock:
    """Wall and process CPU time since it was made."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def run(self, requests: int, samples: int) -> Run:
        return Run(requests, samples, time.perf_counter() - self.wall, time.process_time() - self.cpu)


# ---------------------------------------------------------------- the server process


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def fake_server(port: int) -> Iterator[str]:
    """The zero-latency fake GRM under uvicorn in its own process; yields its /v1 base URL."""
    command = [sys.executable, "-m", "grmjudge.testing.fake_openai", "--port", str(port), "--no-record"]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        base_url = f"http://127.0.0.1:{port}/v1"
        wait_until_ready(base_url, process)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr is not None:
            process.stderr.close()


def wait_until_ready(base_url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"the fake server exited with {process.returncode}:\n{error}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=1) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            raise SystemExit("the fake server did not start in time")
        time.sleep(0.05)


# ---------------------------------------------------------------- the workload


def make_items(count: int, offset: int = 0) -> list[JudgeItem]:
    """Distinct pairwise items with varied lengths, so prompts, orders and scores differ per item."""
    rng = random.Random(1234 + offset)
    words = "the answer is because therefore we note that each value holds for all cases here".split()
    items: list[JudgeItem] = []
    for i in range(offset, offset + count):
        query = f"Question {i}: what is {i} + {2 * i}, and why?"
        responses = tuple(
            f"Response {r} to {i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(20, 80))) for r in range(2)
        )
        items.append(JudgeItem(query=query, responses=responses))
    return items


def request_bodies(items: Sequence[JudgeItem], k: int, settings: JudgeSettings, first_index: int = 0) -> list[dict]:
    """The JSON bodies the judge sends for ``items`` in score_many (item ids are their positions)."""
    bodies: list[dict[str, Any]] = []
    for index, item in enumerate(items, start=first_index):
        item_id = item.id if item.id is not None else str(index)
        rng = random.Random(derive_seed(settings.seed, item_id, "order"))
        permutations = plan_permutations(len(item.responses), k, settings.shuffle, rng)
        for perm, slots in group_by_permutation(permutations).items():
            messages = judge_messages(settings.template, item.query, apply_permutation(item.responses, perm))
            body: dict[str, Any] = {
                "model": MODEL,
                "n": len(slots),
                "temperature": settings.temperature_for(k),
                "max_tokens": settings.max_tokens,
                "messages": [{"role": m.role, "content": m.content} for m in messages],
                "seed": derive_seed(settings.seed, item_id, "sample", slots[0], 0),
            }
            bodies.append(body)
    return bodies


async def check_bodies_match_the_judge(items: Sequence[JudgeItem], k: int, settings: JudgeSettings) -> None:
    """Guard: the raw bodies are exactly what the judge sends (checked in-process on a recording fake server)."""
    server = FakeOpenAIServer(model=MODEL)
    transport = httpx.ASGITransport(app=server)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake") as client:
        judge = Judge(OpenAIBackend("http://fake/v1", MODEL, http_client=client), settings=settings)
        await judge.score_many(items, k=k)
    sent = sorted(json.dumps(r.body) for r in server.requests)
    built = sorted(json.dumps(body) for body in request_bodies(items, k, settings))
    if sent != built:
        raise SystemExit(f"the raw bodies differ from the judge's:\n{sent[0]}\n{built[0]}")


# ---------------------------------------------------------------- the clients


async def pool(bodies: Sequence[dict[str, Any]], concurrency: int, post: Callable[[dict], Awaitable[int]]) -> Run:
    """Send every body with ``concurrency`` workers; count requests and choices received."""
    queue = iter(bodies)
    samples = 0
    requests = 0

    async def worker() -> None:
        nonlocal samples, requests
        for body in queue:
            received = await post(body)  # not `samples += await ...`: that reads samples before the await
            samples += received
            requests += 1

    clock = Clock()
    async with asyncio.TaskGroup() as tg:
        for _ in range(concurrency):
            tg.create_task(worker())
    return clock.run(requests, samples)


async def raw_aiohttp(url: str, warmup: list[dict], bodies: list[dict], concurrency: int) -> Run:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(body: dict[str, Any]) -> int:
            async with session.post(url, json=body) as response:
                response.raise_for_status()
                payload = await response.json()
            return len(payload["choices"])

        await pool(warmup, concurrency, post)
        return await pool(bodies, concurrency, post)


async def raw_httpx(
    url: str, warmup: list[dict], bodies: list[dict], concurrency: int, client_class: type[httpx.AsyncClient]
) -> Run:
    """A raw httpx client: ``httpx.AsyncClient`` (httpx's transport) or ``HttpxAiohttpClient`` (grmjudge's)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with client_class(limits=limits, timeout=300.0) as client:

        async def post(body: dict[str, Any]) -> int:
            response = await client.post(url, json=body)
            response.raise_for_status()
            return len(response.json()["choices"])

        await pool(warmup, concurrency, post)
        return await pool(bodies, concurrency, post)


async def grmjudge_run(
    backend: Backend, warmup: list[JudgeItem], items: list[JudgeItem], k: int, concurrency: int, profile: bool
) -> tuple[Run, str | None]:
    async with Judge(backend) as judge:
        await judge.score_many(warmup, k=k, concurrency=concurrency)
        profiler = cProfile.Profile() if profile else None

        async def timed() -> list[BatchResult]:
            """The timed pass, on grmjudge's event loop thread, where a profiler must run to see the work."""
            if profiler is not None:
                profiler.enable()
            try:
                return await judge.score_many(items, k=k, concurrency=concurrency)
            finally:
                if profiler is not None:
                    profiler.disable()

        clock = Clock()
        results = await run_on_runtime(timed)
        run = clock.run(0, 0)
    failed = [r for r in results if r.result is None or not r.result.ok]
    if failed:
        raise SystemExit(f"{len(failed)} items failed, e.g. {failed[0]}")
    run.requests = sum(r.result.usage.requests for r in results if r.result is not None)
    run.samples = sum(sum(s.text is not None for s in r.result.samples) for r in results if r.result is not None)
    report = None
    if profiler is not None:
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out).strip_dirs()
        stats.sort_stats("tottime").print_stats(40)
        stats.sort_stats("cumulative").print_stats(60)
        report = out.getvalue()
    return run, report


def no_http_backend(bodies: Sequence[dict[str, Any]]) -> FunctionBackend:
    """A backend that answers from memory what the fake server would, to time the judge's own work."""
    answers: dict[str, tuple[Completion, ...]] = {}
    for body in bodies:
        request = FakeRequest(path="/v1/chat/completions", body=body, headers={})
        text = default_judgement(request, 0)
        answers[body["messages"][-1]["content"]] = (Completion(text=text),) * body["n"]

    def answer(request: GenerationRequest) -> Generation:
        return Generation(completions=answers[request.messages[-1].content], model=MODEL)

    return FunctionBackend(answer, model=MODEL)


# ---------------------------------------------------------------- the judge's own work, step by step


STEPS = (
    "validate + plan orders",
    "render prompts",
    "build requests + JSON",
    "decode replies (JSON)",
    "parse into samples",
    "vote",
    "result + provenance",
)


def fake_reply(body: dict[str, Any]) -> bytes:
    """The fake server's 200 body for ``body``, as bytes: what the decoding step reads."""
    text = default_judgement(FakeRequest(path="/v1/chat/completions", body=body, headers={}), 0)
    choices = [
        {"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        for i in range(body["n"])
    ]
    usage = {"prompt_tokens": 100, "completion_tokens": 20 * body["n"], "total_tokens": 100 + 20 * body["n"]}
    return json.dumps({"model": MODEL, "choices": choices, "usage": usage}).encode()


async def step_times(items: Sequence[JudgeItem], k: int, settings: JudgeSettings) -> dict[str, float]:
    """Seconds per item of each step of ``Judge.score`` on ``items``, calling the functions the judge calls."""
    backend = OpenAIBackend("http://127.0.0.1:9/v1", MODEL)  # builds and reads bodies; never connects
    judge = Judge(backend, settings=settings)
    s = settings
    bodies = request_bodies(items, k, s)
    replies = {json.dumps(body).encode(): fake_reply(body) for body in bodies}  # keyed by the bytes sent
    spent = dict.fromkeys(STEPS, 0.0)
    for index, item in enumerate(items):
        t0 = time.perf_counter()
        check_k(k, s.max_k)
        messages, texts = validate_input(item.query, item.responses)
        s.template.check_response_count(len(texts))
        item_id = check_item_id(str(index)) or str(index)
        rng = random.Random(derive_seed(s.seed, item_id, "order"))
        permutations = plan_permutations(len(texts), k, s.shuffle, rng)
        t1 = time.perf_counter()
        groups = group_by_permutation(permutations)
        prompts = [judge_messages(s.template, messages, apply_permutation(texts, perm)) for perm in groups]
        t2 = time.perf_counter()
        job = judge._job(s, k, messages, texts, permutations, item_id)  # pyright: ignore[reportPrivateUsage]
        requests = []
        for (perm, slots), prompt in zip(groups.items(), prompts, strict=True):
            seed = derive_seed(s.seed, item_id, "sample", slots[0], 0)
            request = generation_request(job, prompt, len(slots), seed)
            data = json.dumps(backend._request_body(request)).encode()  # as HTTPClient.post_json sends it
            requests.append((perm, slots, seed, data))
        t3 = time.perf_counter()
        generations = [backend._parse_response(json.loads(replies[data]), len(slots)) for _, slots, _, data in requests]
        t4 = time.perf_counter()
        drawn = {}
        for (perm, slots, seed, _), generation in zip(requests, generations, strict=True):
            for i, (slot, completion) in enumerate(zip(slots, generation.completions, strict=True)):
                drawn[slot] = judged_sample(job, slot, perm, completion, seed + i, 0)
        samples = [drawn[i] for i in range(k)]
        t5 = time.perf_counter()
        tie_rng = lambda item_id=item_id: random.Random(derive_seed(s.seed, item_id, "tie"))  # noqa: E731
        tally = judge_module._tally(samples, len(texts), tie_rng)
        t6 = time.perf_counter()
        usage = sum((g.usage for g in generations), Usage())
        provenance = judge._provenance(s, k, False, None, item_id, count_markers(messages, texts))
        validated(ScoreResult, **tally, samples=samples, usage=usage, provenance=provenance)
        t7 = time.perf_counter()
        for step, (start, end) in zip(STEPS, itertools.pairwise((t0, t1, t2, t3, t4, t5, t6, t7)), strict=True):
            spent[step] += end - start
    return {step: seconds / len(items) for step, seconds in spent.items()}


def best_step_times(items: Sequence[JudgeItem], k: int, settings: JudgeSettings, passes: int = 3) -> dict[str, float]:
    """Each step's best per-item time over ``passes`` passes (the machine's noise only ever adds time)."""
    runs = [asyncio.run(step_times(items, k, settings)) for _ in range(passes)]
    return {step: min(run[step] for run in runs) for step in STEPS}


def print_steps(steps: dict[str, float], in_memory: Row | None, items: int) -> None:
    total = sum(steps.values())
    print(f"\nThe judge's own work per item (best of 3 passes over {STEP_ITEMS} items; no timing code in the library):")
    for step, seconds in steps.items():
        print(f"  {step:<34} {seconds * 1e6:8.1f} us")
    print(f"  {'sum of the steps':<34} {total * 1e6:8.1f} us")
    if in_memory is not None:
        whole = in_memory.best.cpu_seconds / items
        print(f"  {'whole in-memory judge (client CPU)':<34} {whole * 1e6:8.1f} us")
        rest = whole - total + steps["build requests + JSON"] + steps["decode replies (JSON)"]
        print(f"  {'  the rest: tasks, batching, limits':<34} {rest * 1e6:8.1f} us  (and the fake backend; no JSON)")


# ---------------------------------------------------------------- main


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    floor = rows[0].best.seconds
    print()
    print(
        f"{args.items} pairwise items x k={args.k}, concurrency {args.concurrency}, "
        f"best of {args.repeats} by wall time; python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"aiohttp {aiohttp.__version__}, httpx {httpx.__version__}"
    )
    header = (
        f"{'client':<31} {'requests':>8} {'samples':>8} {'wall (s)':>9} {'vs aiohttp':>10} "
        f"{'client CPU (s)':>14}  wall of each run (s)"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        best = row.best
        runs = ", ".join(f"{run.seconds:.3f}" for run in row.runs)
        print(
            f"{row.name:<31} {best.requests:>8} {best.samples:>8} {best.seconds:>9.3f} "
            f"{best.seconds / floor:>9.2f}x {best.cpu_seconds:>14.3f}  {runs}"
        )
    judge = next(row for row in rows if row.name.startswith("grmjudge Judge"))
    ratio = judge.best.seconds / floor
    verdict = "PASS" if ratio <= TARGET_RATIO else "ABOVE TARGET"
    cpu_ratio = judge.best.cpu_seconds / rows[0].best.cpu_seconds
    print(f"\ngrmjudge / raw aiohttp (wall, same run) = {ratio:.2f}, target <= {TARGET_RATIO:.2f}: {verdict}")
    print(f"grmjudge / raw aiohttp (client CPU) = {cpu_ratio:.2f} (steadier than wall time on a busy machine)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--skip-httpx", action="store_true", help="leave out the slow httpx reference run")
    parser.add_argument("--profile", action="store_true", help="cProfile the timed grmjudge pass (in-process)")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also time httpx on the aiohttp transport alone, and the judge with an in-memory backend",
    )
    args = parser.parse_args()

    settings = JudgeSettings()
    items = make_items(args.items)
    asyncio.run(check_bodies_match_the_judge(items[:8], args.k, settings))
    warmup_items = make_items(WARMUP_ITEMS, offset=10**6)
    bodies = request_bodies(items, args.k, settings)
    warmup_bodies = request_bodies(warmup_items, args.k, settings)

    with fake_server(args.port or free_port()) as base_url:
        url = f"{base_url}/chat/completions"
        aio, hx, hx_aio, judge, logic = (
            Row("raw aiohttp.ClientSession", []),
            Row("raw httpx.AsyncClient", []),
            Row("raw httpx on aiohttp transport", []),
            Row("grmjudge Judge.score_many", []),
            Row("grmjudge, no HTTP (in memory)", []),
        )
        profile_report = None
        for _ in range(args.repeats):
            aio.runs.append(asyncio.run(raw_aiohttp(url, warmup_bodies, bodies, args.concurrency)))
            if not args.skip_httpx:
                hx.runs.append(asyncio.run(raw_httpx(url, warmup_bodies, bodies, args.concurrency, httpx.AsyncClient)))
            if args.breakdown:
                hx_aio.runs.append(
                    asyncio.run(raw_httpx(url, warmup_bodies, bodies, args.concurrency, HttpxAiohttpClient))
                )
            backend = OpenAIBackend(base_url, MODEL)
            run, report = asyncio.run(
                grmjudge_run(backend, warmup_items, items, args.k, args.concurrency, args.profile)
            )
            judge.runs.append(run)
            profile_report = report or profile_report
            if args.breakdown:
                in_memory = no_http_backend([*warmup_bodies, *bodies])
                run, _ = asyncio.run(grmjudge_run(in_memory, warmup_items, items, args.k, args.concurrency, False))
                logic.runs.append(run)
    steps = best_step_times(items[:STEP_ITEMS], args.k, settings)
    rows = [row for row in (aio, hx, hx_aio, judge, logic) if row.runs]
    expected = len(bodies)
    for row in rows:
        if row is logic:
            continue  # the in-memory backend makes no HTTP requests
        if any(run.requests != expected or run.samples != args.items * args.k for run in row.runs):
            raise SystemExit(f"{row.name}: {row.runs}, expected {expected} requests, {args.items * args.k} samples")
    print_table(rows, args)
    print_steps(steps, logic if logic.runs else None, args.items)
    if profile_report is not None:
        print("\ncProfile of the timed grmjudge pass:\n")
        print(profile_report)


if __name__ == "__main__":
    main()
