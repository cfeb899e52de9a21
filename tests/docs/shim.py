"""The commands that bash blocks of the docs find on their PATH (``python -m tests.docs.shim NAME ARGS...``).

Each command is run for real, started as a server, or recorded for a static check that the harness runs after
the block (see the table in ``test_docs_code``). Anything else exits 127, as an unknown command would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.docs.blocks import REPO

STATE = "DOCS_TEST_STATE"
"""Environment variable: the page's state directory (``static.jsonl``, ``servers/``)."""
STATIC = "DOCS_TEST_STATIC"
"""Environment variable: set to 1 in a ``static`` block, where grmjudge commands are checked, not run."""

MAX_STEPS = 2
"""Trainer runs in the docs stop after this many optimizer steps."""
TRAINERS = frozenset({"sft", "grpo", "meta-rm"})
SERVER_MODULES = frozenset(
    {"grmjudge.testing.fake_openai", "grmjudge.testing.fake_anthropic", "grmjudge.testing.faults"}
)
GRMJUDGE_MODULES = {"grmjudge.cli": [], "grmjudge.eval": ["eval"], "grmjudge.training": ["train"]}
"""``python -m MODULE ARGS`` is ``grmjudge PREFIX... ARGS``."""
ALWAYS_STATIC = frozenset({"pip", "vllm", "accelerate"})
STATIC_ONLY = frozenset({"bash"})
"""Commands that only a ``static`` block may show (``bash scripts/dev-install.sh``): they are never run."""
EXAMPLES = REPO / "examples"


def main(argv: Sequence[str]) -> int:
    name, args = argv[0], list(argv[1:])
    if name in ALWAYS_STATIC:
        return record([name, *args])
    if name in STATIC_ONLY:
        return record([name, *args]) if os.environ.get(STATIC) == "1" else unknown([name, *args], "a static block")
    if name == "grmjudge":
        return grmjudge(args)
    if name in ("python", "python3"):
        return python(args)
    return unknown([name, *args])


def python(args: list[str]) -> int:
    if args[:1] == ["-c"]:
        os.execv(sys.executable, [sys.executable, *args])
    if args and is_example_script(args[0]):
        if os.environ.get(STATIC) == "1":
            return record(["python", *args])
        one_torch_thread()
        os.execv(sys.executable, [sys.executable, *args])
    if args[:1] != ["-m"] or len(args) < 2:
        return unknown(["python", *args])
    module, rest = args[1], args[2:]
    if module in GRMJUDGE_MODULES:
        return grmjudge([*GRMJUDGE_MODULES[module], *rest])
    if module in SERVER_MODULES:
        return start_server(module, rest)
    if module == "vllm.entrypoints.openai.api_server" or os.environ.get(STATIC) == "1":
        return record(["python", *args])
    if module.startswith("grmjudge."):  # any other command of the package, such as a toy pipeline
        os.execv(sys.executable, [sys.executable, *args])
    return unknown(["python", *args])


def is_example_script(path: str) -> bool:
    """Whether ``path`` is one of the repository's example scripts (``python examples/score_app.py``)."""
    return path.endswith(".py") and Path(path).resolve().parent == EXAMPLES.resolve()


def grmjudge(args: list[str]) -> int:
    if os.environ.get(STATIC) == "1":
        return record(["grmjudge", *args])
    if args[:1] == ["train"] and len(args) > 1 and args[1] in TRAINERS:
        args = cap_steps(args)
        one_torch_thread()
    os.execv(sys.executable, [sys.executable, "-m", "grmjudge.cli", *args])


def one_torch_thread() -> None:
    """Run the command's tiny models on one thread: with two, thread hand-offs dominate their small steps
    (measured on the 2-core CI machine: 2 GRPO steps of the tiny model trained in 19.7 s with two torch
    threads, 4.0 s with one; ``examples/train_custom_judge.py`` ran in 10.5 s and 5.4 s)."""
    os.environ["OMP_NUM_THREADS"] = "1"


def cap_steps(args: list[str]) -> list[str]:
    """``args`` with ``--max_steps`` at most MAX_STEPS (flags win over a ``--config`` file)."""
    kept: list[str] = []
    steps = MAX_STEPS
    i = 0
    while i < len(args):
        if args[i] == "--max_steps" and i + 1 < len(args):
            steps = min(MAX_STEPS, int(args[i + 1]))
            i += 2
            continue
        if args[i].startswith("--max_steps="):
            steps = min(MAX_STEPS, int(args[i].split("=", 1)[1]))
        else:
            kept.append(args[i])
        i += 1
    return [*kept, "--max_steps", str(steps)]


def record(argv: list[str]) -> int:
    """Leave the command for the harness's static check after the block."""
    with open(Path(os.environ[STATE]) / "static.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps({"argv": argv, "cwd": os.getcwd()}) + "\n")
    return 0


def start_server(module: str, args: list[str]) -> int:
    """Start the server for the rest of the page and return once it answers ``GET /v1/models``."""
    port = args[args.index("--port") + 1]
    servers = Path(os.environ[STATE]) / "servers"
    servers.mkdir(exist_ok=True)
    log_path = servers / f"{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    (servers / str(process.pid)).write_text(module)
    headers = {"x-api-key": _option(args, "--api-key") or "any", "anthropic-version": "2023-06-01"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.stderr.write(f"python -m {module} exited with {process.returncode}:\n{log_path.read_text()}")
            return 1
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", headers=headers, timeout=2).status_code == 200:
                return 0
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    sys.stderr.write(f"python -m {module} did not answer within 30 s:\n{log_path.read_text()}")
    return 1


def _option(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args[:-1] else None


def unknown(argv: list[str], only_in: str | None = None) -> int:
    where = f" outside {only_in}" if only_in else ""
    command = " ".join(argv)
    sys.stderr.write(f"docs harness: no check is defined for `{command}`{where} (see tests/docs/test_docs_code.py)\n")
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
