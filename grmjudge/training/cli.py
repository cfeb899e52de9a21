"""``python -m grmjudge.training COMMAND`` (and ``grmjudge train COMMAND``): one command per SPCT stage.

Each command's flags are the fields of its config dataclass (TRL's parser: ``--learning-rate 1e-5``,
``--use-peft``, ``--no-merge-adapter``), spelled with dashes like ``grmjudge score``'s and ``grmjudge eval``'s;
the underscore spellings TRL also accepts (``--learning_rate``) still work but are left out of ``--help``.
``--config FILE`` reads a YAML or JSON mapping of the field names first, so flags given on the command line
override the file. The trainer commands run under
``accelerate launch -m grmjudge.training ...`` for several GPUs.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from grmjudge._optional import require
from grmjudge.exceptions import GRMJudgeError

__all__ = ["COMMANDS", "main", "parse_config"]


@dataclass(frozen=True)
class Command:
    """A stage: its config class and runner, by module path so that ``--help`` loads only what it needs."""

    module: str
    config: str
    runner: str
    is_async: bool
    summary: str


COMMANDS = {
    "rft-sample": Command(
        "grmjudge.training.rft", "RFTSampleConfig", "run_rft_sampling", True, "rejection-sample judgements (RFT data)"
    ),
    "sft": Command("grmjudge.training.sft", "JudgeSFTConfig", "train_sft", False, "fine-tune on the kept judgements"),
    "grpo": Command("grmjudge.training.grpo", "JudgeGRPOConfig", "train_grpo", False, "rule-based RL with GRPO"),
    "meta-sample": Command(
        "grmjudge.training.meta_data", "MetaSampleConfig", "run_meta_sampling", True, "sample labelled meta-RM data"
    ),
    "meta-rm": Command("grmjudge.training.meta_rm", "MetaRMConfig", "train_meta_rm", False, "train the meta RM"),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one training command; returns 0 on success, 2 for bad arguments, 1 when the run fails."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(_usage())
        return 0 if args else 2
    name, rest = args[0], args[1:]
    command = COMMANDS.get(name)
    if command is None:
        sys.stderr.write(f"unknown command {name!r}\n\n{_usage()}")
        return 2
    try:
        config = parse_config(name, rest)
    except SystemExit as exc:  # argparse exits on --help and on bad flags
        return exc.code if isinstance(exc.code, int) else 2
    except (GRMJudgeError, ValueError) as exc:
        sys.stderr.write(f"grmjudge train {name}: error: {exc}\n")
        return 2
    runner: Callable[[Any], Any] = getattr(importlib.import_module(command.module), command.runner)
    try:
        result = anyio.run(runner, config) if command.is_async else runner(config)
    except GRMJudgeError as exc:
        sys.stderr.write(f"grmjudge train {name}: error: {exc}\n")
        return 1
    sys.stdout.write(result.model_dump_json(indent=2) + "\n")
    return 0


def parse_config(name: str, args: Sequence[str]) -> Any:
    """The config of command ``name`` from flags and ``--config FILE`` (YAML or JSON; flags win).

    Raises ``SystemExit`` for ``--help`` and unknown flags (argparse), and
    [`ConfigurationError`][grmjudge.exceptions.ConfigurationError] for values that do not fit together.
    """
    command = COMMANDS[name]
    config_class = getattr(importlib.import_module(command.module), command.config)
    trl: Any = require("trl", extra="train")
    parser = trl.TrlParser(
        [config_class],
        prog=f"grmjudge train {name}",
        description=f"{COMMANDS[name].summary}. --config FILE reads flags from a YAML/JSON mapping first.",
    )
    show_dashed_flags(parser)
    (config,) = parser.parse_args_and_config(list(args))
    return config


class DashedHelpFormatter(argparse.HelpFormatter):
    """Lists each flag in its dashed spelling only, where the parser also accepts an underscore one."""

    def _format_action_invocation(self, action: argparse.Action) -> str:
        dashed = [option for option in action.option_strings if "_" not in option]
        if dashed and len(dashed) < len(action.option_strings):
            action = argparse.Action(dashed, action.dest, action.nargs, metavar=action.metavar, choices=action.choices)
        return super()._format_action_invocation(action)


def show_dashed_flags(parser: argparse.ArgumentParser) -> None:
    """Put the dashed spelling of every flag first (usage lines show the first) and hide the underscore one."""
    for action in parser._actions:  # pyright: ignore[reportPrivateUsage]
        action.option_strings = sorted(action.option_strings, key=lambda option: "_" in option)
    parser.formatter_class = DashedHelpFormatter


def _usage() -> str:
    lines = [f"  {name:<12} {command.summary}" for name, command in COMMANDS.items()]
    return (
        "usage: grmjudge train COMMAND [--config FILE] [--flag value ...]\n"
        "   or: python -m grmjudge.training COMMAND ...\n\n"
        "commands:\n" + "\n".join(lines) + "\n\nRun a command with --help for its flags.\n"
    )
