"""``grmjudge demo``: judge a few toy items with the tiny GRM and meta RM that ship with the package.

The models were trained on two CPU cores by ``python -m grmjudge.training.toy run`` (their report is
``grmjudge/_demo/REPORT.md``); they know only the toy task (sums, largest digits, sorting, counting), which
is why they fit in a few MB. The demo shows every part of a judge call: each sample's principles, critique
and scores, the meta RM's rating and which samples it kept, and the final votes. Needs the ``hf`` extra.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from grmjudge.exceptions import GRMJudgeError
from grmjudge.training.toy.config import DEMO_DIR

if TYPE_CHECKING:
    from grmjudge.results import ScoreResult
    from grmjudge.training.data import SPCTExample


ABOUT = """\
The judge is deliberately tiny and was trained on a noisy teacher (wrong on 30% of its items), so some of the
critiques below are wrong: the point is to see every part of a judge call, not a good judge. Each sample
shows the responses in its own order; the meta RM rates each judgement with a raw score (higher: more likely
right), and only the best-rated half of the samples keep their votes.
"""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Register ``demo`` and its options."""
    parser = commands.add_parser(
        "demo",
        help="judge toy items with the embedded tiny GRM and meta RM (extra 'hf')",
        description="Judge a few held-out toy items with k samples and meta-guided voting, on CPU, offline.",
    )
    parser.add_argument("--items", type=int, default=3, help="how many held-out items to judge (default 3)")
    parser.add_argument("--k", type=int, default=8, help="samples per item (default 8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the shuffles and samples")
    parser.add_argument("--grm", type=Path, default=DEMO_DIR / "grm", help="GRM directory (default: the embedded one)")
    parser.add_argument("--meta", type=Path, default=DEMO_DIR / "meta_rm", help="meta RM directory")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Judge the items and print the first one in full; returns the exit status."""
    import anyio

    if args.items < 1 or args.k < 1:
        sys.stderr.write("error: --items and --k must be at least 1\n")
        return 2
    try:
        return anyio.run(_demo, args, out)
    except GRMJudgeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2


async def _demo(args: argparse.Namespace, out: TextIO) -> int:
    from grmjudge._optional import require

    require("torch", extra="hf")
    from grmjudge.backends.transformers import TransformersBackend
    from grmjudge.judge import Judge
    from grmjudge.meta.transformers import TransformersMetaScorer
    from grmjudge.settings import JudgeSettings
    from grmjudge.training.data import load_examples
    from grmjudge.training.toy.templates import TOY_TEMPLATE

    transformers = require("transformers", extra="hf")
    transformers.utils.logging.disable_progress_bar()  # "Loading weights ..." bars are noise here
    items = load_examples(DEMO_DIR / "items.jsonl", format="canonical").examples[: args.items]
    settings = JudgeSettings(template=TOY_TEMPLATE, temperature=1.0, max_tokens=160, seed=args.seed)
    out.write(f"grmjudge demo: a {_size(args.grm)} GRM and its meta RM, trained on a toy task on two CPU cores\n")
    out.write(ABOUT)
    backend = TransformersBackend(str(args.grm), dtype="float32")
    meta = TransformersMetaScorer(str(args.meta), dtype="float32")
    async with Judge(backend, meta=meta, settings=settings) as judge:
        for number, item in enumerate(items, 1):
            result = await judge.score(item.query, list(item.responses), k=args.k, meta=True)
            if number == 1:
                _show_in_full(item, result, out)
            else:
                _show_line(number, item, result, out)
    return 0


def _show_in_full(item: SPCTExample, result: ScoreResult, out: TextIO) -> None:
    out.write(f"\nItem 1: {item.query[-1].content}\n")
    for index, response in enumerate(item.responses):
        out.write(f"  response {index + 1}: {response}\n")
    for sample in result.samples:
        shown = ", ".join(str(i + 1) for i in sample.permutation)
        meta = "n/a" if sample.meta_score is None else f"{sample.meta_score:+.2f}"
        status = "kept" if sample.kept else "dropped"
        out.write(f"\n  sample {sample.index + 1} (responses shown in the order {shown}); meta RM {meta}: {status}\n")
        if sample.scores is None:
            reason = sample.error.reason if sample.error is not None else "no text"
            out.write(f"    no scores ({reason}); it does not vote\n")
            continue
        out.write(f"    principles: {sample.principles}\n    critique: {sample.critique}\n")
        out.write(f"    scores in your order: {', '.join(map(str, sample.scores))}\n")
    out.write(f"\n  final votes (kept samples summed): {_votes(result)}; {_verdict(item, result)}\n")


def _show_line(number: int, item: SPCTExample, result: ScoreResult, out: TextIO) -> None:
    responses = " | ".join(item.responses)
    out.write(f"\nItem {number}: {item.query[-1].content}  [{responses}]\n")
    out.write(
        f"  votes {_votes(result)} from {result.n_kept} kept of {result.n_valid} valid; {_verdict(item, result)}\n"
    )


def _votes(result: ScoreResult) -> str:
    return "none" if result.scores is None else "[" + ", ".join(f"{s:g}" for s in result.scores) + "]"


def _verdict(item: SPCTExample, result: ScoreResult) -> str:
    labelled = f"labelled best: response {item.best + 1}" if item.best is not None else "no label"
    if result.best is None:
        return f"no verdict ({labelled})"
    mark = "right" if result.best == item.best else "wrong"
    return f"judged best: response {result.best + 1}, {labelled} ({mark})"


def _size(model: Path) -> str:
    weights = model / "model.safetensors"
    return f"{weights.stat().st_size / 1e6:.1f} MB" if weights.exists() else "tiny"
