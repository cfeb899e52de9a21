"""The line schemas of ``grmjudge score``: the input record and its checks, the output line and the errors-file line.

The local command (``grmjudge/cli/``) and the Ray engine (``grmjudge.integrations.ray``) both read and write
these, so a line means the same whichever engine judged it. The schemas are documented in ``docs/batch.md``.
Validation reuses the judge's ``JudgeItem`` (role and last-turn checks) behind a strict record model, so a
number is never silently read as a string.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import ErrorDetails, PydanticCustomError

from grmjudge._inputs import lone_surrogate
from grmjudge.judge import JudgeItem
from grmjudge.results import Sample, SampleError, ScoreResult
from grmjudge.types import Message

DEFAULT_MAX_INPUT_CHARS = 1_000_000
"""Characters of text per item unless ``--max-input-chars`` says otherwise."""

_JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}
_VALID_TEXT = "text must be valid Unicode"
_STRING_OR_INTEGER = re.compile(r'"(?:[^"\\]|\\.)*"|(?<![\d.eE+-])-?\d+(?![\d.eE])')
"""A JSON string (skipped whole) or an integer that is not part of a fraction or an exponent."""


class InputRecord(BaseModel):
    """One input line: ``id``, ``query`` or ``messages``, ``responses`` and an optional ``label``."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str | None = Field(default=None, min_length=1)
    query: str | None = None
    messages: list[Message] | None = None
    responses: list[str] = Field(min_length=1)
    label: int | None = None

    @model_validator(mode="after")
    def _one_query_and_a_valid_label(self) -> Self:
        if (self.query is None) == (self.messages is None):
            given = "both" if self.query is not None else "neither"
            raise PydanticCustomError(
                "query_or_messages", "give exactly one of 'query' and 'messages', not {given}", {"given": given}
            )
        if self.label is not None and not 0 <= self.label < len(self.responses):
            raise PydanticCustomError(
                "label_out_of_range",
                "label {label} is not the index of a response (0 to {last})",
                {"label": self.label, "last": len(self.responses) - 1},
            )
        return self

    def text_length(self) -> int:
        """Characters of text in the item: the query (or every message) plus every response."""
        query = len(self.query) if self.query is not None else sum(len(m.content) for m in self.messages or ())
        return query + sum(len(r) for r in self.responses)

    def to_item(self, item_id: str) -> JudgeItem:
        """The judge's item; raises ValidationError for a query the judge refuses (empty, last turn not the user's).

        A plain query becomes its one user message, so the judge's query checks run now, at reading time.
        """
        query = (Message(role="user", content=self.query),) if self.query is not None else tuple(self.messages or ())
        return JudgeItem(query=query, responses=tuple(self.responses), id=item_id)


@dataclass(frozen=True)
class LineError:
    """A line that cannot be judged: where, what kind of problem, and a message a person can act on."""

    line: int
    type: str
    message: str
    id: str | None = None
    details: tuple[dict[str, Any], ...] = ()


def decode_object(number: int, raw: bytes) -> dict[str, Any] | LineError | None:
    r"""The line as a JSON object of valid Unicode text, a LineError, or None for a blank line.

    Errors name the line and the column (the byte, for bytes that are not UTF-8), counted from 1 as editors do.
    JSON may spell half of a UTF-16 pair alone (``"\ud83d"``, as JavaScript writes a split emoji): such text
    cannot be sent or written, so each field holding one is an ``invalid_item`` problem of its own.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        message = f"the line is not UTF-8 text: {exc.reason} at line {number}, byte {exc.start + 1}"
        return LineError(number, "invalid_json", message)
    text = text.removeprefix("\ufeff") if number == 1 else text
    if not text.strip():
        return None
    try:
        value: object = json.loads(text)
        if not isinstance(value, dict):
            found = _json_type(value)
            return LineError(number, "not_an_object", f"each line must be a JSON object, got {found}")
        record = cast(dict[str, Any], value)
        # the only way a lone surrogate gets in is a JSON escape: skip the walk without one
        problems = tuple(_lone_surrogates(record)) if b"\\ud" in raw or b"\\uD" in raw else ()
    except json.JSONDecodeError as exc:
        message = f"the line is not valid JSON: {exc.msg} at line {number}, column {exc.colno}"
        return LineError(number, "invalid_json", message)
    except RecursionError:  # Python's JSON reader (and the walk) stop near 1,000 levels of nesting
        message = f"the line nests arrays and objects too deeply to read, at line {number}"
        return LineError(number, "invalid_json", message)
    except ValueError as exc:  # an integer over Python's limit of digits (sys.get_int_max_str_digits)
        return LineError(number, "invalid_json", _too_long_integer(number, text, exc))
    return _invalid_with(number, record, problems) if problems else record


def _too_long_integer(number: int, text: str, exc: ValueError) -> str:
    """Where the integer too long to read starts, as an editor counts, with Python's limit."""
    limit = sys.get_int_max_str_digits()
    for token in _STRING_OR_INTEGER.finditer(text):
        digits = len(token.group().lstrip("-"))
        if not token.group().startswith('"') and digits > limit:
            return (
                f"the line holds an integer of {digits:,} digits, over the {limit:,} that can be read, "
                f"at line {number}, column {token.start() + 1}"
            )
    return f"the line cannot be read: {exc}, at line {number}, column 1"


def _lone_surrogates(value: object, path: str = "") -> Iterator[dict[str, Any]]:
    """A problem for each string (field names included) under a decoded JSON value that holds a lone surrogate."""
    if isinstance(value, str):
        position = lone_surrogate(value)
        if position is not None:
            message = (
                f"holds {_surrogate_at(value, position)} (half of a UTF-16 pair, such as a split emoji); {_VALID_TEXT}"
            )
            yield {"field": path, "problem": "lone_surrogate", "message": message}
    elif isinstance(value, list):
        for index, element in enumerate(cast(list[object], value)):
            yield from _lone_surrogates(element, f"{path}[{index}]")
    elif isinstance(value, dict):
        for key, element in cast(dict[str, object], value).items():
            field = f"{path}.{_escape_surrogates(key)}" if path else _escape_surrogates(key)
            position = lone_surrogate(key)
            if position is not None:
                yield {
                    "field": field,
                    "problem": "lone_surrogate",
                    "message": f"the field name holds {_surrogate_at(key, position)}",
                }
            yield from _lone_surrogates(element, field)


def _surrogate_at(text: str, position: int) -> str:
    return f"a lone surrogate {_escape_surrogates(text[position])} at character {position + 1}"


def _escape_surrogates(text: str) -> str:
    r"""``text`` with each lone surrogate spelled as its JSON escape (``\ud800``), so it can be printed or written."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def item_id_of(number: int, value: dict[str, Any]) -> str:
    """The id a line stands for: its ``id`` when that is a non-empty string, else its line number."""
    given = value.get("id")
    return given if isinstance(given, str) and given else str(number)


def given_id(value: dict[str, Any]) -> str | None:
    """The line's ``id`` if it is a string (for error reports)."""
    given = value.get("id")
    return given if isinstance(given, str) else None


def validate_record(number: int, value: dict[str, Any], *, max_chars: int) -> tuple[InputRecord, JudgeItem] | LineError:
    """The record and its judge item, or a LineError naming every problem found."""
    try:
        record = InputRecord.model_validate(value)
    except ValidationError as exc:
        return _invalid(number, value, exc.errors())
    length = record.text_length()
    if length > max_chars:
        message = f"the item holds {length:,} characters of text, over the limit of {max_chars:,} (--max-input-chars)"
        return LineError(number, "input_too_long", message, id=given_id(value))
    try:
        item = record.to_item(item_id_of(number, value))
    except ValidationError as exc:
        renamed = "messages" if record.messages is not None else "query"
        errors = [
            {**e, "loc": (renamed, *e["loc"][1:]) if e["loc"][:1] == ("query",) else e["loc"]} for e in exc.errors()
        ]
        return _invalid(number, value, errors)  # pyright: ignore[reportArgumentType]
    return record, item


def _invalid(number: int, value: dict[str, Any], errors: list[ErrorDetails]) -> LineError:
    return _invalid_with(number, value, tuple(_detail(e) for e in errors))


def _invalid_with(number: int, value: dict[str, Any], details: tuple[dict[str, Any], ...]) -> LineError:
    message = "; ".join(f"{d['field']}: {d['message']}" if d["field"] else d["message"] for d in details)
    return LineError(number, "invalid_item", message, id=given_id(value), details=details)


def _detail(error: ErrorDetails) -> dict[str, Any]:
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
    kind = error["type"]
    if kind == "missing":
        message = "missing required field"
    elif kind == "extra_forbidden":
        message = "unknown field (allowed: id, query, messages, responses, label)"
    else:
        message = error["msg"].removeprefix("Value error, ")
        if kind.endswith("_type"):
            message += f", got {_json_type(error['input'])}"
    return {"field": path, "problem": kind, "message": message}


def _json_type(value: object) -> str:
    return "null" if value is None else _JSON_TYPES.get(type(value), type(value).__name__)


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


def backend_failed(line: int, item_id: str, failed: list[SampleError]) -> LineError:
    """The errors-file problem of an item without a verdict whose samples failed at the backend."""
    reasons = Counter(e.reason for e in failed)
    first = {e.reason: e.message for e in reversed(failed)}
    details = tuple({"reason": r, "samples": n, "message": first[r]} for r, n in reasons.most_common())
    summary = ", ".join(f"{r} x{n}" for r, n in reasons.most_common())
    message = f"no verdict: samples failed at the backend ({summary}): {failed[0].message}"
    return LineError(line, "backend_failed", message, id=item_id, details=details)
