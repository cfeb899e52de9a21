"""Decontamination: keep evaluation prompts out of the training data.

An example is dropped when its last user turn, normalised (Unicode NFKC, case-folded, every run of
punctuation and spacing made one space), equals a normalised evaluation prompt.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from grmjudge.prompts import Query, normalise_query
from grmjudge.rows import DataError, RowError
from grmjudge.types import Message

__all__ = [
    "PROMPT_KEYS",
    "DecontaminationReport",
    "decontaminate",
    "eval_prompts",
    "normalise_prompt",
    "prompt_text",
]

PROMPT_KEYS = ("prompt", "query")
"""Columns that hold the query, in order of preference."""

_NON_WORD = re.compile(r"[\W_]+")


class Example(Protocol):
    """What decontamination needs of a training example: its id and its conversation."""

    @property
    def id(self) -> str: ...

    @property
    def query(self) -> Sequence[Message]: ...


E = TypeVar("E", bound=Example)


def normalise_prompt(text: str) -> str:
    """Case-, accent-width- and punctuation-insensitive form of a prompt: NFKC, lower case, words only."""
    return " ".join(_NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).split())


def prompt_text(query: Query) -> str:
    """The text decontamination compares: the last user turn of the query."""
    return normalise_query(query)[-1].content


def eval_prompts(rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """The prompts of an evaluation set: each row's ``prompt`` or ``query`` (a string or a chat)."""
    for index, row in enumerate(rows):
        value = next((row[key] for key in PROMPT_KEYS if key in row), None)
        if value is None:
            raise DataError.listing("the evaluation set", [RowError(index, "no 'prompt' or 'query' column")])
        yield prompt_text(value)


@dataclass(frozen=True)
class DecontaminationReport(Generic[E]):
    """The examples kept and the ids of those dropped because an evaluation prompt matches theirs."""

    kept: list[E]
    dropped_ids: list[str]


def decontaminate(examples: Iterable[E], eval_set: Iterable[str | Query]) -> DecontaminationReport[E]:
    """Drop every example whose normalised last user turn equals a normalised evaluation prompt."""
    banned = {normalise_prompt(prompt_text(prompt)) for prompt in eval_set}
    banned.discard("")
    kept: list[E] = []
    dropped: list[str] = []
    for example in examples:
        if normalise_prompt(example.query[-1].content) in banned:
            dropped.append(example.id)
        else:
            kept.append(example)
    return DecontaminationReport(kept=kept, dropped_ids=dropped)
