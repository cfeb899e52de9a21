"""The typed options, exit statuses and usage error of ``grmjudge score``, shared by every part of the command."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from grmjudge.judge_options import JudgeOptions

Order = Literal["input", "completion"]
EXIT_OK, EXIT_ERRORS, EXIT_USAGE, EXIT_ABORTED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class UsageError(Exception):
    """The command cannot start as given; nothing has been done."""


@dataclass(frozen=True)
class ScoreOptions:
    """Every option of ``grmjudge score``, typed."""

    input: str
    output: Path
    errors: Path
    judge: JudgeOptions
    k: int
    adaptive: bool
    concurrency: int
    max_concurrent_requests: int
    cache: Path | None
    resume: bool
    order: Order
    texts: bool
    max_input_chars: int
    max_consecutive_failures: int
    progress_every: float
    quiet: bool
