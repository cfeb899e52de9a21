"""Throughput of grmjudge's local backends against their raw engine, on the same prompts.

Part (a), ``--part transformers``: ``Judge.score_many`` of pairwise items with k samples, all items in flight
at once, through ``TransformersBackend`` (dynamic batching), against plain batched ``model.generate`` on
exactly the requests the judge sends. Those requests are recorded first by running the same judge call on an
in-memory ``FunctionBackend``, so the prompts, ``n``, temperature and max_tokens are the judge's own.
The raw baseline renders each prompt with the chat template, repeats it n times, left-pads the rows into
batches of ``--batch-rows`` (the backend's ``max_batch_sequences``) in the judge's request order, samples
with the same temperature and top_p (top-k off, as in the backend) and decodes the new tokens. Both sides
generate on the tiny random model (``build_tiny_model``, in a temp dir), which almost never emits EOS, so
both run ``--max-new-tokens`` tokens per row; the generated token counts are printed to show it.

After one warm-up pass each, every repeat times the raw pass, then the backend pass, and prints both; the
verdict compares the best samples/s of each side (target: backend / raw >= 0.9), because on a shared
machine the best run is the one least disturbed by other load. Samples per CPU-second (process time, all
threads) are printed too: they move less than wall time when other processes compete for the cores.
Numbers are for this machine only; compare ratios, not seconds.

Parts are functions registered in ``PARTS``; part (b), the in-process vLLM backend, slots in as
``PARTS["vllm"]`` and ``--part all`` runs every registered part.

Usage: ``python benchmarks/local_backends.py [--part transformers] [--items 64] [--k 4] [--max-new-tokens 32]
[--batch-rows 64] [--repeats 3] [--device cpu] [--threads 0]``
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:  # run from a checkout without installing grmjudge
    sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import anyio  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402

from grmjudge import Judge, JudgeItem, JudgeSettings  # noqa: E402
from grmjudge.backends import FunctionBackend  # noqa: E402
from grmjudge.backends.transformers import TransformersBackend  # noqa: E402
from grmjudge.testing.tiny import build_tiny_model  # noqa: E402
from grmjudge.types import GenerationRequest  # noqa: E402

TARGET_RATIO = 0.9


@dataclass
class Run:
    """One timed pass: samples returned, generate calls made, tokens generated, wall and process CPU seconds."""

    samples: int
    calls: int
    tokens: int
    seconds: float
    cpu_seconds: float

    @property
    def rate(self) -> float:
        return self.samples / self.seconds

    @property
    def cpu_rate(self) -> float:
        return self.samples / self.cpu_seconds


class Clock:
    """Wall and process CPU time (all threads) since it was made."""

    def __init__(self) -> None:
        self.wall = time.perf_counter()
        self.cpu = time.process_time()

    def run(self, samples: int, calls: int, tokens: int) -> Run:
        return Run(samples, calls, tokens, time.perf_counter() - self.wall, time.process_time() - self.cpu)


# ---------------------------------------------------------------- the workload


def make_items(count: int, offset: int = 0) -> list[JudgeItem]:
    """Distinct pairwise items with varied lengths, so prompts and orders differ per item."""
    rng = random.Random(1234 + offset)
    words = "the answer is because therefore we note that each value holds for all cases here".split()
    items: list[JudgeItem] = []
    for i in range(offset, offset + count):
        query = f"Question {i}: what is {i} + {2 * i}, and why?"
        responses = tuple(
            f"Response {r} to {i}: " + " ".join(rng.choice(words) for _ in range(rng.randint(20, 80))) for r in range(2)
        )
        items.append(JudgeItem(query=query, responses=responses, id=f"item-{i}"))
    return items


def judge_requests(items: list[JudgeItem], k: int, settings: JudgeSettings) -> list[GenerationRequest]:
    """The requests ``Judge.score_many(items, k)`` sends, in the order it sends them (recorded in memory)."""
    sent: list[GenerationRequest] = []

    def record(request: GenerationRequest) -> list[str]:
        sent.append(request)
        return ["Scores: \\boxed{5, 5}"] * request.n

    judge = Judge(FunctionBackend(record), settings=settings)
    anyio.run(lambda: judge.score_many(items, k=k, concurrency=len(items)))
    return sent


# ---------------------------------------------------------------- part (a): transformers


def raw_generate(model: Any, tokenizer: Any, requests: list[GenerationRequest], batch_rows: int) -> Run:
    """Plain batched ``model.generate`` over the requests' rows: render, pad left, sample, decode.

    It runs in a worker thread, like the backend's generate calls: on this machine the same generate call is
    about 30% slower on the main thread than on any other (measured), which would flatter the backend.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(_raw_generate, model, tokenizer, requests, batch_rows).result()


def _raw_generate(model: Any, tokenizer: Any, requests: list[GenerationRequest], batch_rows: int) -> Run:
    first = requests[0]
    config = transformers.GenerationConfig(
        max_new_tokens=first.max_tokens,
        do_sample=first.temperature > 0,
        temperature=first.temperature or None,
        top_p=first.top_p or 1.0,
        top_k=0,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    clock = Clock()
    rows: list[list[int]] = []
    for request in requests:
        chat = [{"role": m.role, "content": m.content} for m in request.messages]
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        rows += [tokenizer(text, add_special_tokens=False)["input_ids"]] * request.n
    samples = calls = tokens = 0
    for start in range(0, len(rows), batch_rows):
        batch = rows[start : start + batch_rows]
        width = max(len(row) for row in batch)
        ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(r)) + r for r in batch], device=model.device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in batch], device=model.device)
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=mask, generation_config=config)
        new = out[:, width:]
        texts = tokenizer.batch_decode(new, skip_special_tokens=True)
        samples += len(texts)
        calls += 1
        tokens += int((new != tokenizer.pad_token_id).sum())
    return clock.run(samples, calls, tokens)


def backend_run(backend: TransformersBackend, items: list[JudgeItem], k: int, settings: JudgeSettings) -> Run:
    """``Judge.score_many`` with every item in flight, through the backend's dynamic batching."""
    calls, tokens = backend.stats.generate_calls, backend.stats.generated_tokens
    judge = Judge(backend, settings=settings, max_concurrent_requests=len(items) * k)
    clock = Clock()
    results = anyio.run(lambda: judge.score_many(items, k=k, concurrency=len(items)))
    samples = sum(len(r.result.samples) for r in results if r.result is not None)
    run = clock.run(samples, backend.stats.generate_calls - calls, backend.stats.generated_tokens - tokens)
    failed = [r for r in results if r.result is None]
    if failed:
        raise SystemExit(f"{len(failed)} items raised, e.g. {failed[0]}")
    backend_errors = [s for r in results if r.result for s in r.result.samples if s.error and s.error.kind == "backend"]
    if backend_errors:
        raise SystemExit(f"{len(backend_errors)} samples failed in the backend, e.g. {backend_errors[0]}")
    return run


def bench_transformers(args: argparse.Namespace) -> None:
    """Part (a): TransformersBackend vs raw batched model.generate on the judge's requests."""
    settings = JudgeSettings(max_tokens=args.max_new_tokens, max_resample_rounds=0)
    items, warmup_items = make_items(args.items), make_items(8, offset=10**6)
    requests = judge_requests(items, args.k, settings)
    warmup_requests = judge_requests(warmup_items, args.k, settings)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_model(Path(tmp) / "tiny")
        backend = TransformersBackend(str(model_dir), device=args.device, max_batch_sequences=args.batch_rows)
        model, tokenizer = backend.hf_model, backend.tokenizer
        raw_generate(model, tokenizer, warmup_requests, args.batch_rows)
        backend_run(backend, warmup_items, args.k, settings)
        print(
            f"\npart (a) transformers: {args.items} pairwise items x k={args.k} all in flight, "
            f"{len(requests)} requests, max_new_tokens={args.max_new_tokens}, batches of {args.batch_rows} rows; "
            f"device {model.device}, {torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs; "
            f"torch {torch.__version__}, transformers {transformers.__version__}, python {platform.python_version()}"
        )
        print(
            f"{'repeat':<7} {'side':<26} {'calls':>5} {'samples':>7} {'tokens':>7} {'wall (s)':>9} {'samples/s':>9} "
            f"{'CPU (s)':>8} {'samples/CPU-s':>13}"
        )
        raws: list[Run] = []
        ours: list[Run] = []
        for repeat in range(1, args.repeats + 1):
            raws.append(raw_generate(model, tokenizer, requests, args.batch_rows))
            ours.append(backend_run(backend, items, args.k, settings))
            for name, run in (("raw model.generate", raws[-1]), ("TransformersBackend+Judge", ours[-1])):
                print(
                    f"{repeat:<7} {name:<26} {run.calls:>5} {run.samples:>7} {run.tokens:>7} "
                    f"{run.seconds:>9.2f} {run.rate:>9.2f} {run.cpu_seconds:>8.2f} {run.cpu_rate:>13.2f}"
                )
        ratio = max(run.rate for run in ours) / max(run.rate for run in raws)
        cpu_ratio = max(run.cpu_rate for run in ours) / max(run.cpu_rate for run in raws)
        verdict = "OK" if ratio >= TARGET_RATIO else "BELOW TARGET"
        print(
            f"best of {args.repeats}, backend / raw: samples/s {ratio:.3f} (target >= {TARGET_RATIO}: {verdict}); "
            f"samples per CPU-second {cpu_ratio:.3f}"
        )


# ---------------------------------------------------------------- main

PARTS: dict[str, Callable[[argparse.Namespace], None]] = {"transformers": bench_transformers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=[*PARTS, "all"], default="all")
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--k", type=int, default=4)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--batch-rows", type=int, default=64, help="rows per generate call on both sides")
    parser.add_argument("--repeats", type=int, default=3, help="alternating timed passes per side; best counts")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0 keeps torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name, part in PARTS.items():
        if args.part in (name, "all"):
            part(args)


if __name__ == "__main__":
    main()
