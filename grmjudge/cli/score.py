"""``grmjudge score``: judge a JSONL file of items into a JSONL file of verdicts (guide: ``docs/batch.md``).

Exit status: 0 every line was judged or skipped; 1 some lines went to the errors file; 2 bad arguments or a
file that cannot be used, nothing done; 3 aborted (credentials refused, the backend failing item after item,
a file failing mid-run, or another library error); 130 interrupted by Ctrl-C, 143 by SIGTERM (every finished
item written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from grmjudge import argtypes as arg_types
from grmjudge.cli.options import EXIT_INTERRUPTED, EXIT_USAGE, ScoreOptions, UsageError
from grmjudge.cli.ray_engine import ray_options, run_ray
from grmjudge.engine_options import add_engine_options
from grmjudge.judge_options import add_judge_options, judge_options
from grmjudge.score_lines import DEFAULT_MAX_INPUT_CHARS


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Register ``score`` and its options."""
    parser = commands.add_parser(
        "score",
        help="judge a JSONL file of items",
        description="Judge each line of IN (JSONL: query or messages, responses) and write one verdict per line.",
        epilog="API keys come from OPENAI_API_KEY / ANTHROPIC_API_KEY. Guide: docs/batch.md.",
    )
    parser.add_argument("input", metavar="IN", help="input JSONL file ('-' reads standard input)")
    parser.add_argument("-o", "--output", metavar="OUT", required=True, type=Path, help="output JSONL file")
    add_judge_options(parser)
    _add_run_options(parser)
    add_engine_options(parser)
    parser.set_defaults(handler=_handle)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("run")
    group.add_argument(
        "--concurrency", type=arg_types.positive_int, default=64, metavar="N", help="items in flight (default 64)"
    )
    group.add_argument(
        "--max-concurrent-requests",
        type=arg_types.positive_int,
        metavar="N",
        help="requests in flight (default: --concurrency)",
    )
    group.add_argument("--cache", type=Path, metavar="PATH", help="SQLite sample cache: re-runs make no request twice")
    group.add_argument("--resume", action="store_true", help="append to OUT, skipping the ids it already holds")
    group.add_argument("--order", choices=("input", "completion"), default="input", help="output order (default input)")
    group.add_argument("--errors", type=Path, metavar="PATH", help="errors file (default OUT.errors.jsonl)")
    group.add_argument("--no-texts", action="store_true", help="leave judgement texts out of the output")
    group.add_argument(
        "--max-input-chars",
        type=arg_types.positive_int,
        default=DEFAULT_MAX_INPUT_CHARS,
        metavar="N",
        help="characters of text per item (default 1,000,000)",
    )
    group.add_argument(
        "--max-consecutive-failures",
        type=arg_types.non_negative_int,
        default=200,
        metavar="N",
        help="stop after N items in a row fail at the backend (0: never; default 200)",
    )
    group.add_argument(
        "--progress-every",
        type=arg_types.positive_float,
        default=5.0,
        metavar="S",
        help="seconds between progress lines when stderr is not a terminal (default 5)",
    )
    group.add_argument("-q", "--quiet", action="store_true", help="no progress line and no summary")


def _handle(namespace: argparse.Namespace) -> int:
    try:
        options = options_from(namespace)
        engine = ray_options(namespace)
    except UsageError as exc:
        return usage_error(str(exc), sys.stderr)
    if engine is not None:
        return run_ray(options, engine, sys.stderr)
    return run_score(options, sys.stderr)


def options_from(ns: argparse.Namespace) -> ScoreOptions:
    """Typed options from the parsed command line; cross-option checks raise UsageError."""
    if ns.k_meta is not None and ns.meta is None:
        raise UsageError("--k-meta needs --meta")
    if ns.meta_base_url is not None and ns.meta is None:
        raise UsageError("--meta-base-url needs --meta")
    output: Path = ns.output
    judge = judge_options(ns)
    return ScoreOptions(
        input=ns.input,
        output=output,
        errors=ns.errors or default_errors_path(output),
        judge=judge,
        k=ns.k,
        adaptive=ns.adaptive,
        concurrency=ns.concurrency,
        max_concurrent_requests=ns.max_concurrent_requests or ns.concurrency,
        cache=ns.cache,
        resume=ns.resume,
        order=ns.order,
        texts=not ns.no_texts,
        max_input_chars=ns.max_input_chars,
        max_consecutive_failures=ns.max_consecutive_failures,
        progress_every=ns.progress_every,
        quiet=ns.quiet,
    )


def default_errors_path(output: Path) -> Path:
    """``out.jsonl`` -> ``out.errors.jsonl``; any other name gets ``.errors.jsonl`` appended."""
    stem = output.name.removesuffix(".jsonl")
    return output.with_name(f"{stem}.errors.jsonl")


def usage_error(message: str, stderr: TextIO) -> int:
    """Print ``message`` the way argparse prints its own errors and return the usage exit status."""
    stderr.write(f"grmjudge score: error: {message}\n")
    return EXIT_USAGE


def run_score(options: ScoreOptions, stderr: TextIO) -> int:
    """Check everything that can be checked before any work, then judge; returns the exit status."""
    from grmjudge.cli.session import Session  # the judging machinery loads only when a command runs

    try:
        session = Session.open(options, stderr)
    except UsageError as exc:
        return usage_error(str(exc), stderr)
    except KeyboardInterrupt:  # e.g. while --resume reads a large output: nothing was written yet
        stderr.write("grmjudge score: interrupted before judging started\n")
        return EXIT_INTERRUPTED
    return session.run()
