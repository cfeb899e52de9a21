"""Typed access to the fields of a raw benchmark row; anything that does not fit is a DataError naming the row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from grmjudge.exceptions import InvalidInputError
from grmjudge.prompts import normalise_query
from grmjudge.rows import DataError, Row
from grmjudge.types import Message


def field(row: Row, key: str) -> Any:
    """The raw value of ``key``; a missing or null field is an error."""
    value = row.fields.get(key)
    if value is None:
        raise DataError(f"{row.where}: missing field {key!r} (fields present: {', '.join(sorted(row.fields))})")
    return value


def text(row: Row, key: str) -> str:
    """A string field (may be empty: an empty response is still a response to judge)."""
    value = field(row, key)
    if not isinstance(value, str):
        raise DataError(f"{row.where}: field {key!r} must be a string, got {type(value).__name__}")
    return value


def texts(row: Row, key: str, *, at_least: int = 1) -> tuple[str, ...]:
    """A list of strings with at least ``at_least`` entries."""
    value = field(row, key)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise DataError(f"{row.where}: field {key!r} must be a list of strings, got {type(value).__name__}")
    items = cast(Sequence[object], value)
    for i, entry in enumerate(items):
        if not isinstance(entry, str):
            raise DataError(f"{row.where}: {key}[{i}] must be a string, got {type(entry).__name__}")
    if len(items) < at_least:
        raise DataError(f"{row.where}: field {key!r} needs at least {at_least} entries, got {len(items)}")
    return tuple(cast(Sequence[str], items))


def integer(row: Row, key: str) -> int:
    """An integer field (``true``/``false`` are not integers here)."""
    value = field(row, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise DataError(f"{row.where}: field {key!r} must be an integer, got {value!r}")
    return value


def ident(row: Row, key: str) -> str:
    """An id field (string or integer), as a string."""
    value = field(row, key)
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise DataError(f"{row.where}: field {key!r} must be a string or an integer, got {value!r}")
    return str(value)


def flags(row: Row, key: str) -> tuple[bool, ...]:
    """A list of booleans (0/1 integers are accepted)."""
    value = field(row, key)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise DataError(f"{row.where}: field {key!r} must be a list of booleans")
    out: list[bool] = []
    for i, entry in enumerate(cast(Sequence[object], value)):
        if isinstance(entry, bool) or entry in (0, 1):
            out.append(bool(entry))
        else:
            raise DataError(f"{row.where}: {key}[{i}] must be a boolean, got {entry!r}")
    return tuple(out)


def index_pairs(row: Row, key: str) -> tuple[tuple[int, int], ...]:
    """A list of two-integer lists, e.g. PPE's ``sampled_conflict_pairs``."""
    value = field(row, key)
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise DataError(f"{row.where}: field {key!r} must be a list of [i, j] pairs")
    pairs: list[tuple[int, int]] = []
    for n, entry in enumerate(cast(Sequence[object], value)):
        if isinstance(entry, str) or not isinstance(entry, Sequence) or len(cast(Sequence[object], entry)) != 2:
            raise DataError(f"{row.where}: {key}[{n}] must be a pair [i, j], got {entry!r}")
        i, j = cast(Sequence[object], entry)
        if isinstance(i, bool) or isinstance(j, bool) or not isinstance(i, int) or not isinstance(j, int):
            raise DataError(f"{row.where}: {key}[{n}] must hold two integers, got {entry!r}")
        pairs.append((i, j))
    return tuple(pairs)


def answer(row: Row, key: str, value: object) -> str:
    """The ``answer`` of an RMB ``{llm_name, answer}`` object."""
    if not isinstance(value, dict) or not isinstance(cast(dict[str, Any], value).get("answer"), str):
        raise DataError(f"{row.where}: {key} must be an object with a string 'answer'")
    return cast(str, cast(dict[str, Any], value)["answer"])


def query(row: Row, key: str) -> tuple[Message, ...]:
    """A prompt: a string (one user turn) or a list of ``{role, content, ...}`` turns ending with the user's."""
    value = field(row, key)
    if isinstance(value, str):
        raw: str | list[Message] = value
    elif isinstance(value, Sequence):
        raw = [_message(row, key, i, turn) for i, turn in enumerate(cast(Sequence[object], value))]
    else:
        raise DataError(f"{row.where}: field {key!r} must be a string or a list of messages")
    try:
        return normalise_query(raw)
    except InvalidInputError as exc:
        raise DataError(f"{row.where}: field {key!r}: {exc}") from exc


def _message(row: Row, key: str, i: int, turn: object) -> Message:
    fields = cast(dict[str, Any], turn) if isinstance(turn, dict) else {}
    role, content = fields.get("role"), fields.get("content")
    if role not in ("system", "user", "assistant") or not isinstance(content, str):
        raise DataError(f"{row.where}: {key}[{i}] must be a message with a role (system/user/assistant) and content")
    return Message(role=role, content=content)
