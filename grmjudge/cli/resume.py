"""``--resume``: keep the complete lines of an interrupted output, and refuse when resuming would mix runs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grmjudge.cli.ids import IdIndex
from grmjudge.cli.inputs import decode_object, item_id_of

_CHUNK = 1 << 16
_SHOWN = 5


class ResumeError(Exception):
    """Resuming this output would be wrong; the message says why and what to do instead."""


@dataclass(frozen=True)
class ExistingOutput:
    """The ids already written, how many lines hold them, and the size of a cut last line to drop."""

    ids: IdIndex
    lines: int
    dropped_bytes: int


def load_existing_output(
    path: Path, expected: Mapping[str, object], input_lines: Iterator[tuple[int, bytes | None]]
) -> ExistingOutput:
    """Collect the ids of the complete lines of ``path``, checking every line; change nothing.

    Each id must stand for a line of the input (else the output was made from another input), appear once, and
    carry provenance matching ``expected`` (k, model, seed, ...: a mismatch would mix two experiments in one
    file). A partial last line is only measured; [`truncate_partial_line`][grmjudge.cli.resume.truncate_partial_line]
    removes it once every check has passed.
    """
    in_input = input_ids(input_lines)
    done = IdIndex()
    missing: list[str] = []
    lines = 0
    records = _Records(path)
    for lines, record in records:
        item_id = record.get("id")
        if not isinstance(item_id, str):
            raise ResumeError(f"line {lines} of {path} has no string 'id'; it is not a grmjudge output file")
        if item_id in done:
            raise ResumeError(f"id {item_id!r} appears twice in {path} (line {lines}); the file was edited or merged")
        _check_provenance(path, lines, record.get("provenance"), expected)
        if item_id not in in_input:
            missing.append(item_id)
        done.add(item_id, lines)
    if missing:
        raise ResumeError(_missing_message(path, missing))
    return ExistingOutput(ids=done, lines=lines, dropped_bytes=records.partial_bytes)


def input_ids(lines: Iterator[tuple[int, bytes | None]]) -> IdIndex:
    """The ids the input's lines stand for (lines that are JSON objects: given ids, else line numbers)."""
    ids = IdIndex()
    for number, raw in lines:
        value = decode_object(number, raw) if raw is not None else None
        if isinstance(value, dict):
            ids.add(item_id_of(number, value), number)
    return ids


def truncate_partial_line(path: Path) -> int:
    """Cut ``path`` after its last newline (a killed writer leaves at most one partial line); bytes dropped."""
    with path.open("r+b") as file:
        size = file.seek(0, os.SEEK_END)
        end = size
        while end > 0:
            start = max(0, end - _CHUNK)
            file.seek(start)
            newline = file.read(end - start).rfind(b"\n")
            if newline >= 0:
                keep = start + newline + 1
                break
            end = start
        else:
            keep = 0
        file.truncate(keep)
    return size - keep


def _missing_message(path: Path, missing: list[str]) -> str:
    shown = ", ".join(repr(i) for i in missing[:_SHOWN])
    more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
    return (
        f"{len(missing)} id(s) in {path} are not in the input ({shown}{more}): "
        "the output was made from another input file; write to a new output instead"
    )


class _Records:
    """The complete lines of an output file as JSON objects; a last line without a newline is only measured."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.partial_bytes = 0

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any]]]:
        with self.path.open("rb") as file:
            for number, raw in enumerate(file, start=1):
                if not raw.endswith(b"\n"):
                    self.partial_bytes = len(raw)
                    return
                yield number, self._parse(number, raw)

    def _parse(self, number: int, raw: bytes) -> dict[str, Any]:
        try:
            record: object = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ResumeError(
                f"line {number} of {self.path} is not valid JSON (column {exc.colno}: {exc.msg}); "
                "the file was edited or damaged"
            ) from None
        except ValueError:  # bytes that are not UTF-8
            raise ResumeError(
                f"line {number} of {self.path} is not UTF-8 text; the file was edited or damaged"
            ) from None
        if not isinstance(record, dict):
            raise ResumeError(f"line {number} of {self.path} is not a JSON object; it is not a grmjudge output file")
        return record  # pyright: ignore[reportUnknownVariableType]


def _check_provenance(path: Path, number: int, provenance: object, expected: Mapping[str, object]) -> None:
    if not isinstance(provenance, dict):
        raise ResumeError(f"line {number} of {path} has no provenance; it is not a grmjudge output file")
    for key, wanted in expected.items():
        found = provenance.get(key)  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if key == "adaptive":  # each line records its own stop; the policy is what a run shares
            found = found.get("policy") if isinstance(found, dict) else None  # pyright: ignore[reportUnknownMemberType, reportUnknownVariableType]
        if found != wanted:
            raise ResumeError(
                f"{path} was written with {key}={found!r} (line {number}) but this run has {key}={wanted!r}; "
                "resume with the same settings, or write to a new output"
            )
