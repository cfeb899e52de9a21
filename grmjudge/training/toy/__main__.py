"""``python -m grmjudge.training.toy run --out DIR [--quick | --scale NAME]`` and ``... report DIR``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from grmjudge.exceptions import GRMJudgeError


def build_parser() -> argparse.ArgumentParser:
    """The ``run`` and ``report`` commands."""
    parser = argparse.ArgumentParser(
        prog="python -m grmjudge.training.toy", description="Reproduce SPCT's trends on a toy task on CPU."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="Run every stage (a rerun skips finished stages), then write the report.")
    run.add_argument("--out", required=True, help="Run directory.")
    size = run.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="Every stage on a small scale (a few minutes; for CI).")
    size.add_argument(
        "--scale",
        choices=["full", "warm", "quick", "gpu", "tiny"],
        default="full",
        help="full: from random weights (CPU); warm: the same protocol from the noised shipped GRM in a third of "
        "the time; quick: as --quick; gpu: a larger model and more data on one GPU; tiny: a step or two of every "
        "stage (checks the wiring).",
    )
    report = commands.add_parser("report", help="Print the Table-3-shaped report and write report.md and scaling.png.")
    report.add_argument("out", help="Run directory of a finished run.")
    export = commands.add_parser("export-demo", help="Copy a finished run's final models into grmjudge demo's folder.")
    export.add_argument("out", help="Run directory of a finished run.")
    export.add_argument("--to", required=True, help="Target folder (the package's grmjudge/_demo).")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "run":
            from grmjudge.training.toy.config import SCALES
            from grmjudge.training.toy.pipeline import run

            run(args.out, SCALES["quick" if args.quick else args.scale], log=_log)
        if args.command == "export-demo":
            from grmjudge.training.toy.pipeline import export_demo

            sys.stdout.write(f"exported to {export_demo(args.out, args.to)}\n")
            return 0
        return _report(args.out)
    except GRMJudgeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 2


def _log(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def _report(out: str) -> int:
    from pathlib import Path

    from grmjudge.training.toy.claims import check_claims
    from grmjudge.training.toy.pipeline import heldout_benchmark
    from grmjudge.training.toy.report import load_reports, render_claims, render_table, write_markdown, write_plot

    reports = load_reports(out)
    benchmark = heldout_benchmark(Path(out) / "data" / "heldout.jsonl")
    claims = check_claims(benchmark, reports, Path(out) / "eval")
    sys.stdout.write(render_table(reports) + "\n" + render_claims(claims) + "\n")
    sys.stdout.write(f"wrote {write_markdown(out, reports, claims)} and {write_plot(out, reports)}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
