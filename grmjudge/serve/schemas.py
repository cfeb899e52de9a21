"""The bodies the service reads and writes, as pydantic models: they validate requests and give the OpenAPI schema."""

from __future__ import annotations

import math
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, SkipValidation, field_validator, model_validator

from grmjudge.integrations.rewarder import Mode, Normalisation
from grmjudge.types import Message

Conversation = str | list[Message]
"""A query: a string, or chat messages ending with the user's turn."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Responses(_Body):
    """A query (or ``messages``) and the responses to judge."""

    query: Conversation | None = None
    messages: list[Message] | None = None
    responses: list[str] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_query(self) -> Self:
        if (self.query is None) == (self.messages is None):
            raise ValueError("give exactly one of query and messages")
        return self

    @property
    def conversation(self) -> Conversation:
        """The query, whichever field carried it."""
        query = self.query if self.query is not None else self.messages
        assert query is not None  # checked by the validator
        return query


class ScoreItem(_Responses):
    """One item: a query (or ``messages``) and the responses to judge; ``id`` seeds and names it."""

    id: str | None = None


class ScoreRequest(_Responses):
    """``POST /v1/score``: one item; ``k`` and ``adaptive`` default to the service's ``--k`` and ``--adaptive``."""

    k: int | None = Field(default=None, ge=1)
    meta: bool = False
    adaptive: bool | None = None
    item_id: str | None = None

    def item(self) -> ScoreItem:
        """The request's item, checked like a batch item."""
        return ScoreItem(query=self.query, messages=self.messages, responses=self.responses, id=self.item_id)


class BatchRequest(_Body):
    """``POST /v1/score/batch``: items judged with the same ``k``; a malformed item is that item's error line."""

    items: list[SkipValidation[ScoreItem]] = Field(min_length=1)
    k: int | None = Field(default=None, ge=1)
    meta: bool = False
    adaptive: bool | None = None


class RewardsRequest(_Body):
    """``POST /v1/rewards``: rewards for completions of one prompt.

    Completions that share a ``group_id`` (a GRPO group, verl's ``uid``) are collected across requests until
    ``group_size`` of them have arrived, or the service's group wait has passed, and judged together. Without a
    ``group_id`` the request's completions are the group. ``reference`` is needed in ``reference`` mode.
    """

    prompt: Conversation
    completions: list[str] = Field(min_length=1)
    group_id: str | None = Field(default=None, min_length=1, max_length=256)
    group_size: int | None = Field(default=None, ge=1)
    reference: str | None = None
    mode: Mode | None = None
    normalisation: Normalisation | None = None
    fallback: float | None = None

    @field_validator("fallback")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("fallback must be a finite number")
        return value


class RewardsResponse(_Body):
    """One reward per completion, in order; ``no_verdict`` marks those that got the fallback (or ``null``)."""

    rewards: list[float | None]
    no_verdict: list[bool]


class OpenRLHFRequest(BaseModel):
    """OpenRLHF's remote reward request (``--reward.remote_url``): full texts, their prompts, optional labels.

    Each ``query`` is the prompt followed by the response, as the trainer decoded it; the response is what
    follows ``prompts[i]``. ``labels`` are reference answers in ``reference`` mode. Other keys are ignored.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    query: list[str] = Field(min_length=1)
    prompts: list[str]
    labels: list[Any] | None = None


class OpenRLHFResponse(_Body):
    """What OpenRLHF reads back: ``rewards`` (and the same values as ``scores``), plus per-text ``extra_logs``."""

    rewards: list[float]
    scores: list[float]
    extra_logs: dict[str, list[float]]


class ErrorDetail(_Body):
    """An error: the SDK's exception class name (or the service's own), a message, and the field at fault."""

    type: str
    message: str
    field: str | None = None


class ErrorBody(_Body):
    """Every 4xx and 5xx answer of the service."""

    error: ErrorDetail
