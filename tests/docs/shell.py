"""Bash blocks: real bash, one shell session per page, with only the harness's commands on the PATH."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.docs import commands
from tests.docs.blocks import REPO, Block
from tests.docs.pyblocks import BlockFailure
from tests.docs.shim import ALWAYS_STATIC, STATE, STATIC, STATIC_ONLY

SHIMS = (*sorted(ALWAYS_STATIC | STATIC_ONLY), "grmjudge", "python", "python3")
REAL_TOOLS = ("cat", "ls", "head", "tail", "wc", "mkdir", "sort")
BLOCK_TIMEOUT = 600

_SERVER_LINE = re.compile(r"^\s*(?:python3? -m (?:grmjudge\.testing|vllm\.entrypoints)\.|vllm serve\b)")
_BACKGROUND = re.compile(r"\s&(\s*#.*)?$")


def make_bin(directory: Path) -> Path:
    """The PATH of bash blocks: one launcher per shim command, and links to a few real tools."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in SHIMS:
        launcher = directory / name
        launcher.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.docs.shim {name} "$@"\n')
        launcher.chmod(0o755)
    for name in REAL_TOOLS:
        real = shutil.which(name)
        if real is not None:
            (directory / name).symlink_to(real)
    return directory


def foreground_servers(code: str) -> str:
    """Drop a trailing ``&`` from server commands: their shim returns once the server answers, so the next
    command never races the server's start, and a static check is recorded before the block ends."""
    lines = code.splitlines()
    i = 0
    while i < len(lines):
        start = i
        while lines[i].rstrip().endswith("\\") and i + 1 < len(lines):
            i += 1
        if _SERVER_LINE.match(lines[start]):
            lines[i] = _BACKGROUND.sub(lambda m: m[1] or "", lines[i])
        i += 1
    return "\n".join(lines) + "\n"


class Shell:
    """A page's shell session: variables and the working directory carry over from one bash block to the next."""

    def __init__(self, workdir: Path, state: Path, bin_dir: Path) -> None:
        self.workdir = workdir
        self.state = state
        self.bin_dir = bin_dir
        state.mkdir(parents=True, exist_ok=True)
        self._baseline: str | None = None

    def environment(self, static: bool) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            PATH=str(self.bin_dir), PYTHONPATH=str(REPO), **{STATE: str(self.state), STATIC: "1" if static else "0"}
        )
        return env

    def run(self, block: Block, code: str, *, static: bool) -> str:
        """Run the block; return its stdout and stderr; then run the static checks of the commands it recorded."""
        env = self.environment(static)
        vars_file, cwd_file = self.state / "vars.sh", self.state / "cwd"
        script = "\n".join(
            [
                "set -euo pipefail",
                f'cd "$(cat {cwd_file})"' if cwd_file.exists() else "",
                f"source {vars_file}" if vars_file.exists() else "",
                foreground_servers(code),
                "wait",
                f"for __docs_v in $(compgen -v); do case ' {self._baseline_names(env)} __docs_v ' in "
                f'*" $__docs_v "*) ;; *) declare -p "$__docs_v" ;; esac; done > {vars_file}',
                f"pwd > {cwd_file}",
            ]
        )
        (self.state / "static.jsonl").unlink(missing_ok=True)
        process = subprocess.Popen(
            ["/bin/bash", "-c", script],
            cwd=self.workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            output, _ = process.communicate(timeout=BLOCK_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            raise BlockFailure(f"{block.where}: still running after {BLOCK_TIMEOUT} s:\n{output.decode()}") from None
        text = output.decode()
        if process.returncode != 0:
            raise BlockFailure(f"{block.where}: bash exited with {process.returncode}:\n{text}")
        self._check_recorded(block)
        return text

    def _check_recorded(self, block: Block) -> None:
        log = self.state / "static.jsonl"
        if not log.exists():
            return
        for line in log.read_text().splitlines():
            entry = json.loads(line)
            try:
                commands.check(entry["argv"], Path(entry["cwd"]))
            except commands.CommandFailure as exc:
                raise BlockFailure(f"{block.where}: `{' '.join(entry['argv'])}`:\n{exc}") from exc

    def _baseline_names(self, env: dict[str, str]) -> str:
        """Variables every bash has: they are not carried over (only the page's own are)."""
        if self._baseline is None:
            names = subprocess.run(
                ["/bin/bash", "-c", "set -euo pipefail; compgen -v"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            self._baseline = " ".join(names)
        return self._baseline

    def close(self) -> None:
        """Stop the servers that the page's commands started."""
        servers = self.state / "servers"
        if not servers.exists():
            return
        for entry in servers.iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(int(entry.name), signal.SIGTERM)
