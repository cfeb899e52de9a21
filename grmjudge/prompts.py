"""Prompt templates and the pure functions that fill them (METHOD.md §3-§4).

A filled template becomes the content of **one user message**; the backend (or the server) applies the
model's own chat template. Text from callers (conversation turns and responses) passes through
[`neutralise`][grmjudge.prompts.neutralise], so no line of it can pass for a template marker, a turn or a
score box (docs/security.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grmjudge import _template_text
from grmjudge._neutralise import neutralise_counted
from grmjudge.exceptions import InvalidInputError
from grmjudge.parsing import ScoreParser, parse_best_index, parse_boxed_scores
from grmjudge.types import Message

Query = str | Sequence[Message | Mapping[str, Any]]
"""A query: a plain string (one user turn) or a chat whose last turn is the user's."""

HINT_SUFFIX = "The best response is: Response {index}"
"""Hinted-sampling suffix (METHOD.md §3.5), appended after a newline; ``index`` is 1-based, as shown."""

_ROLE_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}
_PLACEHOLDER = re.compile(r"\{(context|responses)\}")


class PromptTemplate(BaseModel):
    """A judge prompt: its text, score range and parser.

    ``text`` holds ``{context}`` (the rendered conversation) and ``{responses}`` (the response blocks) once
    each. ``numbered`` blocks read ``[The Begin of Response i]``; unnumbered blocks take one response.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    id: str = Field(min_length=1)
    text: str
    score_range: tuple[int, int] = (1, 10)
    numbered: bool = True
    parser: ScoreParser = Field(default=parse_boxed_scores, exclude=True)

    @field_validator("text")
    @classmethod
    def _has_placeholders(cls, text: str) -> str:
        for placeholder in ("{context}", "{responses}"):
            if text.count(placeholder) != 1:
                raise ValueError(f"template text must contain {placeholder} exactly once")
        return text

    @model_validator(mode="after")
    def _range_is_ordered(self) -> PromptTemplate:
        lo, hi = self.score_range
        if lo > hi:
            raise ValueError(f"score_range {self.score_range} is empty")
        return self

    @property
    def hash(self) -> str:
        """A short content hash: two templates with the same hash render and parse identically."""
        # computed once per template (every result records it); the entry keeps what it was computed from, so a
        # model_copy that changes a field computes it again
        source = (self.text, self.score_range, self.numbered, self.parser)
        cached: tuple[tuple[object, ...], str] | None = self.__dict__.get("_content_hash")
        if cached is not None and cached[0] == source:
            return cached[1]
        parser_name = f"{self.parser.__module__}.{getattr(self.parser, '__qualname__', repr(self.parser))}"
        key = "\x00".join([self.text, repr(self.score_range), repr(self.numbered), parser_name])
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        vars(self)["_content_hash"] = (source, digest)
        return digest

    def check_response_count(self, n: int) -> None:
        """Raise [`InvalidInputError`][grmjudge.exceptions.InvalidInputError] if the template cannot take n."""
        if not self.numbered and n != 1:
            raise InvalidInputError(f"template {self.id!r} takes exactly one response, got {n}")

    def render(self, query: Query, responses: Sequence[str], *, hint_best: int | None = None) -> str:
        """Fill the template with the conversation and the responses in the order given.

        ``hint_best`` (0-based position in ``responses``) appends the hinted-sampling suffix.
        """
        self.check_response_count(len(responses))
        context = render_context(normalise_query(query))
        blocks = render_response_blocks(responses, numbered=self.numbered)
        text = _fill(self.text, context, blocks)
        if hint_best is not None:
            text += "\n" + HINT_SUFFIX.format(index=hint_best + 1)
        return text


DEFAULT_TEMPLATE = PromptTemplate(id="deepseek-grm-default", text=_template_text.DEFAULT_TEXT)
"""The DeepSeek-GRM template for one, two or many responses, scores 1-10 (paper App. G)."""

SINGLE_RESPONSE_TEMPLATE = PromptTemplate(
    id="deepseek-grm-single-0-1", text=_template_text.SINGLE_TEXT, score_range=(0, 1), numbered=False
)
"""The training template for one response with a 0/1 correctness score."""

LLM_AS_JUDGE_TEMPLATE = PromptTemplate(
    id="llm-as-a-judge", text=_template_text.BASELINE_TEXT, score_range=(0, 1), parser=parse_best_index
)
"""The paper's LLM-as-a-Judge baseline: picks the best index; votes are one-hot (numbered blocks, inferred)."""

META_RM_PROMPT = _template_text.META_TEXT
"""The user turn of the meta-RM input; the judged sample's text is the assistant turn."""

BUILTIN_TEMPLATES = {t.id: t for t in (DEFAULT_TEMPLATE, SINGLE_RESPONSE_TEMPLATE, LLM_AS_JUDGE_TEMPLATE)}


def neutralise(text: str) -> str:
    r"""Quote every line of caller text that could pass for template structure; keep the rest byte for byte.

    A line that, look-alikes folded, reads as a ``#### Section ####`` header, a ``[The Begin/End of
    Response i]`` delimiter, a ``User:`` / ``Assistant:`` / ``System:`` turn or the hint line gets the prefix
    ``> ``; a chat special token (``<|im_end|>``) gets a space after its ``<``; ``\boxed{`` becomes
    ``\boxed {``. docs/security.md says what this does and does not defend.
    """
    return neutralise_counted(text)[0]


class MarkerCount(NamedTuple):
    """How much of an input [`neutralise`][grmjudge.prompts.neutralise] had to defuse."""

    total: int
    """Lines quoted and special tokens broken, in the query and the responses together."""
    responses: tuple[int, ...]
    """Caller indices of the responses that had any."""


def count_markers(query: Sequence[Message], responses: Sequence[str]) -> MarkerCount:
    """Count the marker-like text in an input, so a result can flag it (score boxes are not counted)."""
    in_query = sum(neutralise_counted(m.content)[1] for m in query)
    per_response = [neutralise_counted(text)[1] for text in responses]
    return MarkerCount(in_query + sum(per_response), tuple(i for i, n in enumerate(per_response) if n))


def normalise_query(query: Query) -> tuple[Message, ...]:
    """Turn a string or a chat into messages, checking that the last turn is the user's query."""
    if isinstance(query, str):
        messages: tuple[Message, ...] = (Message(role="user", content=query),)
    else:
        try:
            messages = tuple(m if isinstance(m, Message) else Message.model_validate(m) for m in query)
        except ValidationError as exc:
            raise InvalidInputError(f"query messages must have a role and a string content: {exc}") from exc
    if not messages:
        raise InvalidInputError("query is empty: give a string or at least one user message")
    if messages[-1].role != "user":
        raise InvalidInputError(f"the last turn of the query must be the user's, got {messages[-1].role!r}")
    if not messages[-1].content.strip():
        raise InvalidInputError("the user's query is empty")
    return messages


def render_response_blocks(responses: Sequence[str], *, numbered: bool) -> str:
    """Render ``[The Begin of Response i]`` blocks back to back, or the one unnumbered block."""
    if not numbered:
        return f"[The Begin of Response]\n{neutralise(responses[0])}\n[The End of Response]"
    return "\n".join(
        f"[The Begin of Response {i}]\n{neutralise(text)}\n[The End of Response {i}]"
        for i, text in enumerate(responses, start=1)
    )


def render_context(messages: Sequence[Message]) -> str:
    """Render turns one per line as ``User: ...`` / ``Assistant: ...``; a system turn reads ``System: ...``."""
    return "\n".join(f"{_ROLE_LABELS[m.role]}: {neutralise(m.content)}" for m in messages)


def judge_messages(
    template: PromptTemplate, query: Query, responses: Sequence[str], *, hint_best: int | None = None
) -> tuple[Message, ...]:
    """The chat sent to the GRM: the filled template as one user message."""
    return (Message(role="user", content=template.render(query, responses, hint_best=hint_best)),)


def meta_messages(query: Query, responses: Sequence[str], judgement: str) -> tuple[Message, ...]:
    """The meta-RM input: the meta template as the user turn and the whole judgement as the assistant turn.

    ``responses`` must be in the order the judged sample saw them, since its critique names them by position.
    """
    context = render_context(normalise_query(query))
    blocks = render_response_blocks(responses, numbered=True)
    prompt = _fill(META_RM_PROMPT, context, blocks)
    return (Message(role="user", content=prompt), Message(role="assistant", content=judgement))


def _fill(template_text: str, context: str, blocks: str) -> str:
    """Both placeholders in one pass, so a ``{responses}`` inside the caller's text stays text."""
    parts = _TEMPLATE_PARTS.get(template_text)
    if parts is None:  # split once per template text: the pieces between placeholders, and the placeholders
        parts = _PLACEHOLDER.split(template_text)
        if len(_TEMPLATE_PARTS) < _KEPT_TEMPLATES:
            _TEMPLATE_PARTS[template_text] = parts
    pieces = parts.copy()  # text, placeholder name, text, ...: the names sit at the odd positions
    for i in range(1, len(pieces), 2):
        pieces[i] = context if pieces[i] == "context" else blocks
    return "".join(pieces)


_TEMPLATE_PARTS: dict[str, list[str]] = {}
"""Template texts split at their placeholders: the built-in ones and the first ``_KEPT_TEMPLATES`` others."""
_KEPT_TEMPLATES = 64
