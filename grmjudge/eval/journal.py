"""The per-call JSONL of a run (``DIR/items.jsonl``): written as results arrive, read back to resume.

The file is a [`Journal`][grmjudge.journal.Journal]. Each line is one judged call of one pass: ``{"pass",
"fingerprint", "call_id", "item_id", "result"}`` (the full [`ScoreResult`][grmjudge.results.ScoreResult], judgement
texts optional) or ``{..., "error": {type, message}}``. A rerun skips every call that already has a finished line
for the same pass and fingerprint. A call whose samples all failed at the backend (an outage), or that raised a
backend error, is not finished: the rerun judges it again and its newest line wins. Lines of the same pass under
another configuration (another judge, data, k or seed) make the run refuse to start rather than mix results
([`ProvenanceMismatch`][grmjudge.journal.ProvenanceMismatch]); lines of a pass this run does not make are left
alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from grmjudge.eval.scaling import CallRecord
from grmjudge.exceptions import BackendError
from grmjudge.journal import Journal, JournalError, check_provenance
from grmjudge.results import BatchResult, ScoreResult

TEXT_FIELDS = {"text", "principles", "critique"}


def fingerprint(parts: Mapping[str, Any]) -> str:
    """A short hash of everything that determines a pass's results."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _backend_error_names() -> frozenset[str]:
    names: set[str] = set()
    pending: list[type] = [BackendError]
    while pending:
        cls = pending.pop()
        names.add(cls.__name__)
        pending.extend(cls.__subclasses__())
    return frozenset(names)


BACKEND_ERRORS = _backend_error_names()
_ADVICE = "resume with the same judge, data, --k and seed, or use a new --out"


def read_journal(path: Path, expected: Mapping[str, str]) -> dict[str, dict[str, CallRecord]]:
    """Finished calls by pass name, then call id; ``expected`` maps pass name -> fingerprint of this run.

    Once every line has been checked, a last line cut off by a killed run is removed from the file, to be redone.
    """
    done: dict[str, dict[str, CallRecord]] = {name: {} for name in expected}
    journal = Journal(path, kind="grmjudge eval journal")
    for number, line in journal.records():
        pass_name = str(line.get("pass"))
        if pass_name not in expected:
            continue  # a pass this run does not make (e.g. the sampled pass of an earlier --k 1,8): kept, unused
        found = {"fingerprint": line.get("fingerprint")}
        check_provenance(path, number, found, {"fingerprint": expected[pass_name]}, advice=_ADVICE)
        record = _record(path, number, line)
        if record is not None:
            done[pass_name][record.call_id] = record
        else:
            done[pass_name].pop(str(line.get("call_id")), None)
    journal.cut_partial_line()
    return done


def journal_record(pass_name: str, fp: str, item_id: str, batch: BatchResult, *, texts: bool) -> dict[str, Any]:
    """The journal line of a judged call."""
    line: dict[str, Any] = {"pass": pass_name, "fingerprint": fp, "call_id": batch.item_id, "item_id": item_id}
    if batch.error is not None:
        line["error"] = batch.error.model_dump()
    elif batch.result is not None:
        exclude = None if texts else {"samples": {"__all__": TEXT_FIELDS}}
        line["result"] = batch.result.model_dump(mode="json", exclude=exclude)
    return line


def record_of(batch: BatchResult) -> CallRecord | None:
    """The compact record of a judged call, or ``None`` when it should be judged again on a rerun."""
    if batch.error is not None:
        if batch.error.type in BACKEND_ERRORS:
            return None
        return CallRecord(batch.item_id, None, error=batch.error.type)
    result = batch.result
    if result is None or _outage(result):
        return None
    return CallRecord.from_result(batch.item_id, result)


def _outage(result: ScoreResult) -> bool:
    return bool(result.samples) and all(s.error is not None and s.error.kind == "backend" for s in result.samples)


def _record(path: Path, number: int, line: dict[str, Any]) -> CallRecord | None:
    try:
        batch = BatchResult.model_validate(
            {"index": 0, "item_id": line["call_id"], "result": line.get("result"), "error": line.get("error")}
        )
    except (KeyError, ValidationError) as exc:
        raise JournalError(f"line {number} of {path} is not a grmjudge eval record: {exc}") from exc
    return record_of(batch)
