"""Throughput of the local backends on a GPU: 64 concurrent pairwise judge calls (k=4) on the tiny model.

Prints one row per backend that can run here (TransformersBackend always; VLLMBackend when vLLM is
installed), with samples per second and the generate calls the dynamic batcher made.
"""

from __future__ import annotations

import gc
import os
import tempfile
import time

import anyio

from grmjudge import Judge, JudgeSettings
from grmjudge.testing.tiny import build_tiny_model

CALLS, K, MAX_TOKENS = 64, 4, 64


async def judge_many(judge: Judge) -> int:
    items = [
        {"query": f"Which answer to question {i} is right?", "responses": [f"A{i}", f"B{i} " * 3]} for i in range(CALLS)
    ]
    results = await judge.score_many(items, k=K, concurrency=CALLS)
    return sum(len(r.result.samples) for r in results if r.result is not None)


def measure(name: str, judge: Judge) -> None:
    anyio.run(judge_many, judge)  # warm-up: kernels, caches
    started = time.perf_counter()
    samples = anyio.run(judge_many, judge)
    elapsed = time.perf_counter() - started
    print(f"{name:<28} {samples:>8} {elapsed:>9.2f} {samples / elapsed:>12.1f}")


def main() -> None:
    import torch

    settings = JudgeSettings(max_tokens=MAX_TOKENS, max_resample_rounds=0)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(tmp)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        print(f"device: {torch.cuda.get_device_name() if device == 'cuda' else 'cpu'}; {CALLS} calls x k={K}")
        print(f"{'backend':<28} {'samples':>8} {'wall (s)':>9} {'samples/s':>12}")
        from grmjudge.backends.transformers import TransformersBackend

        backend = TransformersBackend(str(model_dir), device=device)
        measure("TransformersBackend", Judge(backend, settings=settings))
        print(f"  generate calls: {backend.stats.generate_calls}, sequences: {backend.stats.sequences}")
        try:
            from grmjudge.backends.vllm import VLLMBackend
        except ImportError:
            print("VLLMBackend: vLLM is not installed here (skipped)")
            return
        os.environ.setdefault("VLLM_NO_USAGE_STATS", "1")
        engine = VLLMBackend(model_dir, max_model_len=2048, gpu_memory_utilization=0.3)
        measure("VLLMBackend", Judge(engine, settings=settings))
        anyio.run(engine.aclose)
        del engine
        gc.collect()  # before interpreter exit, when vLLM's engine finalizer would find its globals gone


if __name__ == "__main__":
    main()
