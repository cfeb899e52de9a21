"""``--resume``: keep the complete lines of an interrupted output, and refuse when resuming would mix runs."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from grmjudge.cli.inputs import decode_object, item_id_of
from grmjudge.journal import IdIndex, Journal, JournalError, check_provenance

_SHOWN = 5
_ADVICE = "resume with the same settings, or write to a new output"


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
    file). A partial last line is only measured; [`Journal.cut_partial_line`][grmjudge.journal.Journal.cut_partial_line]
    removes it once every check has passed. Every refusal is a [`JournalError`][grmjudge.journal.JournalError].
    """
    in_input = input_ids(input_lines)
    journal = Journal(path, kind="grmjudge output file")
    done = IdIndex()
    missing: list[str] = []
    lines = 0
    for lines, record in journal.records():
        item_id = record.get("id")
        if not isinstance(item_id, str):
            raise JournalError(f"line {lines} of {path} has no string 'id'; it is not a grmjudge output file")
        if item_id in done:
            raise JournalError(f"id {item_id!r} appears twice in {path} (line {lines}); the file was edited or merged")
        check_provenance(path, lines, _provenance(path, lines, record.get("provenance")), expected, advice=_ADVICE)
        if item_id not in in_input:
            missing.append(item_id)
        done.add(item_id, lines)
    if missing:
        raise JournalError(_missing_message(path, missing))
    return ExistingOutput(ids=done, lines=lines, dropped_bytes=journal.partial_bytes)


def input_ids(lines: Iterator[tuple[int, bytes | None]]) -> IdIndex:
    """The ids the input's lines stand for (lines that are JSON objects: given ids, else line numbers)."""
    ids = IdIndex()
    for number, raw in lines:
        value = decode_object(number, raw) if raw is not None else None
        if isinstance(value, dict):
            ids.add(item_id_of(number, value), number)
    return ids


def _provenance(path: Path, number: int, provenance: object) -> dict[str, object]:
    """A line's provenance as compared: each line records its own adaptive stop, a run shares only the policy."""
    if not isinstance(provenance, dict):
        raise JournalError(f"line {number} of {path} has no provenance; it is not a grmjudge output file")
    found: dict[str, object] = dict(provenance)  # pyright: ignore[reportUnknownArgumentType]
    adaptive = found.get("adaptive")
    found["adaptive"] = adaptive.get("policy") if isinstance(adaptive, dict) else None  # pyright: ignore[reportUnknownMemberType]
    return found


def _missing_message(path: Path, missing: list[str]) -> str:
    shown = ", ".join(repr(i) for i in missing[:_SHOWN])
    more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
    return (
        f"{len(missing)} id(s) in {path} are not in the input ({shown}{more}): "
        "the output was made from another input file; write to a new output instead"
    )
