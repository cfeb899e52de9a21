"""Checks and ids for what callers pass to a judge, shared by every judge type.

Each check raises an [`InvalidInputError`][grmjudge.exceptions.InvalidInputError] naming the field and what is
wrong with it, before anything is sent. Text must be valid Unicode: a lone surrogate (half of an emoji that a
JavaScript string slice cut in two) cannot be encoded as UTF-8, so no server, cache or output file could take it.
"""

from __future__ import annotations

import hashlib
import re
import reprlib
from collections.abc import Mapping, Sequence
from typing import cast, get_args

from grmjudge.exceptions import InvalidInputError
from grmjudge.prompts import normalise_query
from grmjudge.types import Message, Role

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_ROLES: tuple[str, ...] = get_args(Role)
_MESSAGE_KEYS = ("role", "content")
_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = 40


def shown(value: object) -> str:
    """A short repr for error messages: long values are cut, surrogates and control characters escaped."""
    return _SHORT.repr(value)


def type_name(value: object) -> str:
    """The name of ``value``'s type, for "got int" in error messages."""
    return type(value).__name__


def lone_surrogate(text: str) -> int | None:
    """The position of the first lone surrogate in ``text``, or ``None`` when it is valid Unicode."""
    if text.isascii():
        return None
    match = _LONE_SURROGATE.search(text)
    return match.start() if match else None


def check_text(text: str, field: str) -> str:
    """``text`` if it is valid Unicode, else an InvalidInputError naming ``field`` and the position."""
    position = lone_surrogate(text)
    if position is not None:
        raise InvalidInputError(
            f"{field} contains a lone surrogate at position {position} (U+{ord(text[position]):04X}): "
            "text must be valid Unicode (was an emoji cut in half?)"
        )
    return text


def check_k(k: object, max_k: int | None = None) -> int:
    """``k`` if it is a positive integer no larger than ``max_k``."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be a positive integer, got {shown(k)}")
    if max_k is not None and k > max_k:
        raise InvalidInputError(f"k={k} is above max_k={max_k} (JudgeSettings.max_k): raise it to draw more samples")
    return k


def check_query(query: object) -> tuple[Message, ...]:
    """The query as messages: a string is one user turn; a list holds messages (mappings or `Message`)."""
    if isinstance(query, str):
        return normalise_query(check_text(query, "query"))
    if isinstance(query, Mapping):
        raise InvalidInputError(
            "query is a single mapping: pass a string or a list of messages, e.g. [{'role': 'user', 'content': ...}]"
        )
    if isinstance(query, bytes | bytearray) or not isinstance(query, Sequence):
        raise InvalidInputError(f"query must be a string or a list of messages, got {type_name(query)}")
    turns = cast(Sequence[object], query)
    return normalise_query(tuple(_message(turn, f"query[{i}]") for i, turn in enumerate(turns)))


def check_responses(responses: object) -> tuple[str, ...]:
    """The responses as a tuple of valid strings, at least one."""
    if isinstance(responses, str):
        raise InvalidInputError("responses must be a list of strings, not a single string")
    if isinstance(responses, bytes | bytearray) or not isinstance(responses, Sequence):
        raise InvalidInputError(f"responses must be a list of strings, got {type_name(responses)}")
    texts = cast(Sequence[object], responses)
    if not texts:
        raise InvalidInputError("responses is empty: give at least one response to judge")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"responses[{i}] is {type_name(text)}, not a string")
        check_text(text, f"responses[{i}]")
    return tuple(cast(Sequence[str], texts))


def check_item_id(item_id: object, field: str = "item_id") -> str | None:
    """An item id: ``None`` or a valid string (ids seed the samples, so they must encode)."""
    if item_id is None:
        return None
    if not isinstance(item_id, str):
        raise InvalidInputError(f"{field} must be a string, got {type_name(item_id)}")
    return check_text(item_id, field)


def validate_input(query: object, responses: object) -> tuple[tuple[Message, ...], tuple[str, ...]]:
    """The query as messages and the responses as a tuple, or an InvalidInputError naming what is wrong."""
    return check_query(query), check_responses(responses)


def content_id(query: tuple[Message, ...], responses: tuple[str, ...]) -> str:
    """A stable id from the content, so the same input always gets the same orders and seeds."""
    digest = hashlib.sha256()
    for message in query:
        digest.update(f"{message.role}\x1f{message.content}\x1e".encode(errors="surrogatepass"))
    for text in responses:
        digest.update(f"{text}\x1e".encode(errors="surrogatepass"))
    return digest.hexdigest()[:16]


def _message(value: object, field: str) -> Message:
    if isinstance(value, Message):
        check_text(value.content, f"{field}.content")
        return value
    if not isinstance(value, Mapping):
        raise InvalidInputError(f"{field} must be a message with 'role' and 'content', got {type_name(value)}")
    fields = cast(Mapping[object, object], value)
    unknown = [key for key in fields if key not in _MESSAGE_KEYS]
    if unknown:
        raise InvalidInputError(f"{field} has unknown keys: {', '.join(map(shown, unknown))}")
    for key in _MESSAGE_KEYS:
        if key not in fields:
            raise InvalidInputError(f"{field} has no {key!r}")
    role, content = fields["role"], fields["content"]
    if not isinstance(role, str) or role not in _ROLES:
        raise InvalidInputError(f"{field}.role must be one of 'system', 'user', 'assistant', got {shown(role)}")
    if not isinstance(content, str):
        raise InvalidInputError(f"{field}.content must be a string, got {type_name(content)}")
    return Message.model_validate({"role": role, "content": check_text(content, f"{field}.content")})
