"""One judged item as the report sees it, read from a ``grmjudge score`` output line or an eval journal line.

Both files hold the same [`ScoreResult`][grmjudge.results.ScoreResult] fields under slightly different shapes; this
module turns either into an [`ItemView`][grmjudge.report.items.ItemView] and derives what the report sorts and
filters on: each sample's winner, the vote agreement, the score spread and whether the verdict is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from grmjudge.eval.position import winner


@dataclass(frozen=True)
class SampleView:
    """One sample as the page shows it.

    ``shown[m]`` is the caller's index of the response at position m; ``scores`` are in the caller's order.
    """

    shown: tuple[int, ...]
    scores: tuple[int, ...] | None
    principles: str | None
    critique: str | None
    text: str | None
    failure: str | None
    meta: float | None
    kept: bool


@dataclass(frozen=True)
class ItemView:
    """One judged item (an eval call); ``label`` is the caller's index of the labelled best, if known."""

    id: str
    section: str | None
    label: int | None
    scores: tuple[float, ...] | None
    best: int | None
    failures: Mapping[str, int]
    error: str | None
    samples: tuple[SampleView, ...]
    requests: int
    prompt_tokens: int | None
    completion_tokens: int | None
    meta: bool

    @property
    def verdict(self) -> bool:
        """Whether the item has summed scores."""
        return self.scores is not None

    @cached_property
    def winners(self) -> list[int | None]:
        """Each valid sample's preferred response (caller's index), ``None`` for a tie at its top."""
        return [winner(s.scores) for s in self.samples if s.scores is not None]

    @property
    def agreement(self) -> float | None:
        """The share of valid samples whose own winner is the verdict's best (``None`` without a verdict)."""
        winners = self.winners
        if self.best is None or not winners:
            return None
        return sum(w == self.best for w in winners) / len(winners)

    @property
    def split(self) -> bool:
        """Whether the valid samples disagree on the best (a tie inside a sample counts as disagreement)."""
        winners = self.winners
        return len(set(winners)) > 1 or (bool(winners) and winners[0] is None)

    @cached_property
    def spread(self) -> int:
        """The largest range of one response's scores across the valid samples (0 with fewer than two)."""
        valid = [s.scores for s in self.samples if s.scores is not None]
        if len(valid) < 2:
            return 0
        return max(max(column) - min(column) for column in zip(*valid, strict=True))

    @property
    def wrong(self) -> bool:
        """Whether the verdict's best differs from the label (an item without a verdict is not counted wrong)."""
        return self.label is not None and self.best is not None and self.best != self.label


def sample_view(raw: Mapping[str, Any]) -> SampleView:
    """A sample of either file; the texts are absent when the run was written without them."""
    error: Any = raw.get("error")
    failure = None
    if error is not None:
        failure = f"parse:{error['reason']}" if error["kind"] == "parse" else str(error["reason"])
    scores: Any = raw.get("scores")
    return SampleView(
        shown=tuple(int(i) for i in raw["permutation"]),
        scores=None if scores is None else tuple(int(s) for s in scores),
        principles=raw.get("principles"),
        critique=raw.get("critique"),
        text=raw.get("text"),
        failure=failure,
        meta=raw.get("meta_score"),
        kept=bool(raw.get("kept")),
    )


def item_view(
    item_id: str, result: Mapping[str, Any] | None, *, label: int | None, section: str | None, error: str | None = None
) -> ItemView:
    """An item from its result fields (``None`` with ``error`` for an item that raised)."""
    if result is None:
        return ItemView(item_id, section, label, None, None, {}, error or "error", (), 0, None, None, False)
    usage: Mapping[str, Any] = result.get("usage") or {}
    no_verdict: Mapping[str, Any] | None = result.get("no_verdict")
    scores: Sequence[float] | None = result.get("scores")
    provenance: Mapping[str, Any] = result.get("provenance") or {}
    samples: Sequence[Mapping[str, Any]] = result.get("samples") or ()
    return ItemView(
        id=item_id,
        section=section,
        label=label,
        scores=None if scores is None else tuple(float(s) for s in scores),
        best=result.get("best"),
        failures=dict(no_verdict["failures"]) if no_verdict else {},
        error=None,
        samples=tuple(sample_view(s) for s in samples),
        requests=int(usage.get("requests") or 0),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        meta=bool(provenance.get("meta")),
    )
