"""The Ray engine against the local one, and what a million items cost on GPUs.

Both engines judge the same pairwise items against the package's zero-latency fake GRM (``benchmarks/batch.py``'s
counting server, in its own process), each as a ``grmjudge score`` subprocess on the same machine:

1. ``grmjudge score IN -o OUT.jsonl`` (the local engine),
2. ``grmjudge score IN -o OUT/ --engine ray``, which starts a local Ray cluster (``ray.init``) in that process.

With a zero-latency backend the wall times are the engines' own cost: the ratio is Ray's fixed price on this
machine (cluster start, actor start, object store, shard writes), from one run. The Ray run's ``manifest.json``
holds the pipeline's own seconds, so its start-up is the rest. The scores of the two runs are compared by id.

Then a calculation, for 1M items x k samples on N GPUs: generated tokens = items x k x tokens per sample;
GPU-hours = tokens / (tokens/s per GPU) / 3600; wall time = GPU-hours / N + Ray's start-up. The defaults are
SCALE.md's figures for DeepSeek-GRM-27B (200-400 tokens per sample, "a few thousand tokens/s per GPU"): they
are its estimates, not measured here (no GPU); pass measured ones with ``--tokens-per-sample`` and
``--gpu-tokens-per-second``. The client's CPU per sample, measured here, says how many CPU cores the actors need.

    python benchmarks/ray_batch.py                      # 2,000 items, k=8
    python benchmarks/ray_batch.py --items 20000 --gpus 8 64 256
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path[:0] = [str(REPO_ROOT), str(HERE)]  # run from a checkout; batch.py's server and items
from batch import free_port, start_server, write_items  # noqa: E402


@dataclass
class Timed:
    label: str
    seconds: float
    cpu_seconds: float
    status: int


def run(label: str, command: list[str]) -> Timed:
    """Run ``grmjudge ARGS`` as a subprocess: wall seconds and the CPU seconds of it and its children."""
    start = time.perf_counter()
    before = os.times()
    process = subprocess.run([sys.executable, "-m", "grmjudge.cli", *command], cwd=REPO_ROOT, check=False)
    after = os.times()
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return Timed(label, time.perf_counter() - start, cpu, process.returncode)


def scores_by_id(lines: list[str]) -> dict[str, object]:
    return {record["id"]: record["scores"] for record in map(json.loads, lines)}


def gpu_table(items: int, k: int, tokens: float, per_gpu: float, gpus: list[int], startup: float) -> str:
    """Wall time and GPU-hours of ``items`` x ``k`` samples on each GPU count."""
    samples = items * k
    gpu_hours = samples * tokens / per_gpu / 3600
    rows = [
        f"{items:,} items x k={k} = {samples:,} samples x {tokens:,.0f} tokens = {samples * tokens / 1e9:,.2f}B tokens "
        f"at {per_gpu:,.0f} tokens/s per GPU: {gpu_hours:,.0f} GPU-hours",
        f"{'GPUs':>6}{'wall time':>14}{'GPU-hours':>12}",
    ]
    for n in gpus:
        hours = gpu_hours / n + startup / 3600
        rows.append(f"{n:>6}{hours:>12.1f} h{gpu_hours:>12,.0f}")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=2_000)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=250, help="items per Ray actor call")
    parser.add_argument("--actors", type=int, default=1)
    parser.add_argument("--target-items", type=int, default=1_000_000)
    parser.add_argument("--tokens-per-sample", type=float, default=300.0, help="SCALE.md: 200-400 for the 27B GRM")
    parser.add_argument("--gpu-tokens-per-second", type=float, default=2_500.0, help="SCALE.md: a few thousand")
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 32, 128])
    args = parser.parse_args()
    port = free_port()
    server = start_server(port)
    common = ["--judge", "openai:fake-grm", "--base-url", f"http://127.0.0.1:{port}/v1", "--k", str(args.k)]
    common += ["--concurrency", str(args.concurrency), "-q"]
    try:
        with tempfile.TemporaryDirectory(prefix="grmjudge-ray-batch-") as folder:
            tmp = Path(folder)
            source = tmp / "in.jsonl"
            write_items(source, args.items)
            local = run("local engine", ["score", str(source), "-o", str(tmp / "local.jsonl"), *common])
            ray_flags = ["--engine", "ray", "--batch-size", str(args.batch_size), "--actors", str(args.actors)]
            on_ray = run("ray engine", ["score", str(source), "-o", str(tmp / "ray"), *common, *ray_flags])
            manifest = json.loads((tmp / "ray" / "manifest.json").read_text())
            ray_lines = [
                line for p in sorted((tmp / "ray").glob("part-*.jsonl")) for line in p.read_text().splitlines()
            ]
            same = scores_by_id(ray_lines) == scores_by_id((tmp / "local.jsonl").read_text().splitlines())
    finally:
        server.terminate()
        server.wait()
    samples = args.items * args.k
    pipeline = float(manifest["counts"]["seconds"])
    startup = on_ray.seconds - pipeline
    print(f"{args.items:,} pairwise items, k={args.k}, zero-latency fake GRM, {os.cpu_count()} CPUs")
    print(f"{'engine':<14}{'wall s':>9}{'items/s':>10}{'samples/s':>11}{'CPU s':>8}{'exit':>6}  (CPU: reaped children)")
    for t in (local, on_ray):
        rates = f"{args.items / t.seconds:>10,.0f}{samples / t.seconds:>11,.0f}"
        print(f"{t.label:<14}{t.seconds:>9.1f}{rates}{t.cpu_seconds:>8.1f}{t.status:>6}")
    print(f"ray pipeline alone {pipeline:.1f} s ({args.items / pipeline:,.0f} items/s); start-up {startup:.1f} s")
    ratio = on_ray.seconds / local.seconds
    print(f"ratio ray / local wall time: {ratio:.2f}x (pipeline alone {pipeline / local.seconds:.2f}x)")
    print(f"same scores by id: {same}; outputs {manifest['counts']['outputs']:,}")
    cpu_per_sample = local.cpu_seconds / samples
    print(f"client CPU per sample (local engine): {cpu_per_sample * 1e3:.2f} ms")
    print()
    print(gpu_table(args.target_items, args.k, args.tokens_per_sample, args.gpu_tokens_per_second, args.gpus, startup))
    cores = args.target_items * args.k * cpu_per_sample / 3600
    print(f"client CPU for all samples: {cores:,.1f} CPU-hours, spread over the actors")


if __name__ == "__main__":
    main()
