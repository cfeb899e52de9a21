"""Throughput of VLLMBackend against a vLLM server and against vLLM's own offline ``LLM.generate``.

The workload is ``Judge.score_many`` of ``--items`` pairwise items with k samples, all items in flight at once,
on the tiny random model (``build_tiny_model``, in a temp dir), max_tokens ``--max-tokens``. Three sides run
the same judge requests (recorded first on an in-memory ``FunctionBackend``, so prompts, ``n``, seeds,
temperature and max_tokens are the judge's own):

1. ``backend``: ``Judge`` over ``VLLMBackend`` (the in-process ``AsyncLLM``);
2. ``server``: ``Judge`` over ``OpenAIBackend`` against ``vllm serve`` (``serve_vllm``), which renders the chat
   template itself;
3. ``raw``: one ``LLM.generate`` call on the same prompts (the tokenizer's chat template, tokenized without
   special tokens) with the same ``SamplingParams``, no judge at all: the engine's own batch throughput.

Each side runs in a fresh process, one side after the other, so every engine has the machine to itself (the
server side's client runs in a process of its own, its engine in the server's). All engines are configured
alike: float32, eager, single-process executor, prefix caching on, chunked prefill off (vLLM on CPU kills the
engine when it chunks a seeded request's prefill), max_model_len 2048. A side builds its engine, runs a warm-up
on 8 other items, then times ``--passes`` passes. Pass p uses its own items, the same on every side, so no pass
finds an earlier pass's prompts in the prefix cache.

On a shared machine the same pass can take twice as long from one minute to the next, in wall time and even
in CPU time (measured: 0.6 to 1.7 s for one repeated, fully cached pass). The script therefore prints every
pass, with the CPU seconds that the side's processes (client, engine, server) spent in it and, of those, the
seconds of the process that runs the judge, and compares the sides by their best pass and by their median
pass: samples/s of each and the ratios of sides 1 and 2 to side 3 (target >= 0.9). It also counts the texts
the backend side shares with the raw side (seeded sampling makes them equal when the arithmetic is).

Usage: ``python benchmarks/local_vllm.py [--sides backend,server,raw] [--items 64] [--k 4] [--max-tokens 32]
[--passes 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
for path in (REPO_ROOT, REPO_ROOT / "benchmarks"):  # run from a checkout without installing grmjudge
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))
CPU_ENV = {
    "HF_HUB_OFFLINE": "1",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_ENABLE_V1_MULTIPROCESSING": "0",  # keeps the "uni" executor on CPU; LLM runs its engine in-process
    "VLLM_NO_USAGE_STATS": "1",
    "DO_NOT_TRACK": "1",
}
for _name, _value in CPU_ENV.items():
    os.environ.setdefault(_name, _value)

import anyio  # noqa: E402
import psutil  # noqa: E402  # a dependency of vLLM
from local_backends import judge_requests, make_items  # noqa: E402

from grmjudge import Judge, JudgeItem, JudgeSettings  # noqa: E402
from grmjudge.types import GenerationRequest  # noqa: E402

TARGET_RATIO = 0.9
MAX_MODEL_LEN = 2048
ENGINE_OPTIONS: dict[str, Any] = {
    "max_model_len": MAX_MODEL_LEN,
    "dtype": "float32",
    "enforce_eager": True,
    "distributed_executor_backend": "uni",
    "enable_prefix_caching": True,
    "enable_chunked_prefill": False,
}
SERVER_ARGS = ["--enable-prefix-caching", "--no-enable-chunked-prefill"]  # serve_vllm sets the others alike
RESULT_TAG = "RESULT "
WARMUP_OFFSET = 10**6
PASS_STRIDE = 10**4
LABELS = {
    "backend": "Judge + VLLMBackend",
    "server": "Judge + OpenAIBackend -> vllm serve",
    "raw": "raw LLM.generate",
}


# ---------------------------------------------------------------- one pass of one side (in its own process)


def settings(args: argparse.Namespace) -> JudgeSettings:
    return JudgeSettings(max_tokens=args.max_tokens, max_resample_rounds=0)


def passes(args: argparse.Namespace) -> list[list[JudgeItem]]:
    """The items of each timed pass, distinct between passes and the same on every side."""
    return [make_items(args.items, offset=p * PASS_STRIDE) for p in range(args.passes)]


def warmup_items() -> list[JudgeItem]:
    return make_items(8, offset=WARMUP_OFFSET)


def judge_pass(judge: Judge, items: list[JudgeItem], k: int) -> tuple[float, list[str]]:
    """One ``score_many`` with every item in flight; returns wall seconds and every sample's text."""
    clock = time.perf_counter()
    results = judge.score_many_sync(items, k=k, concurrency=len(items))  # a fresh loop, connections reset after
    seconds = time.perf_counter() - clock
    failed = [r for r in results if r.result is None]
    if failed:
        raise SystemExit(f"{len(failed)} items raised, e.g. {failed[0]}")
    samples = [s for r in results if r.result is not None for s in r.result.samples]
    backend_errors = [s for s in samples if s.error is not None and s.error.kind == "backend"]
    if backend_errors:
        raise SystemExit(f"{len(backend_errors)} samples failed in the backend, e.g. {backend_errors[0]}")
    return seconds, [s.text or "" for s in samples]


def processes(*roots: int) -> list[psutil.Process]:
    """This process, the given processes, and all their children (engine cores, workers)."""
    found = [psutil.Process(), *(psutil.Process(pid) for pid in roots)]
    return found + [child for root in found for child in root.children(recursive=True)]


def cpu_seconds(procs: list[psutil.Process]) -> tuple[float, float]:
    """CPU seconds of all the processes, and of the first one (this process: the judge and its client)."""
    times = [t.user + t.system for t in (p.cpu_times() for p in procs)]
    return sum(times), times[0]


def cpu_since(procs: list[psutil.Process], start: tuple[float, float]) -> dict[str, float]:
    total, own = cpu_seconds(procs)
    return {"cpu": total - start[0], "client_cpu": own - start[1]}


def run_judge_side(
    args: argparse.Namespace,
    judge: Judge,
    engine_requests: Callable[[], int] | None = None,
    server_pid: int | None = None,
) -> list[dict[str, Any]]:
    """A warm-up pass, then the timed passes; ``engine_requests`` reads a request counter, where there is one."""
    judge_pass(judge, warmup_items(), args.k)
    procs = processes(*([server_pid] if server_pid else []))
    runs: list[dict[str, Any]] = []
    for items in passes(args):
        before, cpu = engine_requests() if engine_requests else 0, cpu_seconds(procs)
        seconds, texts = judge_pass(judge, items, args.k)
        run: dict[str, Any] = {"samples": len(texts), "seconds": seconds, "texts": texts}
        run |= cpu_since(procs, cpu)
        if engine_requests:
            run["engine_requests"] = engine_requests() - before
        runs.append(run)
    return runs


def side_backend(args: argparse.Namespace) -> list[dict[str, Any]]:
    from grmjudge.backends.vllm import VLLMBackend

    backend = VLLMBackend(args.model_dir, **ENGINE_OPTIONS)
    try:
        judge = Judge(backend, settings=settings(args), max_concurrent_requests=args.items * args.k)
        return run_judge_side(args, judge, lambda: backend.stats.requests)
    finally:
        anyio.run(backend.aclose)


def side_server(args: argparse.Namespace) -> list[dict[str, Any]]:
    from grmjudge.backends import OpenAIBackend
    from grmjudge.testing.vllm_server import serve_vllm

    with serve_vllm(args.model_dir, max_model_len=MAX_MODEL_LEN, extra_args=SERVER_ARGS) as server:
        backend = OpenAIBackend(server.base_url, server.model, max_connections=args.items * args.k)
        judge = Judge(backend, settings=settings(args), max_concurrent_requests=args.items * args.k)
        try:
            return run_judge_side(args, judge, server_pid=server.pid)
        finally:
            anyio.run(backend.aclose)


def side_raw(args: argparse.Namespace) -> list[dict[str, Any]]:
    import vllm

    llm = vllm.LLM(model=args.model_dir, disable_log_stats=True, **ENGINE_OPTIONS)
    tokenizer = llm.get_tokenizer()

    def generate(requests: list[GenerationRequest]) -> tuple[float, list[str], int]:
        clock = time.perf_counter()
        prompts, params = [], []
        for request in requests:
            chat = [{"role": m.role, "content": m.content} for m in request.messages]
            text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
            prompts.append(vllm.TokensPrompt(prompt_token_ids=tokenizer.encode(text, add_special_tokens=False)))
            params.append(
                vllm.SamplingParams(
                    n=request.n,
                    temperature=request.temperature,
                    top_p=request.top_p or 1.0,
                    seed=request.seed,
                    max_tokens=request.max_tokens,
                )
            )
        outputs = llm.generate(prompts, params, use_tqdm=False)
        seconds = time.perf_counter() - clock
        return seconds, [o.text for out in outputs for o in out.outputs], len(outputs)

    generate(judge_requests(warmup_items(), args.k, settings(args)))
    procs = processes()
    runs: list[dict[str, Any]] = []
    for items in passes(args):
        requests = judge_requests(items, args.k, settings(args))
        cpu = cpu_seconds(procs)
        seconds, texts, calls = generate(requests)
        runs.append(
            {"samples": len(texts), "seconds": seconds, "texts": texts, "engine_requests": calls}
            | cpu_since(procs, cpu)
        )
    return runs


SIDES: dict[str, Callable[[argparse.Namespace], list[dict[str, Any]]]] = {
    "backend": side_backend,
    "server": side_server,
    "raw": side_raw,
}


# ---------------------------------------------------------------- orchestration


def run_side(side: str, args: argparse.Namespace, model_dir: Path) -> list[dict[str, Any]]:
    """Run one side in a fresh interpreter (the worker prints its passes as a tagged JSON line)."""
    command = [
        sys.executable, __file__, "--worker", side, "--model-dir", str(model_dir), "--passes", str(args.passes),
        "--items", str(args.items), "--k", str(args.k), "--max-tokens", str(args.max_tokens),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    for line in done.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    raise SystemExit(f"side {side!r} failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")


def vllm_version() -> str:
    for dist in ("vllm", "vllm-cpu"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "vllm (version unknown)"


def print_header(args: argparse.Namespace) -> None:
    print(
        f"{args.items} pairwise items x k={args.k}, all in flight, max_tokens={args.max_tokens}; tiny model, "
        f"{vllm_version()}, python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(
        f"{'pass':<5} {'side':<36} {'requests':>8} {'samples':>7} {'wall (s)':>9} {'samples/s':>9} {'cpu (s)':>8} "
        f"{'client cpu (s)':>14}",
        flush=True,
    )


def report(side: str, runs: list[dict[str, Any]]) -> list[float]:
    """Print a side's passes; returns their samples/s."""
    rates: list[float] = []
    for number, run in enumerate(runs, 1):
        rates.append(run["samples"] / run["seconds"])
        print(
            f"{number:<5} {LABELS[side]:<36} {run.get('engine_requests', '-'):>8} {run['samples']:>7} "
            f"{run['seconds']:>9.2f} {rates[-1]:>9.2f} {run['cpu']:>8.2f} {run['client_cpu']:>14.2f}",
            flush=True,
        )
    return rates


def compare(results: dict[str, list[dict[str, Any]]], rates: dict[str, list[float]]) -> None:
    print()
    for side, side_rates in rates.items():
        print(
            f"{LABELS[side]:<36} best {max(side_rates):>8.2f} samples/s, median {statistics.median(side_rates):>8.2f}"
        )
    if "raw" not in rates:
        return
    for side in ("backend", "server"):
        if side not in rates:
            continue
        best = max(rates[side]) / max(rates["raw"])
        median = statistics.median(rates[side]) / statistics.median(rates["raw"])
        verdict = "OK" if best >= TARGET_RATIO else "BELOW TARGET"
        print(f"{side} / raw samples/s: best {best:.3f} (target >= {TARGET_RATIO}: {verdict}), median {median:.3f}")
    if "backend" in results:
        pairs = zip(results["backend"], results["raw"], strict=True)
        same = sum(sum((Counter(ours["texts"]) & Counter(raw["texts"])).values()) for ours, raw in pairs)
        total = sum(run["samples"] for run in results["raw"])
        print(f"texts the backend side shares with raw: {same}/{total}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sides", default="backend,server,raw", help="comma-separated: backend, server, raw")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--passes", type=int, default=3, help="timed passes per side, each on its own items")
    parser.add_argument("--worker", choices=list(SIDES), help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(RESULT_TAG + json.dumps(SIDES[args.worker](args)), flush=True)
        return
    sides = [s.strip() for s in args.sides.split(",") if s.strip()]
    unknown = set(sides) - set(SIDES)
    if unknown:
        parser.error(f"unknown sides: {', '.join(sorted(unknown))}")
    from grmjudge.testing.tiny import build_tiny_model

    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("VLLM_CACHE_ROOT", str(Path(tmp) / "vllm-cache"))
        model_dir = build_tiny_model(Path(tmp) / "tiny")
        print_header(args)
        results: dict[str, list[dict[str, Any]]] = {}
        rates: dict[str, list[float]] = {}
        for side in sides:
            results[side] = run_side(side, args, model_dir)
            rates[side] = report(side, results[side])
    compare(results, rates)


if __name__ == "__main__":
    main()
