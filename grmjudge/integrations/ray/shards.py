"""Judged rows to files: one shard per batch, written whole, named by its ids, so a retried batch cannot duplicate.

Each batch of [`judge_dataset`][grmjudge.integrations.ray.judge_dataset]'s rows becomes ``part-<hash>.jsonl``
(the output lines) or ``part-<hash>.parquet`` (the rows' columns) under the output folder, and
``errors/part-<hash>.jsonl`` (the error lines). ``<hash>`` is a SHA-256 of the batch's ids: a batch Ray runs
again after a lost worker writes the same names, replacing what it wrote before, never a second copy. Each file
is written under a temporary name and moved into place, so a killed job leaves only whole shards (and
temporary files, removed by [`clear_partial`][grmjudge.integrations.ray.shards.clear_partial]).
Paths are local or any filesystem pyarrow knows (``s3://``, ``gs://``, ...).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal

from grmjudge._optional import require
from grmjudge.integrations.ray.rows import TALLY_COLUMNS

ShardFormat = Literal["jsonl", "parquet"]
ERRORS_DIR = "errors"
TMP_SUFFIX = ".tmp"
SUMMARY_COLUMNS = ("shard", "outputs", "errors", "error_types", "failures", *TALLY_COLUMNS)
"""What writing a batch reports: its shard, its row counts, error types and sample failures, and summed costs."""


def filesystem(uri: str) -> tuple[Any, str]:
    """The pyarrow filesystem of ``uri`` (a local path or an object-store URI) and the path on it."""
    fs = require("pyarrow.fs", extra="ray")
    return fs.FileSystem.from_uri(uri)


def write_shard(batch: Any, *, out: str, format: ShardFormat) -> Any:
    """Write one batch of judged rows (a pyarrow Table) as its shards; a one-row Table summing what it wrote."""
    pa = require("pyarrow", extra="ray")
    fs, root = filesystem(out)
    rows: list[dict[str, Any]] = batch.to_pylist()
    outputs = [row for row in rows if row["kind"] == "output"]
    errors = [row for row in rows if row["kind"] != "output"]
    name = "part-" + hashlib.sha256("\x1f".join(sorted(row["id"] for row in rows)).encode()).hexdigest()[:24]
    if outputs:
        if format == "parquet":
            parquet = require("pyarrow.parquet", extra="ray")
            table = pa.Table.from_pylist(outputs, schema=batch.schema).drop_columns(["kind"])
            buffer = pa.BufferOutputStream()
            parquet.write_table(table, buffer)
            _atomic(fs, f"{root}/{name}.parquet", buffer.getvalue().to_pybytes())
        else:
            _write_lines(fs, f"{root}/{name}.jsonl", [row["line"] for row in outputs])
    if errors:
        _write_lines(fs, f"{root}/{ERRORS_DIR}/{name}.jsonl", [row["line"] for row in errors])
    failures: Counter[str] = Counter()
    for row in outputs:
        failures.update(json.loads(row["failures"]))
    summary: dict[str, Any] = {
        "shard": name,
        "outputs": len(outputs),
        "errors": len(errors),
        "error_types": json.dumps(Counter(json.loads(row["line"])["type"] for row in errors)),
        "failures": json.dumps(failures),
    }
    summary.update({column: sum(row[column] for row in rows) for column in TALLY_COLUMNS})
    return pa.Table.from_pylist([summary])


def _write_lines(fs: Any, path: str, lines: list[str]) -> None:
    _atomic(fs, path, "".join(line + "\n" for line in lines).encode("utf-8"))


def _atomic(fs: Any, path: str, data: bytes) -> None:
    """Write ``path`` through a temporary file moved into place when complete."""
    folder = path.rsplit("/", 1)[0]
    fs.create_dir(folder, recursive=True)
    temporary = f"{path}.{uuid.uuid4().hex}{TMP_SUFFIX}"
    with fs.open_output_stream(temporary) as stream:
        stream.write(data)
    fs.move(temporary, path)


def shard_files(out: str, *, errors: bool = False) -> list[str]:
    """The finished shard files under ``out`` (or its errors folder), sorted; none if the folder does not exist."""
    fs_module = require("pyarrow.fs", extra="ray")
    fs, root = filesystem(out)
    folder = f"{root}/{ERRORS_DIR}" if errors else root
    infos = fs.get_file_info(fs_module.FileSelector(folder, allow_not_found=True))
    names = [info.path for info in infos if info.type == fs_module.FileType.File]
    return sorted(p for p in names if p.rsplit("/", 1)[-1].startswith("part-") and not p.endswith(TMP_SUFFIX))


def clear_partial(out: str) -> int:
    """Remove the temporary files a killed job left under ``out`` and its errors folder; how many there were."""
    fs_module = require("pyarrow.fs", extra="ray")
    fs, root = filesystem(out)
    removed = 0
    for folder in (root, f"{root}/{ERRORS_DIR}"):
        for info in fs.get_file_info(fs_module.FileSelector(folder, allow_not_found=True)):
            if info.type == fs_module.FileType.File and info.path.endswith(TMP_SUFFIX):
                fs.delete_file(info.path)
                removed += 1
    return removed


def clear_errors(out: str) -> None:
    """Remove the error shards of an earlier run: each run writes those of the items still failing."""
    fs, root = filesystem(out)
    fs.delete_dir_contents(f"{root}/{ERRORS_DIR}", missing_dir_ok=True)


def done_ids(out: str) -> Iterator[str]:
    """The ids in the output shards under ``out``."""
    fs, _ = filesystem(out)
    for path in shard_files(out):
        if path.endswith(".parquet"):
            parquet = require("pyarrow.parquet", extra="ray")
            yield from parquet.read_table(path, columns=["id"], filesystem=fs).column("id").to_pylist()
            continue
        with fs.open_input_stream(path) as stream:
            data: bytes = stream.read()
        for line in data.splitlines():
            if line.strip():
                yield json.loads(line)["id"]
