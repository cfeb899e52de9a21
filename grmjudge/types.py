"""The data that crosses the backend boundary: chat messages, generation requests and their results."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    role: Role
    content: str


class Usage(BaseModel):
    """Token and request accounting; ``None`` token counts mean the backend did not report them."""

    model_config = ConfigDict(frozen=True)

    requests: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            requests=self.requests + other.requests,
            prompt_tokens=_add_optional(self.prompt_tokens, other.prompt_tokens),
            completion_tokens=_add_optional(self.completion_tokens, other.completion_tokens),
        )


def _add_optional(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


class GenerationRequest(BaseModel):
    """One prompt to generate ``n`` completions for.

    ``messages`` is the chat to continue; backends that take raw text render it themselves.
    ``seed`` is the request's seed; backends that fan out derive one seed per completion from it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: tuple[Message, ...]
    n: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int = Field(default=2048, ge=1)
    seed: int | None = None
    extra_body: Mapping[str, Any] | None = None


FinishReason = Literal["stop", "length", "other"]


class Completion(BaseModel):
    """One generated text and why generation stopped (``length`` means it was cut off)."""

    model_config = ConfigDict(frozen=True)

    text: str
    finish_reason: FinishReason = "stop"


class Generation(BaseModel):
    """The completions returned for one [`GenerationRequest`][grmjudge.types.GenerationRequest], with usage."""

    model_config = ConfigDict(frozen=True)

    completions: tuple[Completion, ...]
    usage: Usage = Usage(requests=1)
    model: str | None = None
