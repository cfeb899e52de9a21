"""The shared run journal: partial last lines, provenance that must match, done ids, one whole line per write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grmjudge.exceptions import ConfigurationError
from grmjudge.journal import (
    FileProblem,
    IdIndex,
    Journal,
    JournalError,
    JournalWriter,
    ProvenanceMismatch,
    check_provenance,
)


def _write(path: Path, *records: dict[str, object]) -> None:
    with Journal(path).writer() as out:
        for record in records:
            out.append(record)


def test_a_partial_last_line_is_measured_then_cut_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "run" / "records.jsonl"  # the writer creates the folder
    _write(path, {"id": "a"}, {"id": "b"})
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"id": "c", "res')  # a kill in the middle of the third write

    journal = Journal(path)
    assert [record["id"] for record in journal.read()] == ["a", "b"]
    assert journal.partial_bytes == len(b'{"id": "c", "res')
    assert path.read_bytes().endswith(b"res")  # reading changes nothing

    with journal.writer() as out:
        out.append({"id": "c"})
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == ["a", "b", "c"]


def test_a_damaged_line_before_the_last_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    path.write_text('{"id": "a"}\n{"id": \n{"id": "c"}\n')
    with pytest.raises(JournalError, match=f"line 2 of {path} is not valid JSON \\(column 1: Expecting value\\)"):
        list(Journal(path).read())
    path.write_text('{"id": "a"}\n[1, 2]\n')
    with pytest.raises(JournalError, match="line 2 of .* is not a JSON object; it is not a records file"):
        list(Journal(path, kind="records file").read())
    path.write_bytes(b'{"id": "a"}\n{"id": "\xff"}\n')
    with pytest.raises(JournalError, match="line 2 of .* is not UTF-8 text"):
        list(Journal(path).read())


def test_done_ids_hold_every_complete_line_and_need_string_ids(tmp_path: Path) -> None:
    path = tmp_path / "records.jsonl"
    _write(path, {"id": "a"}, {"id": "b"})
    path.write_bytes(path.read_bytes() + b'{"id": "c"}')  # not finished: not done
    done = Journal(path).done_ids()
    assert "a" in done and "b" in done and "c" not in done and len(done) == 2
    assert done.line_of("b") == 2

    _write(path, {"id": 7})
    with pytest.raises(JournalError, match="line 3 of .* has no string 'id'"):
        Journal(path).done_ids()
    assert len(Journal(tmp_path / "missing.jsonl").done_ids()) == 0


def test_a_provenance_mismatch_names_the_key_both_values_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    found = {"k": 2, "seed": 0}
    check_provenance(path, 4, found, {"k": 2, "seed": 0}, advice="use a new output")  # the same: no error
    with pytest.raises(ProvenanceMismatch) as caught:
        check_provenance(path, 4, found, {"k": 2, "seed": 1}, advice="use a new output")
    error = caught.value
    assert (error.key, error.found, error.wanted, error.line) == ("seed", 0, 1, 4)
    assert "was written with seed=0 (line 4) but this run has seed=1" in str(error)
    assert str(error).endswith("use a new output")
    assert isinstance(error, JournalError) and isinstance(error, ConfigurationError)


def test_each_line_is_one_write_with_lone_surrogates_escaped_and_line_separators_too(tmp_path: Path) -> None:
    class Recording:
        name = "recording"

        def __init__(self) -> None:
            self.writes: list[bytes] = []

        def write(self, data: memoryview) -> int:
            self.writes.append(bytes(data))
            return len(data)

        def flush(self) -> None:
            pass

    file = Recording()
    writer = JournalWriter(file, redact=lambda text: text.replace("sk-secret", "[REDACTED]"))  # type: ignore[arg-type]
    writer.append({"id": "x\ud800", "text": "a\u2028b sk-secret"})
    writer.append({"id": "y"})

    assert len(file.writes) == 2 and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in file.writes)
    first = file.writes[0].decode("utf-8")  # valid UTF-8 although the id holds a lone surrogate
    assert json.loads(first) == {"id": "x\ud800", "text": "a\u2028b [REDACTED]"}
    assert "\u2028" not in first and writer.lines == 2


def test_a_failing_write_names_the_file(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full")
    with Path("/dev/full").open("ab", buffering=0) as full:
        writer = JournalWriter(full, name="output")
        with pytest.raises(FileProblem, match="cannot write to the output /dev/full: No space left on device"):
            writer.append({"id": "a"})


def test_the_id_index_keeps_the_first_line_of_each_id_through_growth() -> None:
    index = IdIndex()
    for n in range(10_000):
        index.add(f"id-{n}", n + 1)
    index.add("id-5", 99)
    assert len(index) == 10_000 and index.line_of("id-5") == 6 and index.line_of("id-10000") is None
