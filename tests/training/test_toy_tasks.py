"""The toy task, teacher and templates: splits that share no question, right labels, no shortcut, set noise."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from grmjudge.parsing import parse_boxed_scores
from grmjudge.training.config import resolve_template
from grmjudge.training.rewards import is_correct
from grmjudge.training.toy.tasks import FAMILIES, make_items, solve, split_of
from grmjudge.training.toy.teacher import Teacher, transcript
from grmjudge.training.toy.templates import TOY_SINGLE_TEMPLATE, TOY_TEMPLATE, write_template

TRAIN = make_items("train", 2000, seed=0)
HELDOUT = make_items("heldout", 400, seed=0)
VALIDATION = make_items("validation", 400, seed=0)


def test_train_and_heldout_share_no_question() -> None:
    train_questions = {item.query[-1].content for item in TRAIN}
    heldout_questions = {item.query[-1].content for item in HELDOUT}
    assert train_questions and heldout_questions
    assert not train_questions & heldout_questions


def test_validation_shares_no_question_with_train_or_heldout_and_covers_every_family() -> None:
    validation_questions = {item.query[-1].content for item in VALIDATION}
    assert validation_questions
    assert not validation_questions & {item.query[-1].content for item in TRAIN}
    assert not validation_questions & {item.query[-1].content for item in HELDOUT}
    assert {item.source for item in VALIDATION} == set(FAMILIES)


def test_items_are_deterministic_and_ids_unique() -> None:
    assert make_items("train", 50, seed=0) == TRAIN[:50]
    assert make_items("train", 50, seed=1) != TRAIN[:50]
    assert len({item.id for item in TRAIN}) == len(TRAIN)


def test_labels_follow_the_rule_that_solves_each_family() -> None:
    assert solve("sum", "What is 7 + 8?") == "15"
    assert solve("largest", "Which is the largest of 3 9 1 4?") == "9"
    assert solve("sort", "Sort 7 2 5 in increasing order.") == "2 5 7"
    assert solve("count", "How many times does b appear in: a b c b?") == "2"
    for item in TRAIN:
        answer = solve(item.source, item.query[-1].content)
        if item.best is not None:
            assert item.responses[item.best] == answer
            assert item.responses.count(answer) == 1
        else:
            assert item.rating == int(item.responses[0] == answer)


def test_no_surface_shortcut_picks_the_best() -> None:
    multi = [item for item in TRAIN if item.n >= 2]
    assert {item.n for item in multi} == {2, 3, 4}
    assert {item.source for item in multi} == set(FAMILIES)
    # position: the best is spread over the slots
    first = sum(item.best == 0 for item in multi) / len(multi)
    assert 0.25 < first < 0.45
    # length: picking the uniquely longest (or shortest) response finds the best in almost no item
    for pick in (max, min):
        found = 0
        for item in multi:
            lengths = [len(r) for r in item.responses]
            target = pick(lengths)
            found += lengths.count(target) == 1 and lengths.index(target) == item.best
        assert found / len(multi) < 0.05
    # single responses are right about half of the time
    singles = [item.rating for item in TRAIN if item.n == 1]
    assert 0.4 < sum(r or 0 for r in singles) / len(singles) < 0.6


def test_split_of_is_a_function_of_the_question() -> None:
    rng = random.Random(3)
    for family in FAMILIES.values():
        question = family(rng)
        assert split_of(question) == split_of(question)
    shares = Counter(split_of(FAMILIES["sort"](rng)) for _ in range(2000))
    assert 0.08 < shares["heldout"] / 2000 < 0.25
    assert 0.05 < shares["validation"] / 2000 < 0.18


def test_teacher_is_wrong_on_the_set_fraction_and_right_elsewhere() -> None:
    teacher = Teacher(error_rate=0.3, seed=0)
    outcomes = Counter()
    for item in TRAIN:
        text = teacher.judge(item)
        template = TOY_SINGLE_TEMPLATE if item.n == 1 else TOY_TEMPLATE
        parsed = parse_boxed_scores(text, item.n, template.score_range)
        assert not isinstance(parsed, str) and parsed.scores is not None, text
        correct = is_correct(parsed.scores, item.label)
        assert correct != teacher.mistaken(item), text
        outcomes[correct] += 1
    assert 0.25 < outcomes[False] / len(TRAIN) < 0.35
    assert Teacher(error_rate=0.0).mistaken(TRAIN[0]) is False


def test_teacher_transcripts_have_the_default_format() -> None:
    item = next(i for i in TRAIN if i.n == 3)
    text = transcript(item, item.responses[0], random.Random(0))
    lines = text.splitlines()
    assert [line.split(":")[0] for line in lines] == ["Specific Criteria", "Analysis", "Scores"]
    assert f"The answer must be {item.responses[0]}." in lines[0]
    assert "Response 1 says" in lines[1] and "which is correct" in lines[1]
    assert lines[2].startswith("Scores: \\boxed{") and lines[2].count(",") == 2


def test_teacher_refuses_an_impossible_error_rate() -> None:
    with pytest.raises(ValueError, match="error_rate"):
        Teacher(error_rate=1.0)


def test_templates_round_trip_through_the_file_form(tmp_path: Path) -> None:
    for template in (TOY_TEMPLATE, TOY_SINGLE_TEMPLATE):
        loaded = resolve_template(str(write_template(template, tmp_path / f"{template.id}.json")))
        assert loaded.hash == template.hash
    prompt = TOY_TEMPLATE.render("What is 1 + 2?", ["3", "4"])
    for header in ("#### Conversation Context ####", "#### Responses to be Scored ####", "Output Format Requirements"):
        assert header in prompt
