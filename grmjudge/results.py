"""What a judge call returns: per-sample records, the vote, and the provenance needed to reproduce it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, computed_field

from grmjudge.adaptive import AdaptivePolicy, StopReason
from grmjudge.parsing import split_judgement
from grmjudge.types import FinishReason, Usage
from grmjudge.voting import ResponseSpread

_PARTS = "_judgement_parts"
"""Where a sample keeps its split judgement: a ``__dict__`` entry that is no field (pydantic's equality, hash,
repr and serialisation read the fields alone)."""


class SampleError(BaseModel):
    """Why a sample cast no vote.

    ``kind="parse"``: the text was generated but is not a valid judgement; ``reason`` is a
    [`ParseFailureReason`][grmjudge.parsing.ParseFailureReason] value. ``kind="backend"``: the backend failed after its
    retries; ``reason`` is the exception class name (``RateLimitError``, ``ServerError``, ...).
    """

    model_config = ConfigDict(frozen=True)

    kind: Literal["parse", "backend"]
    reason: str
    message: str


class Sample(BaseModel):
    """One sampled judgement.

    ``permutation[m]`` is the caller's index of the response shown as "Response m+1". ``scores`` are in the
    caller's order (already un-shuffled). ``seed`` is the sample's own: its request's seed plus its position
    among the request's ``n`` choices (vLLM seeds choice i with ``seed + i``). ``attempt`` counts re-samples of
    this slot (0 = first try), ``earlier_errors`` keeps why the earlier attempts failed, and ``cached`` says the
    text came from the cache.
    """

    model_config = ConfigDict(frozen=True)

    index: int
    permutation: tuple[int, ...]
    text: str | None = None
    scores: tuple[int, ...] | None = None
    error: SampleError | None = None
    finish_reason: FinishReason | None = None
    seed: int | None = None
    attempt: int = 0
    cached: bool = False
    earlier_errors: tuple[SampleError, ...] = ()
    meta_score: float | None = None
    kept: bool = False

    @property
    def valid(self) -> bool:
        """Whether the sample produced scores."""
        return self.scores is not None

    @computed_field
    @property
    def principles(self) -> str | None:
        """The judgement's "Specific Criteria" part, if it has one."""
        return self._parts[0]

    @computed_field
    @property
    def critique(self) -> str | None:
        """The judgement's "Analysis" part, if it has one."""
        return self._parts[1]

    @property
    def _parts(self) -> tuple[str | None, str | None]:
        """(principles, critique), split once per text and kept beside the fields.

        The entry holds the text it was split from, so a ``model_copy`` that replaces the text splits again.
        """
        cached: tuple[str | None, tuple[str | None, str | None]] | None = self.__dict__.get(_PARTS)
        if cached is None or cached[0] is not self.text:
            cached = (self.text, split_judgement(self.text) if self.text else (None, None))
            vars(self)[_PARTS] = cached
        return cached[1]


class NoVerdict(BaseModel):
    """Why a call produced no scores: no sample was valid. ``failures`` counts samples by error reason."""

    model_config = ConfigDict(frozen=True)

    reason: Literal["all_samples_failed"] = "all_samples_failed"
    failures: dict[str, int]

    @property
    def message(self) -> str:
        """A one-line explanation."""
        detail = ", ".join(f"{reason}: {count}" for reason, count in sorted(self.failures.items()))
        return f"no valid judgement among the samples ({detail})"


class AdaptiveProvenance(BaseModel):
    """How an adaptive call sampled: ``samples`` drawn (at most ``provenance.k``) in ``rounds``, and why it stopped.

    ``stop`` is ``settled`` (the leader was settled) or ``k_reached`` (all k were drawn).
    """

    model_config = ConfigDict(frozen=True)

    policy: AdaptivePolicy
    samples: int
    rounds: int
    stop: StopReason


class Provenance(BaseModel):
    """Everything that determined the result, so it can be audited and reproduced.

    ``markers_neutralised`` counts the lines of the query and responses that looked like template
    structure or a turn and were quoted, plus the chat special tokens that were broken (docs/security.md);
    ``marked_responses`` lists the caller indices of the responses that held any. Both stay 0 and empty for
    honest text, so a non-zero count flags an input worth a look. ``adaptive`` is set for adaptive calls only;
    ``k`` is then the most samples the call could draw.
    """

    model_config = ConfigDict(frozen=True)

    grmjudge_version: str
    backend: str
    model: str
    template_id: str
    template_hash: str
    k: int
    meta: bool
    k_meta: int | None
    shuffle: str
    seed: int
    item_id: str
    temperature: float
    top_p: float | None
    max_tokens: int
    max_resample_rounds: int
    markers_neutralised: int = 0
    marked_responses: tuple[int, ...] = ()
    adaptive: AdaptiveProvenance | None = None


class ScoreResult(BaseModel):
    """The verdict for one query and its responses.

    ``scores`` are summed votes per response in the caller's order (``None`` when there is no verdict);
    ``best`` is their argmax, ties broken by a seeded draw; ``samples`` keeps every judgement, valid or not.
    """

    model_config = ConfigDict(frozen=True)

    scores: list[float] | None
    best: int | None
    n_valid: int
    n_kept: int
    spread: list[ResponseSpread] | None
    no_verdict: NoVerdict | None
    samples: list[Sample]
    usage: Usage
    provenance: Provenance

    @property
    def ok(self) -> bool:
        """Whether the call produced a verdict."""
        return self.scores is not None


class ItemError(BaseModel):
    """An item of a batch that raised instead of producing a result (bad input, backend misconfiguration)."""

    model_config = ConfigDict(frozen=True)

    type: str
    message: str


class BatchResult(BaseModel):
    """One item of a batch, in input order: its result, or the error it raised instead.

    Returned by [`Judge.score_many`][grmjudge.judge.Judge.score_many].
    """

    model_config = ConfigDict(frozen=True)

    index: int
    item_id: str
    result: ScoreResult | None = None
    error: ItemError | None = None
