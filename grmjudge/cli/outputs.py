"""What ``grmjudge score`` writes: the output record of a judged item and the errors-file record of a bad line.

The lines are written by a [`JournalWriter`][grmjudge.journal.JournalWriter], secrets removed.
"""

from __future__ import annotations

from typing import Any

from grmjudge.cli.inputs import LineError
from grmjudge.results import Sample, ScoreResult


def output_record(result: ScoreResult, item_id: str, label: int | None, *, texts: bool) -> dict[str, Any]:
    """The output line of a judged item (schema in ``docs/batch.md``)."""
    record: dict[str, Any] = {"id": item_id, "scores": result.scores, "best": result.best}
    if label is not None:
        record["label"] = label
    record["n_valid"] = result.n_valid
    record["n_kept"] = result.n_kept
    record["samples"] = [_sample(s, texts=texts) for s in result.samples]
    record["no_verdict"] = result.no_verdict.model_dump() if result.no_verdict is not None else None
    record["provenance"] = result.provenance.model_dump()
    record["usage"] = result.usage.model_dump()
    return record


def _sample(sample: Sample, *, texts: bool) -> dict[str, Any]:
    record: dict[str, Any] = {
        "permutation": list(sample.permutation),
        "scores": list(sample.scores) if sample.scores is not None else None,
    }
    if texts:
        record["principles"] = sample.principles
        record["critique"] = sample.critique
        record["text"] = sample.text
    record["finish_reason"] = sample.finish_reason
    record["error"] = sample.error.model_dump() if sample.error is not None else None
    record["meta_score"] = sample.meta_score
    record["kept"] = sample.kept
    record["cached"] = sample.cached
    return record


def error_record(error: LineError) -> dict[str, Any]:
    """The errors-file line of a line that produced no output."""
    record: dict[str, Any] = {"line": error.line, "id": error.id, "type": error.type, "message": error.message}
    if error.details:
        record["details"] = list(error.details)
    return record
