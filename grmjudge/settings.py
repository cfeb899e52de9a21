"""Frozen, typed settings: how a judge samples and votes, and how backends retry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from grmjudge.prompts import DEFAULT_TEMPLATE, PromptTemplate

Sleep = Callable[[float], Awaitable[None]]


class ShuffleMode(StrEnum):
    """How the response order is permuted before each sample.

    ``balanced``: cyclic rotations of one seeded random order, so each response sits in each position equally
    often when k is a multiple of n (two responses, k=8: four samples per order). Few distinct orders also
    means few requests. ``random``: an independent random permutation per sample, as in the paper.
    ``none``: the caller's order for every sample.
    """

    BALANCED = "balanced"
    RANDOM = "random"
    NONE = "none"


class RetryPolicy(BaseModel):
    """Transport retries for one backend request.

    Connection errors, timeouts and 408/409/429/5xx are retried with exponential, jittered backoff; a server's
    ``Retry-After`` is honoured up to ``max_retry_after`` seconds. Other 4xx answers are not retried.
    ``sleep`` replaces ``anyio.sleep`` (tests inject a recorder instead of waiting).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_retries: int = Field(default=2, ge=0)
    initial_backoff: float = Field(default=0.5, ge=0.0)
    max_backoff: float = Field(default=8.0, ge=0.0)
    max_retry_after: float = Field(default=60.0, ge=0.0)
    jitter: bool = True
    sleep: Sleep | None = Field(default=None, exclude=True)


class RateLimits(BaseModel):
    """Client-side flow control for an HTTP backend.

    ``requests_per_minute`` and ``tokens_per_minute`` are token buckets (tokens estimated before sending as
    prompt characters / 4 + ``max_tokens`` x ``n``). With ``adaptive``, the requests in flight are halved on
    each 429/503 (at most once a second) and grow back by one per round of successes, never below
    ``min_concurrency``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests_per_minute: float | None = Field(default=None, gt=0)
    tokens_per_minute: float | None = Field(default=None, gt=0)
    adaptive: bool = True
    min_concurrency: int = Field(default=1, ge=1)


class JudgeSettings(BaseModel):
    """Everything that shapes a judgement besides the query, the responses, k and meta.

    ``temperature=None`` means greedy (0.0) for k=1 and 0.5 for k>1, as in the paper.
    ``max_resample_rounds`` caps how often failed samples are re-asked (temperature > 0 only).
    ``retry_budget_per_item`` caps the transport retries of all the requests of one item (``None``: only the
    backend's per-request ``RetryPolicy.max_retries`` applies).
    ``max_k`` is the largest k a call accepts: a mistyped k (``10**6``) would otherwise send requests for
    millions of samples. The paper goes to k=32; raise it deliberately for more.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    template: PromptTemplate = DEFAULT_TEMPLATE
    temperature: float | None = Field(default=None, ge=0.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int = Field(default=2048, ge=1)
    shuffle: ShuffleMode = ShuffleMode.BALANCED
    seed: int = 0
    k_meta: int | None = Field(default=None, ge=1)
    max_resample_rounds: int = Field(default=1, ge=0)
    retry_budget_per_item: int | None = Field(default=None, ge=0)
    raise_on_no_verdict: bool = False
    max_k: int = Field(default=1024, ge=1)
    extra_body: Mapping[str, Any] | None = None

    def temperature_for(self, k: int) -> float:
        """The sampling temperature for a call with ``k`` samples."""
        if self.temperature is not None:
            return self.temperature
        return 0.0 if k == 1 else 0.5
