"""Helpers for the eval tests: fixture paths and a scripted judge run over a benchmark."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grmjudge import Judge, JudgeSettings
from grmjudge.backends import FunctionBackend
from grmjudge.eval import EvalOptions, EvalReport, LoadedBenchmark, evaluate
from grmjudge.eval.runner import AnyJudge
from tests.eval.judges import scripted

DATA = Path(__file__).parent / "data"


def scripted_judge(**settings: Any) -> Judge:
    """A GRM whose judgements give each response the score written into it."""
    return Judge(FunctionBackend(scripted), settings=JudgeSettings(**settings))


async def run(
    benchmark: LoadedBenchmark,
    out: Path,
    judge: AnyJudge | None = None,
    *,
    ks: Sequence[int] = (1,),
    **options: Any,
) -> EvalReport:
    """Evaluate with a small bootstrap (the intervals are checked elsewhere)."""
    return await evaluate(
        judge or scripted_judge(), benchmark, out, ks=ks, options=EvalOptions(**{"bootstrap": 50, **options})
    )


def values(numbers: dict[str, Any]) -> dict[str, float]:
    """``{name: Number}`` -> ``{name: value}``."""
    return {name: number.value for name, number in numbers.items()}
