r"""Train a custom GRM judge end to end, at toy scale: preference rows -> rejection sampling -> SFT -> Judge.

The SPCT recipe's first stage (rejective fine-tuning) on your own labelled data, through grmjudge.training's
public API:

1. **Convert** labelled preference rows (``prompt`` / ``chosen`` / ``rejected``, written inline below or read
   from ``--data``, any format `load_examples` detects) into SPCT examples; the better response lands in a
   seeded random position, so it is not always first.
2. **Rejection-sample** judgements from a strong *teacher* GRM served over an OpenAI-compatible API: three
   judgements per item with shuffled responses, plus one hinted judgement; only judgements whose scores pick
   the labelled best response strictly are kept, and items the teacher always gets right are dropped as too
   easy (`run_rft_sampling`).
3. **Fine-tune** a small student model on the kept judgements with TRL's SFTTrainer (`train_sft`); the loss
   covers the judgement, not the prompt.
4. **Judge** a held-out pair with the trained model in-process: ``Judge(TransformersBackend(model_dir))``.

Run it with a teacher served by vLLM and a small student (a GPU makes step 3 fast; ``--device cpu`` works):

    pip install 'grmjudge[train]'
    vllm serve BBQGOD/DeepSeek-GRM-27B --served-model-name teacher --port 8000
    python examples/train_custom_judge.py --teacher-url http://127.0.0.1:8000/v1 --teacher-model teacher \
        --student Qwen/Qwen3-0.6B --work-dir runs/custom-judge --max-steps 50

Everything lands under ``--work-dir``: ``examples.jsonl``, ``rft/`` (records, SFT rows, stats, run card) and
``sft/`` (the trained model and its run card). Running the same command again resumes the sampling where it
stopped. ``--hint-mode only`` skips the non-hinted judgements (the paper's ablation; it also gets training rows
out of a teacher that always answers alike, such as the fake GRM). A handful of rows and a few steps show the
plumbing, not a useful judge: the full recipe, GRPO and the meta RM are in docs/training.md. The teacher's key,
if it needs one, is read from ``OPENAI_API_KEY``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio

from grmjudge import GRMJudgeError, Judge, JudgeSettings, MissingDependencyError, ScoreResult
from grmjudge.training import (
    LoadReport,
    RFTSampleConfig,
    RFTStats,
    convert_rows,
    load_examples,
    run_rft_sampling,
    write_examples,
)

PREFERENCES: list[dict[str, str]] = [
    {
        "prompt": "What is the capital of Australia?",
        "chosen": "Canberra. It was purpose-built as a compromise between Sydney and Melbourne.",
        "rejected": "Sydney, the largest city.",
    },
    {
        "prompt": "How many bytes are in a kibibyte?",
        "chosen": "1024 bytes (2 to the power of 10).",
        "rejected": "1000 bytes.",
    },
    {
        "prompt": "Give a one-line Python expression for the sum of the squares of 1 to 10.",
        "chosen": "sum(i * i for i in range(1, 11))  # 385",
        "rejected": "sum(range(10)) ** 2",
    },
    {
        "prompt": "Is a tomato a fruit or a vegetable?",
        "chosen": "Botanically a fruit (it grows from the flower and holds seeds); cooks use it as a vegetable.",
        "rejected": "A vegetable, because it is not sweet.",
    },
    {
        "prompt": "Translate 'good morning' into Spanish.",
        "chosen": "Buenos días.",
        "rejected": "Buenas noches.",
    },
    {
        "prompt": "What does HTTP status 404 mean?",
        "chosen": "Not Found: the server has nothing at the requested URL.",
        "rejected": "The server crashed.",
    },
]
HELD_OUT_QUERY = "What is the boiling point of water at sea level in Celsius?"
HELD_OUT_RESPONSES = ("100 degrees Celsius.", "50 degrees Celsius.")
HELD_OUT_BEST = 0
"""A pair the student never trained on, judged by the trained model at the end."""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line: the teacher's URL, the student's path and tiny step counts come from here."""
    parser = argparse.ArgumentParser(description="Rejection sampling, SFT and judging, on a toy scale.")
    parser.add_argument("--teacher-url", default="http://127.0.0.1:8000/v1", help="the teacher's OpenAI base URL")
    parser.add_argument("--teacher-model", default="teacher", help="the teacher's served model name")
    parser.add_argument("--student", required=True, help="model to fine-tune: a local directory or a hub id")
    parser.add_argument("--work-dir", type=Path, default=Path("custom-judge"), help="where every output goes")
    parser.add_argument("--data", help="preference rows (.jsonl/.json/.parquet) instead of the inline ones")
    parser.add_argument("--samples-per-item", type=int, default=3, help="non-hinted teacher judgements per item")
    parser.add_argument(
        "--hint-mode",
        choices=["both", "fallback", "off", "only"],
        default="both",
        help="which items also get a hinted teacher judgement (the paper: both)",
    )
    parser.add_argument("--teacher-max-tokens", type=int, default=2048, help="token limit of a teacher judgement")
    parser.add_argument("--max-steps", type=int, default=50, help="SFT optimizer steps")
    parser.add_argument("--batch-size", type=int, default=2, help="SFT rows per step")
    parser.add_argument("--learning-rate", type=float, default=5e-6, help="SFT learning rate (the paper's)")
    parser.add_argument("--max-length", type=int, default=8192, help="longer SFT rows are dropped, not truncated")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--k", type=int, default=4, help="judgements of the held-out pair by the trained model")
    parser.add_argument("--judge-max-tokens", type=int, default=1024, help="token limit of the trained judge")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def convert(data: str | None, path: Path) -> LoadReport:
    """Step 1: preference rows -> SPCT examples, written as canonical JSONL for the sampler."""
    if data is None:
        report = convert_rows(PREFERENCES, format="pairwise", source="inline")
    else:
        report = load_examples(data, on_error="report")  # bad rows are collected, never skipped silently
    if not report.errors:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_examples(path, report.examples)
    return report


async def rejection_sample(args: argparse.Namespace, examples: Path, out: Path) -> RFTStats:
    """Step 2: the teacher judges every item; correct judgements become SFT rows in ``out/sft.jsonl``."""
    config = RFTSampleConfig(
        data=str(examples),
        data_format="canonical",
        sampler=f"openai:{args.teacher_model}",
        sampler_base_url=args.teacher_url,
        samples_per_item=args.samples_per_item,
        hint_mode=args.hint_mode,
        max_tokens=args.teacher_max_tokens,
        seed=args.seed,
        output_dir=str(out),
    )
    return await run_rft_sampling(config)


def fine_tune(args: argparse.Namespace, rows: Path, out: Path, use_cpu: bool) -> list[float]:
    """Step 3: SFT of the student on the kept judgements; returns the logged losses."""
    from grmjudge.training import JudgeSFTConfig, train_sft  # needs the 'train' extra (TRL)

    config = JudgeSFTConfig(
        model_name_or_path=args.student,
        data=[str(rows)],
        output_dir=str(out),
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        max_length=args.max_length,
        logging_steps=max(1, args.max_steps // 10),
        use_cpu=use_cpu,
        bf16=not use_cpu and bf16_supported(),  # mixed precision where the GPU has bf16; full precision on CPU
        report_to="none",
        save_strategy="no",
        seed=args.seed,
    )
    result = train_sft(config)
    print(f"sft: {result.rm_rows} rows, {result.dropped_too_long} dropped as too long, model in {result.output_dir}")
    return result.losses


async def judge_held_out(args: argparse.Namespace, model_dir: Path, use_cpu: bool) -> ScoreResult:
    """Step 4: the trained model as an in-process judge."""
    from grmjudge.backends.transformers import TransformersBackend  # needs the 'hf' extra (torch, transformers)

    backend = TransformersBackend(str(model_dir), device="cpu" if use_cpu else "cuda")
    async with Judge(backend, settings=JudgeSettings(max_tokens=args.judge_max_tokens)) as judge:
        return await judge.score(HELD_OUT_QUERY, HELD_OUT_RESPONSES, k=args.k)


def wants_cpu(device: str) -> bool:
    """Train and judge on the CPU when asked to, or when there is no GPU."""
    if device != "auto":
        return device == "cpu"
    import torch

    return not torch.cuda.is_available()


def bf16_supported() -> bool:
    """Whether the GPU computes in bfloat16 (Ampere and later)."""
    import torch

    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def show_verdict(result: ScoreResult) -> None:
    """Print the held-out verdict, or why there is none (counted by failure reason, never guessed)."""
    if result.scores is None:
        assert result.no_verdict is not None
        reasons = ", ".join(f"{r} x{n}" for r, n in sorted(result.no_verdict.failures.items()))
        print(f"judge: no verdict ({reasons}); a few steps on a few rows rarely teach the format")
        return
    scores = ", ".join(f"{s:g}" for s in result.scores)
    print(f"judge: scores [{scores}] best {result.best} label {HELD_OUT_BEST} ({result.n_valid} valid samples)")


def run(args: argparse.Namespace) -> int:
    """The four steps in order; exit status 1 when the teacher failed or taught nothing, 2 on bad data."""
    work: Path = args.work_dir
    report = convert(args.data, work / "examples.jsonl")
    for error in report.errors:
        print(f"bad row: {error}", file=sys.stderr)
    if report.errors:
        return 2
    print(f"data: {len(report.examples)} examples in {work / 'examples.jsonl'}")

    stats = anyio.run(rejection_sample, args, work / "examples.jsonl", work / "rft")
    print(
        f"rejection sampling: {stats.items} items, {stats.items_kept} kept, {stats.too_easy} too easy, "
        f"{stats.rejected_items} rejected; {stats.examples} SFT rows in {work / 'rft' / 'sft.jsonl'}"
    )
    if stats.backend_failed_ids:
        print(f"the teacher failed on {len(stats.backend_failed_ids)} items; run again to retry them", file=sys.stderr)
        return 1
    if stats.examples == 0:
        reason = f"{stats.too_easy} items too easy, {stats.rejected_items} never judged right"
        print(f"no teacher judgement was kept ({reason}): nothing to train on", file=sys.stderr)
        return 1

    use_cpu = wants_cpu(args.device)
    losses = fine_tune(args, work / "rft" / "sft.jsonl", work / "sft", use_cpu)
    print("losses: " + ", ".join(f"{loss:.4f}" for loss in losses))
    show_verdict(anyio.run(judge_held_out, args, work / "sft", use_cpu))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the steps; a missing extra or a refused configuration is reported in one line (exit status 2)."""
    args = parse_args(argv)
    try:
        return run(args)
    except MissingDependencyError as exc:  # the message names the extra to install
        print(str(exc), file=sys.stderr)
        return 2
    except GRMJudgeError as exc:  # a configuration the trainer or the backend refused
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
