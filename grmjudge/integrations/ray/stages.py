"""The Ray Data stages of a judging pipeline: callable classes that each actor builds once.

[`JudgeStage`][grmjudge.integrations.ray.stages.JudgeStage] holds a judge and turns a batch of input rows into
output rows; each batch is one ``score_many`` on grmjudge's own event loop (no loop per batch). With a separate
meta stage it hands on the unfiltered result, and [`MetaStage`][grmjudge.integrations.ray.stages.MetaStage]
(an actor pool of its own, on its own resources) rates the valid samples, keeps the top ``k_meta`` and votes
with the judge's own [`apply_meta`][grmjudge.judge.apply_meta]. Items are seeded by their id, as the local
command seeds them, so a result does not depend on batch boundaries or on which actor ran it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from grmjudge._optional import require
from grmjudge._redact import Redactor
from grmjudge._runtime import run_blocking
from grmjudge.adaptive import AdaptivePolicy
from grmjudge.exceptions import GRMJudgeError
from grmjudge.integrations.ray.rows import OUTPUT_COLUMNS, Item, error_row, output_row, read_item, result_row
from grmjudge.integrations.ray.spec import JudgeSpec
from grmjudge.judge import apply_meta
from grmjudge.results import BatchResult, ItemError, ScoreResult
from grmjudge.score_lines import LineError, backend_failed, output_record
from grmjudge.settings import JudgeSettings
from grmjudge.types import Message
from grmjudge.voting import default_k_meta

PENDING = "pending_meta"
"""The ``kind`` of a row whose result waits for the meta stage; its ``line`` holds the unfiltered result."""
META_INPUT = "meta_input"
"""The column that carries a pending row's query, responses and label to the meta stage."""

_TEXT_COLUMNS = ("id", "kind", "line", "failures")


def _schema(*, pending: bool) -> Any:
    """The Arrow schema of output rows (with the meta stage's input column while ``pending``)."""
    pa = require("pyarrow", extra="ray")
    names = (*OUTPUT_COLUMNS, META_INPUT) if pending else OUTPUT_COLUMNS
    return pa.schema([(name, pa.string() if name in (*_TEXT_COLUMNS, META_INPUT) else pa.int64()) for name in names])


class CredentialsRefused(RuntimeError):
    """The backend refused the credentials: every item would fail, so the job stops instead."""


class JudgeStage:
    """Judges each batch of input rows with a judge built once per actor."""

    def __init__(
        self,
        spec: JudgeSpec,
        *,
        k: int,
        meta: bool,
        defer_meta: bool,
        adaptive: AdaptivePolicy | None,
        texts: bool,
        concurrency: int,
        max_chars: int,
        skip_ids: frozenset[str] = frozenset(),
        settings: JudgeSettings | None = None,
        as_results: bool = False,
    ) -> None:
        self._judge = spec.build(meta=meta and not defer_meta)
        self._settings = settings
        self._as_results = as_results
        self._k, self._meta, self._defer = k, meta, defer_meta
        self._adaptive: bool | AdaptivePolicy = adaptive if adaptive is not None else False
        self._texts = texts
        self._concurrency = concurrency
        self._max_chars = max_chars
        self._skip = skip_ids
        self._redact = Redactor.from_environment()

    def __call__(self, batch: Any) -> Any:
        """Output rows for a batch of input rows, one per row not skipped, in the batch's order."""
        entries = [read_item(row, max_chars=self._max_chars) for row in batch.to_pylist()]
        read = [entry for entry in entries if entry.id not in self._skip]
        items = [entry for entry in read if isinstance(entry, Item)]
        judged = iter(self._score(items) if items else [])
        rows = [self._unread(entry) if isinstance(entry, LineError) else next(judged) for entry in read]
        return _table(rows, pending=self._defer)

    def _score(self, items: list[Item]) -> list[dict[str, Any]]:
        judge_meta = self._meta and not self._defer

        async def score() -> list[BatchResult]:
            return await self._judge.score_many(
                [entry.item for entry in items],
                self._k,
                judge_meta,
                adaptive=self._adaptive,
                concurrency=self._concurrency,
                settings=self._settings,
            )

        results = run_blocking(score)
        return [self._settle(entry, batch) for entry, batch in zip(items, results, strict=True)]

    def _unread(self, error: LineError) -> dict[str, Any]:
        """The row of an input row that is no item."""
        if not self._as_results:
            return error_row(error, self._redact)
        failure = ItemError(type="InvalidInputError", message=f"{error.type}: {error.message}")
        return result_row(BatchResult(index=0, item_id=error.id or "", error=failure), None, self._redact)

    def _settle(self, entry: Item, batch: BatchResult) -> dict[str, Any]:
        """Where ``grmjudge score`` would put the item: its output, or its errors file (from which resume retries)."""
        if self._as_results:
            return result_row(batch, entry.label, self._redact)
        if batch.error is not None:
            return error_row(_item_failed(entry.id, batch.error), self._redact)
        result = batch.result
        assert result is not None  # a BatchResult holds a result or an error
        failed = [s.error for s in result.samples if s.error is not None and s.error.kind == "backend"]
        refused = [e for e in failed if e.reason == "AuthenticationError"]
        if refused:
            raise CredentialsRefused(self._redact(f"the backend refused the credentials: {refused[0].message}"))
        if result.no_verdict is not None and failed:
            return error_row(backend_failed(0, entry.id, failed), self._redact)
        if self._defer:
            return _pending(entry, result, self._redact)
        record = output_record(result, entry.id, entry.label, texts=self._texts)
        return output_row(entry.id, record, result, entry.label, self._redact)


class MetaStage:
    """Applies the meta RM and the vote to the rows the judge stage left pending; other rows pass through."""

    def __init__(self, spec: JudgeSpec, *, k: int, texts: bool, settings: JudgeSettings | None = None) -> None:
        self._meta, built = spec.build_meta()
        self._k_meta = (settings or built).k_meta or default_k_meta(k)
        self._texts = texts
        self._redact = Redactor.from_environment()

    def __call__(self, batch: Any) -> Any:
        """Output rows: pending rows judged by the meta RM, the others unchanged."""
        rows: list[dict[str, Any]] = batch.to_pylist()
        pending = [row for row in rows if row["kind"] == PENDING]
        finished = iter(run_blocking(lambda: self._finish_all(pending)) if pending else [])
        out = [next(finished) if row["kind"] == PENDING else row for row in rows]
        return _table(out, pending=False)

    async def _finish_all(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [await self._finish(row) for row in rows]  # the meta RM batches each item's samples itself

    async def _finish(self, row: dict[str, Any]) -> dict[str, Any]:
        result = ScoreResult.model_validate_json(row["line"])
        given: dict[str, Any] = json.loads(row[META_INPUT])
        query = tuple(Message.model_validate(m) for m in given["query"])
        responses = tuple[str, ...](given["responses"])
        label: int | None = given["label"]
        try:
            final = await apply_meta(result, self._meta, query, responses, self._k_meta)
        except (GRMJudgeError, ValidationError) as exc:  # what the judge's batch loop makes an item's error
            failure = ItemError(type=type(exc).__name__, message=str(exc))
            return error_row(_item_failed(row["id"], failure), self._redact)
        record = output_record(final, row["id"], label, texts=self._texts)
        return output_row(row["id"], record, final, label, self._redact)


def _item_failed(item_id: str, error: ItemError) -> LineError:
    """The errors-file problem of an item whose judge call raised, as ``grmjudge score`` reports it."""
    message = f"{error.type}: {error.message}"
    return LineError(0, "item_failed", message, id=item_id, details=(error.model_dump(),))


def _pending(entry: Item, result: ScoreResult, redact: Callable[[str], str]) -> dict[str, Any]:
    given = {
        "query": [m.model_dump() for m in entry.item.query] if isinstance(entry.item.query, tuple) else [],
        "responses": list(entry.item.responses),
        "label": entry.label,
    }
    row = output_row(entry.id, {}, result, entry.label, redact)
    return {**row, "kind": PENDING, "line": result.model_dump_json(), META_INPUT: json.dumps(given)}


def _table(rows: list[dict[str, Any]], *, pending: bool) -> Any:
    pa = require("pyarrow", extra="ray")
    return pa.Table.from_pylist(rows, schema=_schema(pending=pending))
