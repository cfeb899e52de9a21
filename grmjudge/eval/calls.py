"""Reading a run's ``items.jsonl`` back for analysis: each call's newest line of one pass, streamed.

A resumed run can hold several lines of a call (a call whose backend failed is judged again and its newest line
wins, as in [`read_journal`][grmjudge.eval.journal.read_journal]); the file is read twice, once to find each
call's newest line and once to yield those lines, so a run of any size never sits in memory whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grmjudge.eval.items import AllPairsLabel, BestLabel, GamesLabel, LoadedBenchmark
from grmjudge.journal import Journal


def journal_passes(path: Path) -> list[str]:
    """The pass names found in the journal, in the order they first appear."""
    names: dict[str, None] = {}
    for _, line in _lines(path):
        names.setdefault(str(line.get("pass")), None)
    return list(names)


def newest_lines(path: Path, pass_name: str) -> Iterator[dict[str, Any]]:
    """Each call's newest line of ``pass_name``, in the order those lines were written."""
    newest: dict[str, int] = {}
    for number, line in _lines(path):
        if line.get("pass") == pass_name:
            newest[str(line.get("call_id"))] = number
    wanted = set(newest.values())
    for number, line in _lines(path):
        if number in wanted:
            yield line


def labelled_best(benchmark: LoadedBenchmark) -> dict[str, int]:
    """Call id -> the caller's index of the labelled best response, for the calls whose label names one.

    A best-of-n or pair label names it directly; JudgeBench's games show (A, B) then (B, A), so the labelled
    winner is index 0 of one call and 1 of the other. Style matrices and Ties rows name no single best.
    """
    best: dict[str, int] = {}
    for item in benchmark.items:
        label = item.label
        if isinstance(label, BestLabel):
            best[item.calls[0].id] = label.best
        elif isinstance(label, GamesLabel):
            for game, call in enumerate(item.calls):
                best[call.id] = 0 if label.a_wins == (game == 0) else 1
        elif isinstance(label, AllPairsLabel):
            best.update({call.id: 0 for call in item.calls})
    return best


def _lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    return Journal(path, kind="grmjudge eval record").records()
