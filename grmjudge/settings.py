"""Frozen, typed settings of a judge: how it samples and votes (backends carry their own retry settings)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from grmjudge.prompts import DEFAULT_TEMPLATE, PromptTemplate
from grmjudge.voting import ShuffleMode

__all__ = ["JudgeSettings", "ShuffleMode"]


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
