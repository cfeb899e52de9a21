from __future__ import annotations

import pytest

from grmjudge.parsing import (
    Parsed,
    ParseFailure,
    ParseFailureReason,
    parse_best_index,
    parse_boxed_scores,
    parse_judgement,
    split_judgement,
)

R = ParseFailureReason

CASES = [
    ("Scores: \\boxed{8, 9}", 2, (8, 9)),
    ("Overall Score: \\boxed{7} ... Scores: \\boxed{6, 9}", 2, (6, 9)),
    ("Scores: \\boxed{8,9}", 2, (8, 9)),
    ("Scores: \\boxed{ 10 , 1 , 5 }", 3, (10, 1, 5)),
    ("Scores: \\boxed{7}", 1, (7,)),
    ("Scores: \\boxed{8}", 2, R.WRONG_COUNT),
    ("Scores: \\boxed{8, 9, 1}", 2, R.WRONG_COUNT),
    ("Scores: \\boxed{8.5, 9}", 2, R.NOT_INTEGER),
    ("Scores: \\boxed{8/10, 9}", 2, R.NOT_INTEGER),
    ("Scores: \\boxed{\\text{8}, 9}", 2, R.NOT_INTEGER),
    ("Scores: \\boxed{8, 9", 2, R.NO_BOXED),  # never closed
    ("Scores: \\boxed{eight, nine}", 2, R.NOT_INTEGER),
    ("Scores: \\boxed{8, }", 2, R.NOT_INTEGER),
    ("Scores: \\boxed{}", 1, R.NOT_INTEGER),
    ("Scores: \\boxed{８, 9}", 2, R.NOT_INTEGER),  # full-width digit
    ("Scores: \\boxed{0, 11}", 2, R.OUT_OF_RANGE),
    ("Scores: \\boxed{-1, 5}", 2, R.OUT_OF_RANGE),
    ("Scores: [8, 9]", 2, R.NO_BOXED),
    ("Score: 8", 1, R.NO_BOXED),
    ("Scores: \\boxed{8, 9} and later \\boxed{3}", 2, R.WRONG_COUNT),  # the last box wins, even when wrong
    ("Scores: \\boxed{08,10}", 2, (8, 10)),
    ("Scores: \\boxed{ 3 ,\t4 \n}", 2, (3, 4)),
    ("Scores: \\boxed{3,\x1c4}", 2, (3, 4)),  # any blank str.strip removes, not only ASCII ones
    ("Scores: \\boxed{+3, 4}", 2, R.NOT_INTEGER),
    ("Scores: \\boxed{1_0, 4}", 2, R.NOT_INTEGER),  # int() would take it
    ("Scores: \\boxed{\u0663, 4}", 2, R.NOT_INTEGER),  # an Arabic-Indic digit, which int() would take
    ("Scores: \\boxed{{3}, 4}", 2, R.NOT_INTEGER),
    ("Scores: \\boxed{3, 4} then \\boxed{5, 6", 2, (3, 4)),  # a box never closed is passed over
    ("Scores: \\boxed{3, 4} then \\boxed{\\text{5}, {6}}", 2, R.NOT_INTEGER),  # nested braces, balanced
]


@pytest.mark.parametrize(("text", "n", "expected"), CASES)
def test_parse_table(text: str, n: int, expected: tuple[int, ...] | ParseFailureReason) -> None:
    outcome = parse_judgement(text, "stop", n, (1, 10))
    if isinstance(expected, tuple):
        assert outcome == Parsed(expected)
    else:
        assert isinstance(outcome, ParseFailure)
        assert outcome.reason is expected
        assert outcome.detail


def test_truncated_text_is_never_parsed_even_with_a_box() -> None:
    outcome = parse_judgement("Sub-score \\boxed{9} and then the text stops mid", "length", 1, (1, 10))
    assert outcome == ParseFailure(R.TRUNCATED, "generation stopped at the token limit")


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_text(text: str) -> None:
    outcome = parse_judgement(text, "stop", 2, (1, 10))
    assert isinstance(outcome, ParseFailure) and outcome.reason is R.EMPTY


def test_zero_one_range() -> None:
    assert parse_boxed_scores("\\boxed{1}", 1, (0, 1)) == Parsed((1,))
    assert parse_boxed_scores("\\boxed{0}", 1, (0, 1)) == Parsed((0,))
    failure = parse_boxed_scores("\\boxed{2}", 1, (0, 1))
    assert isinstance(failure, ParseFailure) and failure.reason is R.OUT_OF_RANGE


def test_best_index_parser_gives_one_hot_votes() -> None:
    assert parse_best_index("Scores: \\boxed{2}", 3, (0, 1)) == Parsed((0, 1, 0))
    failure = parse_best_index("Scores: \\boxed{4}", 3, (0, 1))
    assert isinstance(failure, ParseFailure) and failure.reason is R.OUT_OF_RANGE


def test_split_judgement() -> None:
    text = "Specific Criteria: Accuracy (Weight: 60%).\nAnalysis: R1 is wrong.\nScores: \\boxed{2, 9}"
    assert split_judgement(text) == ("Accuracy (Weight: 60%).", "R1 is wrong.")


def test_split_judgement_without_labels() -> None:
    assert split_judgement("just \\boxed{3}") == (None, None)
    assert split_judgement("Analysis: only critique, no scores") == (None, "only critique, no scores")


def test_a_score_too_long_for_int_is_out_of_range_not_an_error() -> None:
    for digits in ("9" * 5000, "-" + "9" * 5000):
        outcome = parse_judgement(f"Scores: \\boxed{{{digits}, 3}}", "stop", 2, (1, 10))
        assert isinstance(outcome, ParseFailure) and outcome.reason is R.OUT_OF_RANGE
        assert len(outcome.detail) < 100
