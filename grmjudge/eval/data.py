"""Read benchmark rows from local files (JSON, JSON Lines, parquet) or the Hugging Face Hub, with provenance.

Every row travels with a ``where`` string ("rb.jsonl line 7", "ppe.parquet row 3", "hub allenai/reward-bench
[filtered] row 12"), so a row that does not fit its benchmark's schema becomes a
[`DataError`][grmjudge.eval.data.DataError] that names the file and the row. ``datasets`` and ``pyarrow`` load
only when a hub dataset or a parquet file is read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel, ConfigDict

from grmjudge._optional import require
from grmjudge.exceptions import ConfigurationError, InvalidInputError

SUFFIXES = (".json", ".jsonl", ".parquet")


class DataError(InvalidInputError):
    """A benchmark file or row that does not fit the benchmark's schema; the message names the file and row."""


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
    """The file's full path ("" for hub rows), for benchmarks whose layout carries meaning (RMB)."""


@dataclass
class RowSet:
    """Rows read from one source, and how to cite that source."""

    rows: list[Row]
    files: list[SourceFile] = field(default_factory=list[SourceFile])
    hub: list[HubSource] = field(default_factory=list[HubSource])


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


def read_file(path: Path) -> list[Row]:
    """The rows of one file: a JSON array of objects, JSON Lines, or parquet."""
    if path.suffix == ".parquet":
        return _parquet_rows(path)
    if path.suffix not in (".json", ".jsonl"):
        raise ConfigurationError(f"{path}: unsupported file type {path.suffix!r}; use .json, .jsonl or .parquet")
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json" and text.lstrip().startswith("["):
        return _json_array_rows(path, text)
    return _json_lines_rows(path, text)


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def hub_rows(dataset_id: str, split: str, *, config: str | None = None, revision: str | None = None) -> RowSet:
    """Rows of a Hub dataset split through ``datasets.load_dataset``, hashed so the exact rows can be cited."""
    datasets = require("datasets", extra="eval")
    try:
        loaded = datasets.load_dataset(dataset_id, config, split=split, revision=revision)
    except Exception as exc:  # datasets raises many unrelated types: offline, missing split, auth, ...
        raise ConfigurationError(
            f"could not load {dataset_id!r} (split {split!r}) from the Hugging Face Hub: {exc}. "
            "Download the files and pass them with --data PATH."
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


def _json_array_rows(path: Path, text: str) -> list[Row]:
    try:
        parsed: object = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(parsed, list):
        raise DataError(f"{path}: expected a JSON array of row objects")
    return [_row(f"{path.name} row {i + 1}", value, path) for i, value in enumerate(cast(list[object], parsed))]


def _json_lines_rows(path: Path, text: str) -> list[Row]:
    rows: list[Row] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            value: object = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(f"{where}: not valid JSON ({exc})") from exc
        rows.append(_row(where, value, path))
    return rows


def _parquet_rows(path: Path) -> list[Row]:
    parquet = require("pyarrow.parquet", extra="eval")
    try:
        table = parquet.read_table(path)
    except Exception as exc:  # pyarrow's ArrowInvalid and OSError subclasses
        raise DataError(f"{path}: not a readable parquet file ({exc})") from exc
    records = cast(list[object], table.to_pylist())
    return [_row(f"{path.name} row {i + 1}", value, path) for i, value in enumerate(records)]


def _row(where: str, value: object, path: Path) -> Row:
    if not isinstance(value, dict):
        raise DataError(f"{where}: expected an object, got {type(value).__name__}")
    return Row(where=where, fields=cast(dict[str, Any], value), file=str(path))
