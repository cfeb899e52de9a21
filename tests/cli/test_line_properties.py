"""Whatever a line of ``grmjudge score``'s input holds, it becomes one item or one typed error, never a crash.

Hypothesis throws arbitrary JSON values and bytes at the input reader: lone surrogates spelled as JSON
escapes (``\\ud800``), NUL, right-to-left marks, bytes that are not UTF-8, strings far over the limits, deep
nesting, numbers where strings belong, repeated ids. The output and errors writers must then write every
outcome as valid UTF-8 JSON that reads back unchanged.
"""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import anyio
from hypothesis import example, given
from hypothesis import strategies as st

from grmjudge import Judge
from grmjudge._redact import Redactor
from grmjudge.backends import FunctionBackend
from grmjudge.cli.inputs import InputScanner, LineItem, max_line_bytes, read_lines
from grmjudge.journal import JournalWriter, dumps
from grmjudge.score_lines import LineError, error_record, output_record
from tests.judges import by_length
from tests.strategies import CHATS, JSON, PROPERTIES, TEXT, WELL_FORMED

MAX_CHARS = 2_000
MAX_LINE_BYTES = max_line_bytes(MAX_CHARS)
LINE_ERRORS = {"invalid_json", "not_an_object", "invalid_item", "input_too_long", "duplicate_id"}
SECRET = "sk-test-line-properties-0123456789"
HUGE_INTEGER = b'{"query":"q","responses":["a","b"],"label":' + b"1" * 4_301 + b"}"
"""Valid JSON, but Python refuses to read an integer of more than 4,300 digits (a plain ValueError)."""

GOOD_RECORDS = st.fixed_dictionaries(
    {"query": WELL_FORMED, "responses": st.lists(WELL_FORMED, min_size=1, max_size=3)},
    optional={"id": st.one_of(st.sampled_from(["a", "b", SECRET]), WELL_FORMED), "label": st.integers(0, 2)},
)
ANY_RECORDS = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(TEXT, JSON, st.sampled_from(["a", "b"])),
        "query": st.one_of(TEXT, JSON),
        "messages": st.one_of(CHATS, JSON),
        "responses": st.one_of(st.lists(st.one_of(TEXT, JSON), max_size=3), JSON),
        "label": JSON,
    },
)
VALUES = st.one_of(GOOD_RECORDS, ANY_RECORDS, JSON)
DEEP = st.integers(1, 5_000).map(lambda n: "[" * n + "]" * n)
ENCODED = st.one_of(
    VALUES.map(json.dumps),  # ASCII: a lone surrogate becomes its JSON escape
    GOOD_RECORDS.map(json.dumps),
    DEEP,
    st.builds(lambda depth, rest: '{"id": ' + depth + ", " + rest[1:], DEEP, GOOD_RECORDS.map(json.dumps)),
).map(str.encode)
LINES = st.one_of(
    ENCODED,
    VALUES.map(lambda v: json.dumps(v, ensure_ascii=False).encode("utf-8", "surrogatepass")),  # not UTF-8
    st.binary(max_size=40).map(lambda raw: raw.replace(b"\n", b"")),
    st.sampled_from([b"", b"  \t", b"\xef\xbb\xbf", "\u2028".encode()]),  # blank (the BOM on line 1 only)
    st.sampled_from([b'"' + b"x" * MAX_LINE_BYTES + b'"', b'{"query": "q", "responses": ["%s"]}' % (b"y" * 5_000)]),
    st.sampled_from([HUGE_INTEGER, b"[-" + b"9" * 5_000 + b"]", b"[1" + b"0" * 5_000 + b".5]"]),
)


@PROPERTIES
@given(lines=st.lists(LINES, max_size=8))
@example(lines=[HUGE_INTEGER, b'{"query": "q", "responses": ["a"]}'])
def test_every_line_is_one_item_or_one_typed_error_and_both_writers_take_it(lines: list[bytes]) -> None:
    errors: list[LineError] = []
    source = io.BytesIO(b"".join(line + b"\n" for line in lines))
    scanner = InputScanner(read_lines(source, max_line_bytes=MAX_LINE_BYTES), errors.append, MAX_CHARS, MAX_LINE_BYTES)
    items = list(scanner)

    outcomes: dict[int, LineItem | LineError] = {}
    for outcome in [*items, *errors]:
        assert outcome.line not in outcomes, f"line {outcome.line} has two outcomes"
        outcomes[outcome.line] = outcome
    for number, line in enumerate(lines, start=1):
        expected, outcome = expected_kind(number, line), outcomes.get(number)
        if expected == "record":
            assert isinstance(outcome, LineItem) or (outcome is not None and outcome.type in LINE_ERRORS)
        else:
            assert (outcome.type if isinstance(outcome, LineError) else outcome) == expected, (number, line[:80])
        if outcome is not None and outcome.id is not None:  # the id of the line the outcome is numbered with
            assert outcome.id in (json.loads(line).get("id"), str(number))
    assert (scanner.counts.lines, scanner.counts.blank) == (len(lines), len(lines) - len(outcomes))
    assert [item.seq for item in items] == list(range(len(items)))

    written = [error_record(error) for error in errors] + [
        output_record(*judged, texts=True) for judged in judge(items)
    ]
    assert read_back(written) == [json.loads(json.dumps(record).replace(SECRET, "[REDACTED]")) for record in written]


def expected_kind(number: int, line: bytes) -> str | None:
    """What the reader must make of a line, where that follows from the line alone: ``record`` for a JSON object."""
    if len(line) > MAX_LINE_BYTES:
        return "input_too_long"
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return "invalid_json"
    if not (text.removeprefix("\ufeff") if number == 1 else text).strip():
        return None
    try:
        value = json.loads(text, parse_int=_readable_integer)
    except (json.JSONDecodeError, RecursionError, _TooManyDigits):
        return "invalid_json"
    return "record" if isinstance(value, dict) else "not_an_object"


class _TooManyDigits(Exception):
    """An integer longer than Python reads from a string; the reader must make its line ``invalid_json``."""


def _readable_integer(digits: str) -> int:
    if len(digits.lstrip("-")) > sys.get_int_max_str_digits():
        raise _TooManyDigits(digits[:20])
    return int(digits)


def judge(items: list[LineItem]) -> list[tuple[Any, str, int | None]]:
    """``output_record``'s arguments for each item, judged for real by a small judge."""
    grm = Judge(FunctionBackend(by_length))
    results = anyio.run(lambda: grm.score_many([item.item for item in items], k=2))
    for batch in results:
        assert batch.result is not None, batch.error
    return [(batch.result, item.id, item.label) for batch, item in zip(results, items, strict=True)]


def read_back(records: list[dict[str, Any]]) -> list[Any]:
    """The records written as the CLI writes them (secrets redacted), read back as strict UTF-8 JSON lines."""
    file = io.BytesIO()
    writer = JournalWriter(file, name="output", redact=Redactor([SECRET]))
    for record in records:
        writer.write(dumps(record))
    lines = file.getvalue().decode("utf-8").split("\n")
    assert lines.pop() == ""
    return [json.loads(line) for line in lines]


def test_a_line_nested_too_deeply_is_an_invalid_json_error_of_its_own() -> None:
    errors: list[LineError] = []
    lines = io.BytesIO(b"[" * 100_000 + b"]" * 100_000 + b'\n{"query": "q", "responses": ["a"]}\n')
    scanner = InputScanner(read_lines(lines, max_line_bytes=MAX_LINE_BYTES * 4), errors.append, MAX_CHARS, 10**6)
    assert [item.line for item in scanner] == [2]
    assert [(e.line, e.type) for e in errors] == [(1, "invalid_json")]
    assert "nests arrays and objects too deeply" in errors[0].message
