"""Adaptive k on the toy GRM: accuracy per compute on the held-out split, from one sampling pass.

The shipped toy GRM and meta RM (``grmjudge/_demo``, what ``grmjudge demo`` runs) judge the toy run's 200 held-out
items once at k = ``--k`` with the toy template and sampling settings (temperature 1.0, 160 tokens, seed 0). The
eval scores Voting@k and MetaRM@k for every power of two up to k from that pass, and replays the adaptive rule on
it in drawn order (the stop a live adaptive call makes on the same seeds). Printed: the accuracy-per-compute table,
the samples saved and the accuracy difference to the fixed-k setting, with 95% bootstrap intervals.

    HF_HUB_OFFLINE=1 python benchmarks/adaptive.py                 # k = 16, default policy
    HF_HUB_OFFLINE=1 python benchmarks/adaptive.py --confidence 0.9 --out /tmp/adaptive
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from importlib import resources
from pathlib import Path

import anyio


def prepare(args: argparse.Namespace) -> Path:
    """The output folder, with the toy run's held-out split (200 items of two or more responses, seed 0) in it."""
    from grmjudge.training.data import write_examples
    from grmjudge.training.toy.tasks import make_items

    out = Path(args.out or tempfile.mkdtemp(prefix="grmjudge-adaptive-"))
    out.mkdir(parents=True, exist_ok=True)
    heldout = [e for e in make_items("heldout", 4 * args.items, seed=0) if e.n >= 2][: args.items]
    write_examples(out / "heldout.jsonl", heldout)
    return out


async def main(args: argparse.Namespace, out: Path) -> None:
    import torch

    from grmjudge import AdaptivePolicy, Judge, JudgeSettings
    from grmjudge.backends.transformers import TransformersBackend
    from grmjudge.eval import EvalOptions, evaluate
    from grmjudge.eval.report import markdown
    from grmjudge.meta.transformers import TransformersMetaScorer
    from grmjudge.training.toy.pipeline import heldout_benchmark
    from grmjudge.training.toy.templates import TOY_TEMPLATE

    torch.set_num_threads(args.threads)
    demo = Path(str(resources.files("grmjudge") / "_demo"))
    benchmark = heldout_benchmark(out / "heldout.jsonl")
    settings = JudgeSettings(template=TOY_TEMPLATE, temperature=1.0, max_tokens=160, seed=0)
    policy = AdaptivePolicy(confidence=args.confidence, first_round=args.first_round, round_size=args.round_size)
    options = EvalOptions(bootstrap=1000, concurrency=64, texts=False, adaptive=policy)
    backend = TransformersBackend(str(demo / "grm"), dtype="float32", max_batch_sequences=128)
    meta = TransformersMetaScorer(str(demo / "meta_rm"), dtype="float32", batch_size=64)
    async with Judge(backend, meta=meta, settings=settings, max_concurrent_requests=128) as judge:
        report = await evaluate(judge, benchmark, out, ks=[args.k], options=options, progress=sys.stderr)
    lines = markdown(report)
    start = lines.index("## Accuracy per compute")
    print("\n".join(lines[start:]))
    for name in (f"adaptive@{args.k}", f"adaptive-metarm@{args.k}"):
        s = report.settings.get(name)
        if s is None or s.samples_per_item is None or s.vs_fixed is None:
            continue
        spent, diff = s.samples_per_item, s.vs_fixed
        low, high = spent.ci or (spent.value, spent.value)
        dlow, dhigh = diff.ci or (diff.value, diff.value)
        print(
            f"{name}: {spent.value:.2f} samples per item ({low:.2f}-{high:.2f}) of {args.k}: "
            f"{100 * (1 - spent.value / args.k):.1f}% saved; accuracy {100 * s.overall.value:.1f} vs fixed k: "
            f"{100 * diff.value:+.1f} points ({100 * dlow:+.1f} to {100 * dhigh:+.1f})"
        )
    print(f"report: {out / 'results.md'}, plot: {out / 'compute.png'}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=16, help="largest k (default 16)")
    parser.add_argument("--items", type=int, default=200, help="held-out items (default 200, the toy run's)")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--first-round", type=int, default=4)
    parser.add_argument("--round-size", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--out", help="output folder (default: a new temporary folder)")
    arguments = parser.parse_args()
    anyio.run(main, arguments, prepare(arguments))
