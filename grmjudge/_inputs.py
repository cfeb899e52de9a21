"""Checks and ids for what callers pass to a judge, shared by every judge type."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from grmjudge.exceptions import InvalidInputError
from grmjudge.prompts import Query, normalise_query
from grmjudge.types import Message


def validate_input(query: Query, responses: Sequence[str], k: int) -> tuple[tuple[Message, ...], tuple[str, ...]]:
    """The query as messages and the responses as a tuple, or an InvalidInputError naming what is wrong."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:  # pyright: ignore[reportUnnecessaryIsInstance]
        raise InvalidInputError(f"k must be a positive integer, got {k!r}")
    if isinstance(responses, str) or not isinstance(responses, Sequence):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise InvalidInputError("responses must be a list of strings, not a single string")
    if not responses:
        raise InvalidInputError("responses is empty: give at least one response to judge")
    for i, text in enumerate(responses):
        if not isinstance(text, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise InvalidInputError(f"responses[{i}] is {type(text).__name__}, not a string")
    return normalise_query(query), tuple(responses)


def content_id(query: tuple[Message, ...], responses: tuple[str, ...]) -> str:
    """A stable id from the content, so the same input always gets the same orders and seeds."""
    digest = hashlib.sha256()
    for message in query:
        digest.update(f"{message.role}\x1f{message.content}\x1e".encode())
    for text in responses:
        digest.update(f"{text}\x1e".encode())
    return digest.hexdigest()[:16]
