"""Real runs for the report's tests: a judge on a scripted backend writes a score output the way the CLI does."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import anyio

from grmjudge.backends.function import FunctionBackend
from grmjudge.judge import Judge
from grmjudge.meta import FunctionMetaScorer, MetaInput
from grmjudge.score_lines import output_record
from grmjudge.settings import JudgeSettings
from grmjudge.types import GenerationRequest
from tests.judges import judgement, shown_responses

INJECTED = '<script>window.__injected = "script";</script><img src="x" onerror="window.__injected = \'img\'">'
"""A response that would set ``window.__injected`` if the page ever ran it as markup."""


def first_shown_wins(request: GenerationRequest) -> list[str]:
    """A judge with a strong position bias: the response shown first scores 9, the others by length (1..6).

    A response whose text is ``"unparseable"`` makes the whole judgement unparseable (no box).
    """
    shown = shown_responses(request)
    if "unparseable" in shown:
        return ["I cannot decide between these."] * request.n
    scores = [9] + [len(text) % 6 + 1 for text in shown[1:]]
    return [judgement(scores)] * request.n


def meta_by_length(inputs: Sequence[MetaInput]) -> list[float]:
    """A meta RM that prefers judgements of responses shown with the shortest first."""
    return [-float(len(i.responses[0])) for i in inputs]


def items() -> list[dict[str, object]]:
    """Six labelled pairs and triples, one with the injected markup, one that gets no verdict."""
    rows: list[dict[str, object]] = [
        {"id": "sum", "query": "What is 2 + 2?", "responses": ["4", "five", "22"], "label": 0},
        {"id": "capital", "query": "Capital of France?", "responses": ["Lyon", "Paris"], "label": 1},
        {"id": "inject", "query": "Say hi.", "responses": ["hi", INJECTED], "label": 0},
        {"id": "broken", "query": "Anything?", "responses": ["unparseable", "x"], "label": 0},
        {"id": "colour", "query": "Sky colour?", "responses": ["blue", "green", "red", "grey"], "label": 0},
        {"id": "sort", "query": "Sort 3 1 2.", "responses": ["1 2 3", "3 2 1"], "label": 0},
    ]
    return rows


def write_score_run(directory: Path, *, k: int = 4, meta: bool = True) -> tuple[Path, Path]:
    """Judge :func:`items` and write the input and output files as ``grmjudge score`` would; returns both paths."""
    rows = items()
    source = directory / "input.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    output = directory / "output.jsonl"

    async def judge_all() -> list[str]:
        settings = JudgeSettings(seed=7, temperature=1.0)
        scorer = FunctionMetaScorer(meta_by_length) if meta else None
        async with Judge(FunctionBackend(first_shown_wins), meta=scorer, settings=settings) as judge:
            lines: list[str] = []
            for row in rows:
                responses = [str(r) for r in row["responses"]]  # type: ignore[union-attr]
                result = await judge.score(str(row["query"]), responses, k, meta, item_id=str(row["id"]))
                record = output_record(result, str(row["id"]), int(row["label"]), texts=True)  # type: ignore[arg-type]
                lines.append(json.dumps(record, ensure_ascii=False) + "\n")
            return lines

    output.write_text("".join(anyio.run(judge_all)), encoding="utf-8")
    return source, output
