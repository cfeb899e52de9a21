"""The canonical example, the dataset adapters, loading and decontamination."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grmjudge.exceptions import ConfigurationError, InvalidInputError
from grmjudge.training.data import (
    DataError,
    SPCTExample,
    convert_rows,
    decontaminate,
    load_examples,
    read_rows,
    write_examples,
)
from grmjudge.training.decontamination import normalise_prompt
from grmjudge.types import Message


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_example_validates_its_label() -> None:
    ok = SPCTExample(id="a", query="q", responses=("x", "y"), best=1)
    assert ok.n == 2 and ok.label.best == 1 and ok.query == (Message(role="user", content="q"),)
    assert SPCTExample(id="b", query="q", responses=("x",), rating=0).label.rating == 0
    for bad in (
        {"responses": ("x", "y")},  # no best
        {"responses": ("x", "y"), "best": 2},
        {"responses": ("x",), "best": 0},
        {"responses": ("x",), "rating": 3},
        {"responses": ("x", "y"), "best": 0, "rating": 1},
        {"responses": ()},
    ):
        with pytest.raises((InvalidInputError, ValueError)):
            SPCTExample(id="c", query="q", **bad)
    with pytest.raises(ValueError, match="last turn of the query must be the user's"):
        SPCTExample(
            id="d",
            query=[{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            responses=("x",),
            rating=1,
        )


def test_pairwise_strings_get_a_seeded_order_and_the_label_follows() -> None:
    rows = [{"prompt": f"question {i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(40)]
    report = convert_rows(rows, format="pairwise", seed=3)
    assert not report.errors and len(report.examples) == 40
    for example in report.examples:
        assert example.responses[example.best].startswith("good")
        assert example.source == ""
    firsts = {example.best for example in report.examples}
    assert firsts == {0, 1}  # the chosen response is not always first
    again = convert_rows(rows, format="pairwise", seed=3)
    assert [e.best for e in again.examples] == [e.best for e in report.examples]
    assert [e.id for e in again.examples] == [e.id for e in report.examples]  # content ids are stable


def test_pairwise_message_lists_in_both_shapes() -> None:
    user = {"role": "user", "content": "hi"}
    full = {
        "chosen": [user, {"role": "assistant", "content": "hello!"}],
        "rejected": [user, {"role": "assistant", "content": "go away"}],
        "id": "conv",
    }
    explicit = {
        "prompt": [{"role": "system", "content": "be nice"}, user],
        "chosen": [{"role": "assistant", "content": "hello!"}],
        "rejected": [{"role": "assistant", "content": "go away"}],
        "id": "explicit",
    }
    report = convert_rows([full, explicit])
    assert not report.errors
    conv, expl = report.examples
    assert conv.query == (Message(role="user", content="hi"),)
    assert expl.query[0].role == "system"
    assert {conv.responses[conv.best], expl.responses[expl.best]} == {"hello!"}


def test_listwise_ratings_single_and_canonical_rows() -> None:
    listwise = convert_rows([{"query": "q", "responses": ["a", "b", "c"], "best": 2, "id": "l", "model": "x"}])
    assert listwise.examples[0].best == 2 and listwise.examples[0].id == "l"
    ratings = convert_rows([{"prompt": "q", "responses": ["a", "b", "c"], "ratings": [3, 4.5, 1]}])
    assert ratings.examples[0].best == 1 and ratings.examples[0].strength == pytest.approx(1.5)
    single = convert_rows(
        [{"prompt": "q", "response": "a", "label": True}, {"prompt": "r", "response": "b", "label": 0}]
    )
    assert [e.rating for e in single.examples] == [1, 0]
    example = SPCTExample(id="z", query="q", responses=("a", "b"), best=0, source="src", domain="chat")
    canonical = convert_rows([json.loads(example.model_dump_json())])
    assert canonical.examples == [example]
    single_canonical = convert_rows([{"query": "q", "responses": ["a"], "rating": 1}])
    assert single_canonical.examples[0].rating == 1 and single_canonical.examples[0].id  # content id


def test_rating_ties_are_dropped_and_counted_not_errors() -> None:
    rows = [
        {"prompt": "q1", "responses": ["a", "b"], "ratings": [4, 4]},
        {"prompt": "q2", "responses": ["a", "b", "c"], "ratings": [5, 1, 5]},
        {"prompt": "q3", "responses": ["a", "b"], "ratings": [2, 4]},
    ]
    report = convert_rows(rows, format="ratings")
    assert report.dropped_ties == 2 and not report.errors and len(report.examples) == 1


def test_helpsteer2_rows_are_grouped_by_prompt() -> None:
    rows = [
        {"prompt": "p1", "response": "r1", "helpfulness": 3},
        {"prompt": "p1", "response": "r2", "helpfulness": 4},
        {"prompt": "p2", "response": "r3", "helpfulness": 2},
        {"prompt": "p2", "response": "r4", "helpfulness": 2},
        {"prompt": "p3", "response": "r5"},
    ]
    report = convert_rows(rows, format="rating_rows")
    assert [e.responses for e in report.examples] == [("r1", "r2")]
    assert report.examples[0].best == 1
    assert report.dropped_ties == 1
    assert [(e.index, "helpfulness" in e.message) for e in report.errors] == [(4, True)]


def test_every_bad_row_is_reported_with_its_position_and_reason() -> None:
    rows = [
        {"prompt": "fine", "chosen": "a", "rejected": "b"},
        {"prompt": "same", "chosen": "a", "rejected": "a"},
        {"chosen": "a", "rejected": "b"},
        {"prompt": "", "chosen": "a", "rejected": "b"},
        {"prompt": "no rejected", "chosen": "a"},
        {"prompt": "fine", "chosen": "a", "rejected": "b"},
        {"prompt": "q", "chosen": [{"role": "assistant"}], "rejected": "b", "id": 7},
    ]
    report = convert_rows(rows, format="pairwise")
    assert len(report.examples) == 1
    messages = {error.index: error.message for error in report.errors}
    assert set(messages) == {1, 2, 3, 4, 5, 6}
    assert "same text" in messages[1]
    assert "no 'prompt' column" in messages[2]
    assert "empty" in messages[3]
    assert "missing column 'rejected'" in messages[4]
    assert "duplicate id" in messages[5]
    assert "malformed message" in messages[6] and report.errors[-1].id == "7"


def test_single_labels_must_be_zero_or_one() -> None:
    report = convert_rows(
        [{"prompt": "q", "response": "a", "label": value} for value in (1, 0.5, "1", 2, None)], format="single"
    )
    assert len(report.examples) == 1 and [e.index for e in report.errors] == [1, 2, 3, 4]


def test_auto_detection_needs_recognisable_columns() -> None:
    with pytest.raises(ConfigurationError, match="cannot tell the data format"):
        convert_rows([{"text": "x"}])
    with pytest.raises(ConfigurationError, match="rating_rows"):
        convert_rows([{"prompt": "p", "response": "r", "helpfulness": 3}])


def test_column_map_renames_before_converting() -> None:
    report = convert_rows(
        [{"question": "q", "pos": "a", "neg": "b"}],
        column_map={"question": "prompt", "pos": "chosen", "neg": "rejected"},
    )
    assert len(report.examples) == 1


def test_loads_jsonl_json_and_parquet(tmp_path: Path) -> None:
    rows = [{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(3)]
    jsonl = write_jsonl(tmp_path / "pairs.jsonl", rows)
    as_json = tmp_path / "pairs.json"
    as_json.write_text(json.dumps(rows))
    assert [e.id for e in load_examples(jsonl).examples] == [e.id for e in load_examples(as_json).examples]
    assert load_examples(jsonl).examples[0].source == "pairs"
    parquet = pytest.importorskip("pyarrow.parquet")
    pyarrow = pytest.importorskip("pyarrow")
    parquet.write_table(pyarrow.Table.from_pylist(rows), tmp_path / "pairs.parquet")
    assert len(load_examples(tmp_path / "pairs.parquet", source_name="pq").examples) == 3


def test_write_examples_round_trips(tmp_path: Path) -> None:
    examples = convert_rows([{"prompt": f"q{i}", "chosen": "a", "rejected": "b"} for i in range(3)]).examples
    write_examples(tmp_path / "out.jsonl", examples)
    assert load_examples(tmp_path / "out.jsonl", format="canonical").examples == examples


def test_bad_rows_raise_one_error_listing_all_of_them(tmp_path: Path) -> None:
    rows = [{"prompt": "q", "chosen": "a", "rejected": "b"}] + [{"prompt": f"q{i}", "chosen": "a"} for i in range(25)]
    path = write_jsonl(tmp_path / "bad.jsonl", rows)
    with pytest.raises(DataError) as caught:
        load_examples(path)
    assert len(caught.value.errors) == 25
    assert "25 bad row(s)" in str(caught.value) and "... and 5 more" in str(caught.value)
    report = load_examples(path, on_error="report")
    assert len(report.examples) == 1 and len(report.errors) == 25


def test_a_broken_jsonl_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"prompt": "q", "chosen": "a", "rejected": "b"}\n{"prompt": \n')
    with pytest.raises(DataError, match="broken.jsonl line 2: not valid JSON"):
        list(read_rows(path))


def test_unknown_local_suffix_and_unreachable_hub_ids_are_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(ConfigurationError, match=r"\.jsonl, \.json or \.parquet"):
        list(read_rows(tmp_path / "data.csv"))
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ConfigurationError, match="could not be loaded from the Hugging Face hub"):
        list(read_rows("nobody/no-such-dataset"))


def test_normalised_prompts_ignore_case_punctuation_and_spacing() -> None:
    assert normalise_prompt("  What's   the CAPITAL of France?! ") == normalise_prompt("what s the capital of france")
    assert normalise_prompt("Ｃａｆé") == "café"


def test_decontamination_drops_matching_prompts_with_a_count(tmp_path: Path) -> None:
    rows = [
        {"prompt": "What is the capital of France?", "chosen": "Paris", "rejected": "Lyon"},
        {"prompt": "Name a prime.", "chosen": "7", "rejected": "8"},
        {
            "prompt": [
                {"role": "user", "content": "earlier"},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "WRITE A HAIKU"},
            ],
            "chosen": "a",
            "rejected": "b",
        },
    ]
    train = write_jsonl(tmp_path / "train.jsonl", rows)
    eval_set = write_jsonl(
        tmp_path / "eval.jsonl",
        [{"prompt": "what is the capital of france"}, {"prompt": [{"role": "user", "content": "Write a haiku."}]}],
    )
    report = load_examples(train, decontaminate_with=[eval_set])
    assert report.decontaminated == 2 and [e.query[-1].content for e in report.examples] == ["Name a prime."]
    assert report.summary()["decontaminated"] == 2
    direct = decontaminate(load_examples(train).examples, ["name a PRIME"])
    assert len(direct.kept) == 2 and len(direct.dropped_ids) == 1


def test_decontamination_needs_a_prompt_column(tmp_path: Path) -> None:
    train = write_jsonl(tmp_path / "train.jsonl", [{"prompt": "q", "chosen": "a", "rejected": "b"}])
    eval_set = write_jsonl(tmp_path / "eval.jsonl", [{"text": "q"}])
    with pytest.raises(DataError, match="no 'prompt' or 'query' column"):
        load_examples(train, decontaminate_with=[eval_set])
