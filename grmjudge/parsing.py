r"""Turn a generated judgement into per-response integer scores, or a typed failure.

The rule (METHOD.md §5): read the **last** ``\boxed{...}``, split on commas, require exactly n plain
integers inside the template's range. Anything else is a [`ParseFailure`][grmjudge.parsing.ParseFailure] carrying the
reason.
A failure is never coerced into a number.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from grmjudge.types import FinishReason

_BOX_OPENING = "\\boxed{"
_PRINCIPLES = re.compile(r"Specific Criteria\s*:", re.IGNORECASE)
_ANALYSIS = re.compile(r"Analysis\s*:", re.IGNORECASE)
_SCORES = re.compile(r"Scores\s*:", re.IGNORECASE)
_PLAIN_SCORES = re.compile(r"[ \t\n\r]*-?[0-9]+[ \t\n\r]*(?:,[ \t\n\r]*-?[0-9]+[ \t\n\r]*)*")
"""ASCII integers between commas, spaced by ASCII blanks: what ``str.strip`` and ``_is_integer`` accept anyway."""


class ParseFailureReason(StrEnum):
    """Why a judgement yielded no scores."""

    TRUNCATED = "truncated"
    EMPTY = "empty"
    NO_BOXED = "no_boxed"
    NOT_INTEGER = "not_integer"
    WRONG_COUNT = "wrong_count"
    OUT_OF_RANGE = "out_of_range"
    INVALID_TEXT = "invalid_text"  # a lone surrogate: not valid Unicode, dropped by the judge before parsing


@dataclass(frozen=True)
class Parsed:
    """Scores in **prompt order** (the order the model saw the responses in)."""

    scores: tuple[int, ...]


@dataclass(frozen=True)
class ParseFailure:
    """A judgement that cannot be scored, and why."""

    reason: ParseFailureReason
    detail: str


ParseOutcome = Parsed | ParseFailure
ScoreParser = Callable[[str, int, tuple[int, int]], ParseOutcome]
"""A parser takes (text, number of responses, inclusive score range) and returns a ``ParseOutcome``."""


def parse_boxed_scores(text: str, n_responses: int, score_range: tuple[int, int]) -> ParseOutcome:
    r"""Parse the last ``\boxed{s1, ..., sn}`` of ``text`` (the DeepSeek-GRM output format)."""
    content = _last_box(text)
    if content is None:
        return ParseFailure(ParseFailureReason.NO_BOXED, "no \\boxed{...} in the judgement")
    if _PLAIN_SCORES.fullmatch(content):  # the usual box: the general check below would accept it as is
        parts = content.split(",")
    else:
        parts = [part.strip() for part in content.split(",")]
        bad = [part for part in parts if not _is_integer(part)]
        if bad:
            return ParseFailure(ParseFailureReason.NOT_INTEGER, f"not an integer: {bad[0]!r} in \\boxed{{{content}}}")
    if len(parts) != n_responses:
        return ParseFailure(
            ParseFailureReason.WRONG_COUNT, f"expected {n_responses} scores, found {len(parts)} in \\boxed{{{content}}}"
        )
    lo, hi = score_range
    try:
        scores = tuple(map(int, parts))
    except ValueError:  # more digits than int() reads (4,300 by default): no score range reaches that far
        return ParseFailure(ParseFailureReason.OUT_OF_RANGE, f"a score of thousands of digits is outside [{lo}, {hi}]")
    if min(scores) < lo or max(scores) > hi:
        outside = next(s for s in scores if not lo <= s <= hi)
        return ParseFailure(ParseFailureReason.OUT_OF_RANGE, f"score {outside} outside [{lo}, {hi}]")
    return Parsed(scores)


def parse_best_index(text: str, n_responses: int, score_range: tuple[int, int]) -> ParseOutcome:
    r"""Parse the LLM-as-a-Judge baseline output ``\boxed{i}`` (1-based best index) into one-hot votes.

    The best response gets ``score_range[1]`` and the others ``score_range[0]``, so summing the votes over
    samples is the majority vote the paper uses for this baseline.
    """
    outcome = parse_boxed_scores(text, 1, (1, n_responses))
    if isinstance(outcome, ParseFailure):
        return outcome
    lo, hi = score_range
    best = outcome.scores[0] - 1
    return Parsed(tuple(hi if i == best else lo for i in range(n_responses)))


def parse_judgement(
    text: str,
    finish_reason: FinishReason,
    n_responses: int,
    score_range: tuple[int, int],
    parser: ScoreParser = parse_boxed_scores,
) -> ParseOutcome:
    """Apply the checks every template shares (truncation, empty text), then the template's parser."""
    if finish_reason == "length":
        return ParseFailure(ParseFailureReason.TRUNCATED, "generation stopped at the token limit")
    if not text or text.isspace():
        return ParseFailure(ParseFailureReason.EMPTY, "the judgement is empty")
    return parser(text, n_responses, score_range)


def split_judgement(text: str) -> tuple[str | None, str | None]:
    """Split a judgement into (principles, critique) at its ``Specific Criteria:`` and ``Analysis:`` labels.

    A part whose label is missing is ``None``; the critique ends at the last ``Scores:`` label.
    """
    principles_match = _PRINCIPLES.search(text)
    analysis_match = _ANALYSIS.search(text, principles_match.end() if principles_match else 0)
    scores_matches = list(_SCORES.finditer(text))
    scores_start = scores_matches[-1].start() if scores_matches else len(text)
    principles = None
    if principles_match:
        end = analysis_match.start() if analysis_match else scores_start
        principles = text[principles_match.end() : end].strip() or None
    critique = None
    if analysis_match:
        end = scores_start if scores_start > analysis_match.end() else len(text)
        critique = text[analysis_match.end() : end].strip() or None
    return principles, critique


def _is_integer(part: str) -> bool:
    digits = part[1:] if part.startswith("-") else part
    return digits.isascii() and digits.isdigit()


def _last_box(text: str) -> str | None:
    r"""Content of the last ``\boxed{...}`` with balanced braces (so ``\boxed{\text{8}}`` is found)."""
    start = text.rfind(_BOX_OPENING)
    while start != -1:
        content_start = start + len(_BOX_OPENING)
        end = _closing_brace(text, content_start)
        if end != -1:
            return text[content_start:end]
        start = text.rfind(_BOX_OPENING, 0, start)
    return None


def _closing_brace(text: str, start: int) -> int:
    """The position of the ``}`` that closes a brace opened just before ``start``, or -1."""
    depth = 1
    while True:
        close = text.find("}", start)
        if close == -1:
            return -1
        depth += text.count("{", start, close) - 1
        if depth == 0:
            return close
        start = close + 1
