"""The strict correctness rule (METHOD.md §6) and the SPCT reward in TRL's reward-function form."""

from __future__ import annotations

import itertools
import random

import pytest

from grmjudge.exceptions import ConfigurationError, InvalidInputError
from grmjudge.parsing import Parsed, ParseFailure, ParseFailureReason
from grmjudge.prompts import DEFAULT_TEMPLATE, LLM_AS_JUDGE_TEMPLATE, SINGLE_RESPONSE_TEMPLATE, PromptTemplate
from grmjudge.training.rewards import (
    Label,
    completion_text,
    is_correct,
    is_correct_shown,
    judge_text,
    make_spct_reward,
    shown_label,
    spct_reward,
)
from grmjudge.voting import to_caller_order


@pytest.mark.parametrize(
    ("scores", "best", "expected"),
    [
        ((9, 2), 0, True),
        ((9, 2), 1, False),
        ((2, 9), 1, True),
        ((5, 5), 0, False),  # a tie is wrong
        ((5, 5), 1, False),
        ((8, 9, 3), 1, True),
        ((9, 9, 3), 0, False),  # tie at the top between the best and another
        ((9, 3, 9), 2, False),
        ((3, 9, 9), 0, False),  # best is not top
        ((10, 1, 1), 0, True),  # ties below the best do not matter
        ((1, 1, 2), 2, True),
    ],
)
def test_labelled_best_must_be_strictly_highest(scores: tuple[int, ...], best: int, expected: bool) -> None:
    assert is_correct(scores, Label(n=len(scores), best=best)) is expected
    assert is_correct(Parsed(scores), Label(n=len(scores), best=best)) is expected


@pytest.mark.parametrize(("score", "rating", "expected"), [(1, 1, True), (0, 0, True), (0, 1, False), (1, 0, False)])
def test_single_response_compares_with_the_rating(score: int, rating: int, expected: bool) -> None:
    assert is_correct((score,), Label(n=1, rating=rating)) is expected


def test_an_out_of_range_single_score_is_wrong_even_if_truthy() -> None:
    assert not is_correct((5,), Label(n=1, rating=1))


@pytest.mark.parametrize("reason", list(ParseFailureReason))
def test_parse_failures_are_wrong(reason: ParseFailureReason) -> None:
    assert not is_correct(ParseFailure(reason, "x"), Label(n=2, best=0))
    assert not is_correct(ParseFailure(reason, "x"), Label(n=1, rating=0))
    assert not is_correct(None, Label(n=2, best=0))


def test_wrong_count_is_wrong() -> None:
    assert not is_correct((9, 2, 1), Label(n=2, best=0))
    assert not is_correct((9,), Label(n=2, best=0))
    assert not is_correct((1, 0), Label(n=1, rating=1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n": 0},
        {"n": 1},
        {"n": 1, "rating": 2},
        {"n": 1, "best": 0, "rating": 1},
        {"n": 2},
        {"n": 2, "best": 2},
        {"n": 2, "best": -1},
        {"n": 2, "best": 0, "rating": 1},
    ],
)
def test_malformed_labels_are_refused(kwargs: dict) -> None:
    with pytest.raises(InvalidInputError):
        Label(**kwargs)


@pytest.mark.parametrize("n", [2, 3, 4])
def test_unshuffled_and_prompt_order_checks_agree_exhaustively(n: int) -> None:
    """METHOD.md §6: original order after un-shuffling == prompt order against the permuted label."""
    values = range(1, 4)
    checked = 0
    for perm in itertools.permutations(range(n)):
        for prompt_scores in itertools.product(values, repeat=n):
            for best in range(n):
                label = Label(n=n, best=best)
                original = is_correct(to_caller_order(prompt_scores, perm), label)
                assert original == is_correct_shown(prompt_scores, label, perm), (perm, prompt_scores, best)
                checked += 1
    assert checked == len(list(itertools.permutations(range(n)))) * 3**n * n


def test_shown_label_points_at_the_position_of_the_best() -> None:
    label = Label(n=3, best=0)
    assert shown_label(label, (2, 0, 1)).best == 1
    assert shown_label(Label(n=1, rating=1), (0,)) == Label(n=1, rating=1)
    with pytest.raises(InvalidInputError, match="not a permutation"):
        shown_label(label, (0, 0, 1))


def test_judge_text_unshuffles_before_checking() -> None:
    label = Label(n=2, best=0)
    # response 0 is shown second: a correct judgement scores the second shown response higher
    assert judge_text("Scores: \\boxed{3, 8}", label, (1, 0), DEFAULT_TEMPLATE).correct
    wrong = judge_text("Scores: \\boxed{8, 3}", label, (1, 0), DEFAULT_TEMPLATE)
    assert not wrong.correct and wrong.scores == (3, 8) and wrong.failure is None and not wrong.tie
    tie = judge_text("\\boxed{6, 6}", label, (1, 0), DEFAULT_TEMPLATE)
    assert tie.tie and not tie.correct


def test_judge_text_uses_the_last_box_and_the_templates_range() -> None:
    label = Label(n=2, best=1)
    text = "Overall Score: \\boxed{9}\nScores: \\boxed{4, 7}"
    assert judge_text(text, label, (0, 1), DEFAULT_TEMPLATE).correct
    assert judge_text("\\boxed{0, 11}", label, (0, 1), DEFAULT_TEMPLATE).failure == "out_of_range"
    single = Label(n=1, rating=1)
    assert judge_text("\\boxed{1}", single, (0,), SINGLE_RESPONSE_TEMPLATE).correct
    assert judge_text("\\boxed{7}", single, (0,), SINGLE_RESPONSE_TEMPLATE).failure == "out_of_range"


def test_truncation_is_a_failure_even_when_a_box_parses() -> None:
    verdict = judge_text("\\boxed{9, 2}", Label(n=2, best=0), (0, 1), DEFAULT_TEMPLATE, finish_reason="length")
    assert verdict.failure == "truncated" and not verdict.correct


def test_llm_as_a_judge_template_is_checked_with_its_own_parser() -> None:
    label = Label(n=3, best=2)
    assert judge_text("\\boxed{3}", label, (0, 1, 2), LLM_AS_JUDGE_TEMPLATE).correct
    assert judge_text("\\boxed{3}", label, (2, 0, 1), LLM_AS_JUDGE_TEMPLATE).correct is False
    assert judge_text("\\boxed{1}", label, (2, 0, 1), LLM_AS_JUDGE_TEMPLATE).correct


# ---------------------------------------------------------------- the TRL reward function


def _rows(n_rows: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for i in range(n_rows):
        n = rng.choice([1, 2, 3])
        perm = list(rng.sample(range(n), n))
        best = rng.randrange(n) if n > 1 else None
        rows.append(
            {
                "permutation": perm,
                "best": best,
                "rating": None if n > 1 else rng.choice([0, 1]),
                "template_id": (SINGLE_RESPONSE_TEMPLATE if n == 1 else DEFAULT_TEMPLATE).id,
                "source": f"s{i % 2}",
            }
        )
    return rows


def _columns(rows: list[dict]) -> dict[str, list]:
    return {key: [row[key] for row in rows] for key in rows[0]}


def _correct_text(row: dict) -> str:
    perm = row["permutation"]
    if row["best"] is None:
        return f"Scores: \\boxed{{{row['rating']}}}"
    shown_best = perm.index(row["best"])
    return "Scores: \\boxed{" + ", ".join("9" if m == shown_best else "3" for m in range(len(perm))) + "}"


def test_reward_is_plus_one_for_correct_and_minus_one_otherwise() -> None:
    rows = _rows(40)
    texts = [_correct_text(row) if i % 3 else "no box here" for i, row in enumerate(rows)]
    completions = [[{"role": "assistant", "content": t}] for t in texts]
    prompts = [[{"role": "user", "content": "p"}]] * len(rows)
    rewards = spct_reward(prompts, completions, **_columns(rows), trainer_state=None)
    assert rewards == [1.0 if i % 3 else -1.0 for i in range(len(rows))]


def test_reward_reads_plain_string_completions() -> None:
    rows = _rows(6, seed=3)
    rewards = spct_reward(["p"] * 6, [_correct_text(row) for row in rows], **_columns(rows))
    assert rewards == [1.0] * 6


def test_reward_agrees_with_prompt_order_check_on_random_samples() -> None:
    rng = random.Random(11)
    rows = [row for row in _rows(200, seed=5) if row["best"] is not None]
    texts, expected = [], []
    for row in rows:
        n = len(row["permutation"])
        prompt_scores = [rng.randint(1, 4) for _ in range(n)]
        texts.append("Scores: \\boxed{" + ", ".join(map(str, prompt_scores)) + "}")
        label = Label(n=n, best=row["best"])
        expected.append(1.0 if is_correct_shown(prompt_scores, label, tuple(row["permutation"])) else -1.0)
    assert spct_reward(["p"] * len(rows), texts, **_columns(rows)) == expected
    assert 0 < expected.count(1.0) < len(expected)


def test_truncated_completions_get_minus_one_when_eos_ids_are_known() -> None:
    rows = _rows(4, seed=1)
    texts = [_correct_text(row) for row in rows]
    ids = [[5, 6, 2], [5, 6], [], [7, 2]]  # 2 is EOS: rows 1 and 2 ran into the length limit
    reward = make_spct_reward(eos_token_ids=[2])
    assert reward(["p"] * 4, texts, completion_ids=ids, **_columns(rows)) == [1.0, -1.0, -1.0, 1.0]
    assert spct_reward(["p"] * 4, texts, completion_ids=ids, **_columns(rows)) == [1.0] * 4


def test_reward_logs_accuracy_failures_ties_and_sources() -> None:
    rows = [
        {"permutation": [0, 1], "best": 0, "rating": None, "template_id": DEFAULT_TEMPLATE.id, "source": "a"},
        {"permutation": [1, 0], "best": 0, "rating": None, "template_id": DEFAULT_TEMPLATE.id, "source": "a"},
        {"permutation": [0, 1], "best": 1, "rating": None, "template_id": DEFAULT_TEMPLATE.id, "source": "b"},
        {"permutation": [0], "best": None, "rating": 1, "template_id": SINGLE_RESPONSE_TEMPLATE.id, "source": "b"},
    ]
    texts = ["\\boxed{9, 1}", "\\boxed{5, 5}", "nothing", "\\boxed{1}"]
    logged: dict[str, float] = {}
    rewards = spct_reward(["p"] * 4, texts, log_metric=logged.__setitem__, **_columns(rows))
    assert rewards == [1.0, -1.0, -1.0, 1.0]
    assert logged == {
        "spct/accuracy": 0.5,
        "spct/parse_failure_rate": 0.25,
        "spct/tie_rate": 0.25,
        "spct/accuracy/a": 0.5,
        "spct/accuracy/b": 0.5,
    }


def test_custom_templates_must_be_registered() -> None:
    custom = PromptTemplate(id="short", text="Judge.\n{context}\n{responses}\nScores:", score_range=(1, 5))
    row = {"permutation": [0, 1], "best": 0, "rating": None, "template_id": "short"}
    with pytest.raises(ConfigurationError, match="unknown template_id 'short'"):
        spct_reward(["p"], ["\\boxed{5, 1}"], **_columns([row]))
    reward = make_spct_reward([custom])
    assert reward(["p"], ["\\boxed{5, 1}"], **_columns([row])) == [1.0]
    assert reward(["p"], ["\\boxed{9, 1}"], **_columns([row])) == [-1.0]  # 9 is outside the custom 1-5 range


def test_reward_function_has_a_name_for_trl_logs() -> None:
    assert spct_reward.__name__ == "spct_reward"


def test_completion_text_rejects_unknown_shapes() -> None:
    assert completion_text([{"role": "assistant", "content": "x"}]) == "x"
    with pytest.raises(InvalidInputError, match="string or a list of messages"):
        completion_text(42)
