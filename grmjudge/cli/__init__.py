"""The ``grmjudge`` command line (``python -m grmjudge.cli`` runs the same ``main``).

Only argparse and the argument definitions load at startup; the judging machinery, and a heavy backend
only when its spec is used, load when a command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from grmjudge._version import __version__
from grmjudge.cli import demo, score
from grmjudge.report import cli as report
from grmjudge.serve import command as serve_command

DELEGATED = {
    "eval": ("grmjudge.eval.cli", "evaluate a judge on reward-model benchmarks (extra 'eval')"),
    "train": ("grmjudge.training.cli", "train a GRM and its meta RM with SPCT (extra 'train')"),
}
"""Commands whose parser lives with their subpackage, imported only when the command runs."""


def build_parser() -> argparse.ArgumentParser:
    """The ``grmjudge`` parser and its subcommands."""
    parser = argparse.ArgumentParser(prog="grmjudge", description="Score LLM outputs with generative reward models.")
    parser.add_argument("--version", action="version", version=f"grmjudge {__version__}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)
    score.add_parser(commands)
    demo.add_parser(commands)
    report.add_parser(commands)
    serve_command.add_parser(commands)
    for name, (_, summary) in DELEGATED.items():
        commands.add_parser(name, help=summary, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad arguments, before any work)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[args[0]][0])
        if args[0] == "eval":  # eval sits below the command, which lends it the Ray engine's judge
            from grmjudge.cli.ray_engine import eval_judge

            return int(module.main(args[1:], ray_judge=eval_judge))
        return int(module.main(args[1:]))
    parser = build_parser()
    try:
        namespace = parser.parse_args(args)
    except SystemExit as exc:  # argparse exits on --help, --version and bad arguments
        return exc.code if isinstance(exc.code, int) else 2
    return namespace.handler(namespace)


__all__ = ["build_parser", "main"]
