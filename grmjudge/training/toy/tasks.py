"""Synthetic judging tasks with a verifiable best response, small enough for a tiny model to learn on a CPU.

Four families, each a question whose right answer a rule computes: ``sum`` (a + b for single digits),
``largest`` (the largest of four digits), ``sort`` (three digits in increasing order) and ``count`` (how often a
letter occurs in a short string). The wrong candidates are *near misses* that share the right answer's form (a
sum off by one or two, another digit of the list, another order of the same digits, a count off by one), so no
surface cue (length, position, form) separates right from wrong: the judge has to work the question out.

Every item is drawn from a seeded generator, so a split is a pure function of ``(seed, size)``. Train,
validation and held-out items come from disjoint question spaces, never just different draws (`split_of`
assigns each question to one split by a hash): no validation or held-out question is ever seen in training,
and the questions that settings are chosen on never reach the held-out test.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from grmjudge.training.data import SPCTExample

__all__ = ["FAMILIES", "Question", "Split", "make_items", "solve", "split_of"]

Split = Literal["train", "validation", "heldout"]

HELDOUT_SHARE = 0.15
"""Share of each family's question space that only ever appears in the held-out split."""
VALIDATION_SHARE = 0.10
"""Share of each family's question space that only ever appears in the validation split."""

_LETTERS = "abcd"


@dataclass(frozen=True)
class Question:
    """A question, its right answer and the wrong answers a careless solver would give (at least three)."""

    family: str
    text: str
    answer: str
    near_misses: tuple[str, ...]


def _sum(rng: random.Random) -> Question:
    a, b = rng.randrange(10), rng.randrange(10)
    total = a + b
    misses = tuple(str(total + d) for d in (-2, -1, 1, 2) if total + d >= 0)
    return Question("sum", f"What is {a} + {b}?", str(total), misses)


def _largest(rng: random.Random) -> Question:
    digits = rng.sample(range(10), 4)
    top = max(digits)
    misses = tuple(str(d) for d in digits if d != top)
    return Question("largest", f"Which is the largest of {' '.join(map(str, digits))}?", str(top), misses)


def _sort(rng: random.Random) -> Question:
    digits = rng.sample(range(10), 3)
    ordered = sorted(digits)
    answer = " ".join(map(str, ordered))
    orders = {" ".join(map(str, p)) for p in _permutations(ordered)} - {answer}
    return Question("sort", f"Sort {' '.join(map(str, digits))} in increasing order.", answer, tuple(sorted(orders)))


def _count(rng: random.Random) -> Question:
    letter = rng.choice(_LETTERS)
    text = " ".join(rng.choice(_LETTERS) for _ in range(rng.randint(4, 6)))
    count = text.split().count(letter)
    misses = tuple(str(count + d) for d in (-1, 1, 2) if count + d >= 0)
    return Question("count", f"How many times does {letter} appear in: {text}?", str(count), misses)


def _permutations(items: list[int]) -> list[tuple[int, ...]]:
    if len(items) <= 1:
        return [tuple(items)]
    return [(x, *rest) for i, x in enumerate(items) for rest in _permutations(items[:i] + items[i + 1 :])]


FAMILIES: dict[str, Callable[[random.Random], Question]] = {
    "sum": _sum,
    "largest": _largest,
    "sort": _sort,
    "count": _count,
}
"""Question generators by family name."""


def solve(family: str, text: str) -> str:
    """The right answer to a question of ``family``, worked out from its text (the teacher's rule)."""
    numbers = [int(x) for x in re.findall(r"\b\d\b", text)]
    if family == "sum":
        return str(sum(numbers))
    if family == "largest":
        return str(max(numbers))
    if family == "sort":
        return " ".join(map(str, sorted(numbers)))
    if family == "count":
        match = re.fullmatch(r"How many times does (\w) appear in: ([\w ]+)\?", text)
        if match is None:
            raise ValueError(f"not a count question: {text!r}")
        return str(match.group(2).split().count(match.group(1)))
    raise ValueError(f"unknown family {family!r}")


def split_of(question: Question) -> Split:
    """The split a question belongs to, fixed by a hash of its text, so the splits share no question."""
    digest = hashlib.sha256(question.text.encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    if position < HELDOUT_SHARE:
        return "heldout"
    return "validation" if position < HELDOUT_SHARE + VALIDATION_SHARE else "train"


def make_items(split: Split, size: int, *, seed: int, single_share: float = 0.25) -> list[SPCTExample]:
    """``size`` items of ``split``: families in turn; ``single_share`` of them rate one response 0/1.

    A multi-response item shows the right answer among 1-3 near misses (2-4 responses, shuffled). A single
    response is right half of the time. Questions repeat across items (the spaces are small) but never cross
    the split; item ids are unique within a split.
    """
    rng = random.Random(f"toy:{split}:{seed}")
    names = list(FAMILIES)
    items: list[SPCTExample] = []
    while len(items) < size:
        family = names[len(items) % len(names)]
        question = FAMILIES[family](rng)
        if split_of(question) != split:
            continue
        items.append(_item(question, rng, f"{split}-{len(items):05d}", single=rng.random() < single_share))
    return items


def _item(question: Question, rng: random.Random, item_id: str, *, single: bool) -> SPCTExample:
    query = ({"role": "user", "content": question.text},)
    if single:
        right = rng.random() < 0.5
        response = question.answer if right else rng.choice(question.near_misses)
        return SPCTExample.model_validate(
            {"id": item_id, "query": query, "responses": (response,), "rating": int(right), "source": question.family}
        )
    wrong = rng.sample(question.near_misses, rng.randint(1, min(3, len(question.near_misses))))
    responses = [question.answer, *wrong]
    rng.shuffle(responses)
    best = responses.index(question.answer)
    return SPCTExample.model_validate(
        {"id": item_id, "query": query, "responses": tuple(responses), "best": best, "source": question.family}
    )
