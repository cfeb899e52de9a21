"""Reading rows from local files and Hugging Face datasets, and reporting rows that cannot be used.

A bad row is never skipped silently: converters collect a [`RowError`][grmjudge.training.sources.RowError]
per row and raise one [`DataError`][grmjudge.training.sources.DataError] listing all of them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from grmjudge._optional import require
from grmjudge.exceptions import ConfigurationError, InvalidInputError

__all__ = ["PROMPT_KEYS", "DataError", "RowError", "read_checked", "read_rows", "row_error_reason", "row_id"]

PROMPT_KEYS = ("prompt", "query")
"""Columns that hold the query, in order of preference."""

_MAX_LISTED_ERRORS = 20
T = TypeVar("T")


@dataclass(frozen=True)
class RowError:
    """A row that could not be turned into an example: its 0-based position, its id if known, and why."""

    index: int
    message: str
    id: str | None = None

    def __str__(self) -> str:
        name = f" (id {self.id!r})" if self.id is not None else ""
        return f"row {self.index}{name}: {self.message}"


class DataError(InvalidInputError):
    """Some rows could not be converted; ``errors`` lists every one, the message the first few."""

    def __init__(self, source: str, errors: Sequence[RowError]) -> None:
        listed = "\n  ".join(str(e) for e in errors[:_MAX_LISTED_ERRORS])
        more = f"\n  ... and {len(errors) - _MAX_LISTED_ERRORS} more" if len(errors) > _MAX_LISTED_ERRORS else ""
        super().__init__(f"{len(errors)} bad row(s) in {source}:\n  {listed}{more}")
        self.errors = list(errors)


def read_rows(source: str | Path, *, split: str = "train", name: str | None = None) -> Iterator[dict[str, Any]]:
    """Rows of a local ``.jsonl``/``.json``/``.parquet`` file, or of a Hugging Face hub dataset.

    A path that does not exist locally is taken as a hub id (``name`` is its configuration). A JSONL line
    that is not a JSON object raises [`DataError`][grmjudge.training.data.DataError] naming the line.
    """
    path = Path(source)
    if path.exists():
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            yield from _jsonl_rows(path)
        elif suffix == ".json":
            yield from _json_rows(path)
        elif suffix == ".parquet":
            yield from _parquet_rows(path)
        else:
            raise ConfigurationError(f"cannot read {path}: expected a .jsonl, .json or .parquet file")
        return
    yield from _hub_rows(str(source), split=split, name=name)


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(str(path), [RowError(number - 1, f"line {number} is not valid JSON: {exc}")]) from exc
            if not isinstance(row, dict):
                raise DataError(str(path), [RowError(number - 1, f"line {number} is not a JSON object")])
            yield row  # pyright: ignore[reportUnknownMisuse]


def _json_rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, list):
        raise ConfigurationError(f"{path} must hold a JSON list of row objects")
    for index, row in enumerate(data):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if not isinstance(row, dict):
            raise DataError(str(path), [RowError(index, "not a JSON object")])
        yield row  # pyright: ignore[reportUnknownMisuse]


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    parquet: Any = require("pyarrow.parquet", extra="train")
    table: Any = parquet.read_table(path)
    rows: list[dict[str, Any]] = table.to_pylist()
    yield from rows


def _hub_rows(dataset_id: str, *, split: str, name: str | None) -> Iterator[dict[str, Any]]:
    datasets: Any = require("datasets", extra="train")
    try:
        dataset: Any = datasets.load_dataset(dataset_id, name, split=split)
    except Exception as exc:  # datasets raises many unrelated types (connection, not found, offline)
        raise ConfigurationError(
            f"{dataset_id!r} is not a local file and could not be loaded from the Hugging Face hub "
            f"(split {split!r}): {type(exc).__name__}: {exc}"
        ) from exc
    for row in dataset:
        yield dict(row)


def read_checked(source: str | Path, convert: Callable[[Mapping[str, Any]], T]) -> list[T]:
    """``convert`` applied to every row of a file; rows it rejects raise one `DataError` listing all of them."""
    converted: list[T] = []
    errors: list[RowError] = []
    for index, row in enumerate(read_rows(source)):
        try:
            converted.append(convert(row))
        except (InvalidInputError, ValidationError, KeyError, TypeError, ValueError) as exc:
            errors.append(RowError(index, row_error_reason(exc), row_id(row)))
    if errors:
        raise DataError(str(source), errors)
    return converted


def row_id(row: Mapping[str, Any]) -> str | None:
    """The row's ``id`` column as a string, if it has one."""
    value = row.get("id")
    return None if value is None else str(value)


def row_error_reason(exc: Exception) -> str:
    """A one-line reason for a row that failed to convert (a missing column, a validation message)."""
    if isinstance(exc, KeyError):
        return f"missing column {exc.args[0]!r}"
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in exc.errors())
    return str(exc)
