"""Rows of data from local files (JSON, JSON Lines, Parquet) or Hugging Face Hub datasets, with provenance.

Benchmark loaders and training data read through here. Every row travels with a ``where`` string ("rb.jsonl line
7", "ppe.parquet row 3", "hub allenai/reward-bench [filtered] row 12"), so anything wrong with a file or a row is
one [`DataError`][grmjudge.rows.DataError] that names the file and the line, row or field. ``pyarrow`` and
``datasets`` load only when a parquet file or a hub dataset is read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, cast

from pydantic import BaseModel, ConfigDict, ValidationError

from grmjudge._optional import require
from grmjudge.exceptions import ConfigurationError, InvalidInputError

SUFFIXES = (".json", ".jsonl", ".parquet")
_MAX_LISTED_ERRORS = 20
_LOCAL_HINT = "Download the files and pass their local path instead."
T = TypeVar("T")


@dataclass(frozen=True)
class RowError:
    """A row that could not be used: its 0-based position, its id if known, and why."""

    index: int
    message: str
    id: str | None = None

    def __str__(self) -> str:
        name = f" (id {self.id!r})" if self.id is not None else ""
        return f"row {self.index}{name}: {self.message}"


class DataError(InvalidInputError):
    """A data file or row that cannot be used; the message names the file and the line, row or field.

    ``errors`` lists every bad row when a whole file was checked
    ([`DataError.listing`][grmjudge.rows.DataError.listing]).
    """

    def __init__(self, message: str, errors: Sequence[RowError] = ()) -> None:
        super().__init__(message)
        self.errors = list(errors)

    @classmethod
    def listing(cls, source: str, errors: Sequence[RowError]) -> DataError:
        """One error for every bad row of ``source``: the message lists the first few."""
        listed = "\n  ".join(str(e) for e in errors[:_MAX_LISTED_ERRORS])
        more = f"\n  ... and {len(errors) - _MAX_LISTED_ERRORS} more" if len(errors) > _MAX_LISTED_ERRORS else ""
        return cls(f"{len(errors)} bad row(s) in {source}:\n  {listed}{more}", errors)


class SourceFile(BaseModel):
    """A local file that was read, with its content hash."""

    model_config = ConfigDict(frozen=True)

    path: str
    sha256: str


class HubSource(BaseModel):
    """A Hugging Face dataset that was read: id, config, split, the revision asked for and the rows' hash."""

    model_config = ConfigDict(frozen=True)

    id: str
    config: str | None
    split: str
    revision: str | None
    rows_sha256: str


@dataclass(frozen=True)
class Row:
    """One raw row and where it came from."""

    where: str
    fields: Mapping[str, Any]
    file: str = ""
    """The file's full path ("" for hub rows), for data whose layout carries meaning (RMB)."""


@dataclass
class RowSet:
    """Rows read from one source, and how to cite that source."""

    rows: list[Row]
    files: list[SourceFile] = field(default_factory=list[SourceFile])
    hub: list[HubSource] = field(default_factory=list[HubSource])


def read_rows(
    source: str | Path, *, split: str = "train", name: str | None = None, extra: str = "train"
) -> Iterator[dict[str, Any]]:
    """The fields of every row of a local file, or, for a path that does not exist, of a hub dataset's split.

    ``name`` is the hub dataset's configuration; ``extra`` names the install extra that brings ``datasets``.
    """
    path = Path(source)
    if path.exists():
        rows = read_file(path, extra=extra)
    else:
        rows = hub_rows(str(source), split, config=name, extra=extra, hint=_LOCAL_HINT).rows
    return (dict(row.fields) for row in rows)


def read_file(path: Path, *, extra: str = "eval") -> list[Row]:
    """The rows of one file: a JSON array of objects (or JSON Lines in a ``.json`` file), JSON Lines, or parquet."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_rows(path, extra)
    if suffix not in (".json", ".jsonl"):
        raise ConfigurationError(f"cannot read {path}: unsupported file type {suffix!r}; use .jsonl, .json or .parquet")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path.name}: not UTF-8 text (byte {exc.start + 1})") from exc
    if suffix == ".json" and text.lstrip().startswith("["):
        return _json_array_rows(path, text)
    return _json_lines_rows(path, text)


def data_files(path: Path) -> list[Path]:
    """``path`` itself, or every .json/.jsonl/.parquet file under it (recursively, sorted)."""
    if not path.exists():
        raise ConfigurationError(f"--data {path} does not exist")
    if path.is_file():
        return [path]
    found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    if not found:
        raise ConfigurationError(f"no .json, .jsonl or .parquet files under {path}")
    return found


def read_files(paths: list[Path]) -> RowSet:
    """Every row of every file, in file order, with the files' hashes."""
    rows: list[Row] = []
    for path in paths:
        rows.extend(read_file(path))
    return RowSet(rows=rows, files=[SourceFile(path=str(p), sha256=file_sha256(p)) for p in paths])


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hub_rows(
    dataset_id: str,
    split: str,
    *,
    config: str | None = None,
    revision: str | None = None,
    extra: str = "eval",
    hint: str = "Download the files and pass them with --data PATH.",
) -> RowSet:
    """Rows of a Hub dataset split through ``datasets.load_dataset``, hashed so the exact rows can be cited.

    ``hint`` ends the error raised when the dataset cannot be loaded: what to do instead.
    """
    datasets = require("datasets", extra=extra)
    try:
        loaded = datasets.load_dataset(dataset_id, config, split=split, revision=revision)
    except Exception as exc:  # datasets raises many unrelated types: offline, missing split, auth, ...
        raise ConfigurationError(
            f"could not load {dataset_id!r} (split {split!r}): it is not a local file and could not be loaded from "
            f"the Hugging Face hub: {type(exc).__name__}: {exc}. {hint}"
        ) from exc
    where = f"hub {dataset_id}" + (f"/{config}" if config else "") + f" [{split}]"
    rows = [Row(where=f"{where} row {i + 1}", fields=cast(dict[str, Any], r)) for i, r in enumerate(loaded)]
    source = HubSource(id=dataset_id, config=config, split=split, revision=revision, rows_sha256=rows_sha256(rows))
    return RowSet(rows=rows, hub=[source])


def hub_splits(dataset_id: str, *, revision: str | None = None) -> list[str]:
    """The split names of a Hub dataset (for sets whose splits are the subsets, like the RewardBench prior sets)."""
    datasets = require("datasets", extra="eval")
    try:
        return list(datasets.get_dataset_split_names(dataset_id, revision=revision))
    except Exception as exc:
        raise ConfigurationError(f"could not list the splits of {dataset_id!r} on the Hugging Face Hub: {exc}") from exc


def rows_sha256(rows: list[Row]) -> str:
    """A hash of the rows' content (canonical JSON), independent of how they were stored."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row.fields, sort_keys=True, default=str).encode())
        digest.update(b"\n")
    return digest.hexdigest()


def read_checked(source: str | Path, convert: Callable[[Mapping[str, Any]], T]) -> list[T]:
    """``convert`` applied to every row of a file; the rows it rejects raise one `DataError` listing all of them."""
    converted: list[T] = []
    errors: list[RowError] = []
    for index, row in enumerate(read_rows(source)):
        try:
            converted.append(convert(row))
        except (InvalidInputError, ValidationError, KeyError, TypeError, ValueError) as exc:
            errors.append(RowError(index, row_error_reason(exc), row_id(row)))
    if errors:
        raise DataError.listing(str(source), errors)
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


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    """Write rows as JSONL (replacing the file, creating its folder); returns the count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def _json_array_rows(path: Path, text: str) -> list[Row]:
    try:
        parsed: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path.name}: not valid JSON ({exc})") from exc
    if not isinstance(parsed, list):
        raise DataError(f"{path.name}: expected a JSON array of row objects")
    return [_row(f"{path.name} row {i + 1}", value, path) for i, value in enumerate(cast(list[object], parsed))]


def _json_lines_rows(path: Path, text: str) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 may sit inside a string
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            value: object = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc})") from exc
        rows.append(_row(where, value, path))
    return rows


def _parquet_rows(path: Path, extra: str) -> list[Row]:
    parquet = require("pyarrow.parquet", extra=extra)
    try:
        table = parquet.read_table(path)
    except Exception as exc:  # pyarrow's ArrowInvalid and OSError subclasses
        raise DataError(f"{path.name}: not a readable parquet file ({exc})") from exc
    records = cast(list[object], table.to_pylist())
    return [_row(f"{path.name} row {i + 1}", value, path) for i, value in enumerate(records)]


def _row(where: str, value: object, path: Path) -> Row:
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected an object, got {_json_type(value)}")
    return Row(where=where, fields=cast(dict[str, Any], value), file=str(path))


def _json_type(value: object) -> str:
    names: dict[type, str] = {list: "list", str: "string", int: "number", float: "number", bool: "boolean"}
    return "null" if value is None else names.get(type(value), type(value).__name__)
