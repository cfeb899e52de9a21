"""What ``grmjudge score`` writes: output and error records, one complete line per ``write()``, secrets removed."""

from __future__ import annotations

import json
from typing import Any, BinaryIO

from grmjudge._redact import Redactor
from grmjudge.cli.files import FileProblem
from grmjudge.cli.inputs import LineError
from grmjudge.results import Sample, ScoreResult


class LineWriter:
    r"""Appends complete lines to an open file, one unbuffered ``write()`` each: a kill cuts at most the last.

    A lone surrogate, which UTF-8 cannot encode, is written as its JSON escape (``\ud800``): a JSON line holds
    characters beyond ASCII only inside its strings, where that escape reads back as the same character.
    A failing write raises [`FileProblem`][grmjudge.cli.files.FileProblem] naming the file.
    """

    def __init__(self, file: BinaryIO, *, name: str, redact: Redactor) -> None:
        self.file = file
        self.name = name
        self.lines = 0
        self._redact = redact

    def write(self, text: str) -> None:
        """Write ``text`` and a newline; ``text`` must hold no newline of its own (JSON dumps never does)."""
        data = memoryview((self._redact(text) + "\n").encode("utf-8", "backslashreplace"))
        try:
            while data:
                written = self.file.write(data)
                data = data[written or 0 :]
        except OSError as exc:
            raise FileProblem(f"cannot write to the {self.name} {self.file.name}: {exc.strerror or exc}") from exc
        self.lines += 1


def dumps(record: dict[str, Any]) -> str:
    """One JSON line: compact, UTF-8 kept as is, and no character that any reader takes for a line break.

    JSON escapes control characters itself; NEL, LINE SEPARATOR and PARAGRAPH SEPARATOR are legal raw in JSON,
    but Python's ``str.splitlines`` (and other readers) split on them, so they are escaped too.
    """
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    return text.translate(_LINE_BREAKS) if _has_line_break(text) else text


_LINE_BREAKS = {ord(c): f"\\u{ord(c):04x}" for c in "\x85\u2028\u2029"}


def _has_line_break(text: str) -> bool:
    return "\u2028" in text or "\u2029" in text or "\x85" in text


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
