"""Rows in and out of the Ray stages: items in ``grmjudge score``'s input schema, lines in its output schema.

An input row is an item (``id``, ``query`` or ``messages``, ``responses``, ``label``: the columns of a JSON
Lines or Parquet file) or a ``text`` row holding one raw JSON line (as ``ray.data.read_text`` gives them, so a
line that is not JSON is an error row, not a failed read). Missing columns arrive as nulls and are dropped
before the strict checks of [`validate_record`][grmjudge.score_lines.validate_record].

An output row holds the item's ``id``, its ``kind`` (``output`` or ``error``), the exact JSON ``line`` that
``grmjudge score`` writes to its output or errors file, and the item's cost in flat integer columns (samples,
failures, tokens), so shards can be counted without parsing lines. The line stays JSON text because its nested
shape varies from row to row (``no_verdict`` counts failures by reason), which Arrow columns cannot hold.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from grmjudge._inputs import content_id, validate_input
from grmjudge.exceptions import GRMJudgeError
from grmjudge.journal import dumps
from grmjudge.judge import JudgeItem
from grmjudge.progress import SampleTally
from grmjudge.results import BatchResult, ScoreResult
from grmjudge.score_lines import InputRecord, LineError, decode_object, error_record, validate_record

RowKind = Literal["output", "error"]
Redact = Callable[[str], str]
TALLY_COLUMNS = (
    "samples",
    "samples_valid",
    "samples_cached",
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "verdict",
    "labelled",
    "label_agree",
)
"""Integer columns of an output row: the item's samples and usage, whether it got a verdict, label agreement."""
OUTPUT_COLUMNS = ("id", "kind", "line", *TALLY_COLUMNS, "failures")
"""The columns of [`judge_dataset`][grmjudge.integrations.ray.judge_dataset]'s rows, in order."""

_NO_LINE = 0
"""Ray's readers do not number lines: errors are located by id, and their ``line`` is null."""


@dataclass(frozen=True)
class Item:
    """A checked input row: its id, the judge's item and the label, if any."""

    id: str
    item: JudgeItem
    label: int | None


def read_item(row: Mapping[str, Any], *, max_chars: int) -> Item | LineError:
    """The item a row holds, or the error ``grmjudge score`` would report for it (``line`` unknown).

    Without an ``id`` an item is named by the judge's content hash of its query and responses, which does not
    depend on where the row sits in the dataset; the local command numbers lines instead.
    """
    value: dict[str, Any] | LineError | None
    if set(row) == {"text"} and isinstance(row["text"], str):
        value = decode_object(_NO_LINE, row["text"].encode("utf-8", "surrogatepass"))
        if value is None:
            return LineError(_NO_LINE, "invalid_json", "the line is blank")
    else:
        value = {name: field for name, field in row.items() if field is not None}
    if isinstance(value, LineError):
        return value
    checked = validate_record(_NO_LINE, _with_content_id(value), max_chars=max_chars)
    if isinstance(checked, LineError):
        return checked
    record, item = checked
    assert item.id is not None  # validate_record names every item
    return Item(id=item.id, item=item, label=record.label)


def _with_content_id(value: dict[str, Any]) -> dict[str, Any]:
    """The row with the judge's default id (a hash of the query and responses) when it has no ``id``."""
    if "id" in value:
        return value  # a wrong id stays for validate_record to report
    try:
        item = InputRecord.model_validate(value).to_item("-")
        messages, texts = validate_input(item.query, item.responses)
    except (ValidationError, GRMJudgeError):
        return value  # reported by validate_record, or by the judge as the item's error
    return {**value, "id": content_id(messages, texts)}


def error_row(error: LineError, redact: Redact) -> dict[str, Any]:
    """The output row of an item that produced no output line: its errors-file line, ``line`` null."""
    record = error_record(error)
    record["line"] = None
    record["message"] = record["message"].replace(" at line 0, ", " at ").replace(", at line 0", "")
    return _row(error.id or "", "error", record, redact, SampleTally(), verdict=False, label=None, best=None)


def output_row(
    item_id: str, record: dict[str, Any], result: ScoreResult, label: int | None, redact: Redact
) -> dict[str, Any]:
    """The output row of a judged item: its output line and its cost."""
    tally = SampleTally()
    tally.add(result)
    return _row(item_id, "output", record, redact, tally, verdict=result.ok, label=label, best=result.best)


def result_row(batch: BatchResult, label: int | None, redact: Redact) -> dict[str, Any]:
    """A row whose ``line`` is the judge's own record of the item, a ``BatchResult`` as JSON (``as_results``)."""
    tally = SampleTally()
    result = batch.result
    if result is not None:
        tally.add(result)
    row = _row(
        batch.item_id,
        "output" if result is not None else "error",
        {},
        redact,
        tally,
        verdict=result is not None and result.ok,
        label=label,
        best=result.best if result is not None else None,
    )
    return {**row, "line": _encodable(redact(batch.model_dump_json()))}


def _row(
    item_id: str,
    kind: RowKind,
    record: dict[str, Any],
    redact: Redact,
    tally: SampleTally,
    *,
    verdict: bool,
    label: int | None,
    best: int | None,
) -> dict[str, Any]:
    labelled = label is not None and best is not None
    return {
        "id": item_id,
        "kind": kind,
        "line": _encodable(redact(dumps(record))),
        "samples": tally.samples,
        "samples_valid": tally.samples_valid,
        "samples_cached": tally.samples_cached,
        "requests": tally.requests,
        "prompt_tokens": tally.prompt_tokens,
        "completion_tokens": tally.completion_tokens,
        "verdict": int(verdict),
        "labelled": int(labelled),
        "label_agree": int(labelled and best == label),
        "failures": json.dumps(dict(tally.failures), sort_keys=True),
    }


def _encodable(line: str) -> str:
    r"""``line`` with any lone surrogate as its JSON escape (``\ud800``): Arrow strings must be valid UTF-8."""
    return line.encode("utf-8", "backslashreplace").decode("utf-8")
