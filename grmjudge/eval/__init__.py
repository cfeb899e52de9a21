"""Evaluate reward models on RewardBench, RewardBench 2, PPE, RMB, RM-Bench and JudgeBench (extra ``eval``).

``load_benchmark("rewardbench", data=PATH)`` reads the official schema from local files (or the Hub without
``data``); ``await evaluate(judge, benchmark, out, ks=[1, 8, 32])`` runs greedy and one sampled pass, scores
every setting by the benchmark's official rules with bootstrap intervals, and writes ``results.json``,
``results.md``, ``scaling.png`` and ``items.jsonl``. ``datasets``, ``pyarrow``, ``numpy`` and ``matplotlib`` load
only when a step needs them.
"""

from grmjudge.eval.harness import EvalOptions, evaluate
from grmjudge.eval.items import Call, EvalItem, LoadedBenchmark
from grmjudge.eval.loaders import BENCHMARK_NAMES, load_benchmark
from grmjudge.eval.outcomes import TiePolicy
from grmjudge.eval.report import EvalReport
from grmjudge.eval.scorecards import Scorecard, paper_overall, scorecard
from grmjudge.rows import DataError

__all__ = [
    "BENCHMARK_NAMES",
    "Call",
    "DataError",
    "EvalItem",
    "EvalOptions",
    "EvalReport",
    "LoadedBenchmark",
    "Scorecard",
    "TiePolicy",
    "evaluate",
    "load_benchmark",
    "paper_overall",
    "scorecard",
]
