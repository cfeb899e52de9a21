"""The shared data reader: JSON, JSON Lines, Parquet and hub names, and one DataError naming the file and the line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grmjudge.exceptions import InvalidInputError
from grmjudge.rows import DataError, RowError, read_checked, read_file, read_rows, write_jsonl

ROWS = [{"prompt": "q1", "n": 1}, {"prompt": "q2\u2028with a line separator", "n": 2}]


def test_json_lines_rows_carry_their_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    lines = [json.dumps(ROWS[0]), "", json.dumps(ROWS[1], ensure_ascii=False)]  # a blank line, a raw U+2028
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    rows = read_file(path)
    assert [row.fields for row in rows] == ROWS
    assert [row.where for row in rows] == ["data.jsonl line 1", "data.jsonl line 3"]
    assert list(read_rows(path)) == ROWS


def test_a_json_array_and_a_parquet_file_give_the_same_rows(tmp_path: Path) -> None:
    array = tmp_path / "data.json"
    array.write_text(json.dumps(ROWS), encoding="utf-8")
    assert list(read_rows(array)) == ROWS
    assert [row.where for row in read_file(array)] == ["data.json row 1", "data.json row 2"]

    parquet = pytest.importorskip("pyarrow.parquet")
    table = pytest.importorskip("pyarrow").Table.from_pylist(ROWS)
    parquet.write_table(table, tmp_path / "data.parquet")
    assert list(read_rows(tmp_path / "data.parquet")) == ROWS
    assert read_file(tmp_path / "data.parquet")[1].where == "data.parquet row 2"


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"prompt": "q"}\n{"prompt": \n', r"bad.jsonl line 2: not valid JSON \(Expecting value"),
        ("bad.jsonl", '{"prompt": "q"}\n["a list"]\n', "bad.jsonl line 2: expected an object, got list"),
        ("bad.json", '[{"prompt": "q"}, "text"]', "bad.json row 2: expected an object, got string"),
        ("bad.json", '[{"prompt": "q"},', r"bad.json: not valid JSON \(Expecting value"),
        ("bad.parquet", "not parquet", "bad.parquet: not a readable parquet file"),
    ],
)
def test_every_format_fails_with_one_error_type_naming_the_file_and_the_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    if name.endswith(".parquet"):
        pytest.importorskip("pyarrow.parquet")
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError, match=message) as caught:
        list(read_rows(path))
    assert isinstance(caught.value, InvalidInputError)


def test_bytes_that_are_not_utf8_are_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes(b'{"prompt": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"latin.jsonl: not UTF-8 text \(byte 16\)"):
        read_file(path)


def test_rows_a_converter_rejects_are_listed_in_one_error_with_their_fields(tmp_path: Path) -> None:
    path = tmp_path / "out" / "rows.jsonl"  # write_jsonl makes the folder
    assert write_jsonl(path, [{"id": "a", "prompt": "q"}, {"id": "b"}, {"prompt": 3}]) == 3

    def prompt(row: object) -> str:
        value = row["prompt"]  # type: ignore[index]
        if not isinstance(value, str):
            raise TypeError(f"prompt must be a string, got {type(value).__name__}")
        return value

    with pytest.raises(DataError) as caught:
        read_checked(path, prompt)
    assert caught.value.errors == [
        RowError(1, "missing column 'prompt'", "b"),
        RowError(2, "prompt must be a string, got int"),
    ]
    assert str(caught.value).startswith(f"2 bad row(s) in {path}:\n  row 1 (id 'b'): missing column 'prompt'")


def test_a_listing_shows_the_first_twenty_and_counts_the_rest() -> None:
    error = DataError.listing("data.jsonl", [RowError(i, "bad") for i in range(25)])
    assert len(error.errors) == 25 and str(error).count("\n  row ") == 20 and str(error).endswith("... and 5 more")
