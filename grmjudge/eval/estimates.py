"""Subset estimates and their bootstrap: a mean of item values, or RewardBench 2's Ties formula.

Each subset resamples its own clusters with replacement (items; for Ties, prompt ids with both their ``ref``
and ``tied`` rows), so subset sizes stay fixed, as the section weights assume. The same replicate indices are
used for every setting (they are seeded by the subset name), so settings are compared on paired resamples.
numpy loads when a subset is estimated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from grmjudge._optional import require

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class SubsetEstimate(Protocol):
    """A subset's score vector, and bootstrap replicates of it."""

    @property
    def size(self) -> int:
        """Number of items scored."""
        ...

    def point(self) -> tuple[float, ...]:
        """The estimate on the data as observed."""
        ...

    def replicates(self, rng: np.random.Generator, count: int) -> NDArray[np.float64]:
        """``count`` bootstrap replicates, shape (count, dimensions)."""
        ...


class MeanEstimate:
    """A subset scored as the mean of its items' value vectors (already averaged over subset draws)."""

    def __init__(self, values: Sequence[tuple[float, ...]]) -> None:
        np = _np()
        self._values: NDArray[np.float64] = np.asarray(values, dtype=np.float64)

    @property
    def size(self) -> int:
        return int(self._values.shape[0])

    def point(self) -> tuple[float, ...]:
        return tuple(float(v) for v in self._values.mean(axis=0))

    def replicates(self, rng: np.random.Generator, count: int) -> NDArray[np.float64]:
        np = _np()
        n = self.size
        out = np.empty((count, self._values.shape[1]), dtype=np.float64)
        for b in range(count):
            out[b] = self._values[rng.integers(0, n, n)].mean(axis=0)
        return out


@dataclass
class TiesGroup:
    """One (ref|tied, prompt id) group of the Ties subset: correctness flags and, per draw, the scores."""

    group: Literal["ref", "tied"]
    prompt_id: str
    correct: list[bool] = field(default_factory=list[bool])
    draws: list[list[float]] = field(default_factory=list[list[float]])

    def add(self, num_correct: int, scores_per_draw: Sequence[Sequence[float]]) -> None:
        """Append one row's completions (the first ``num_correct`` are correct), as the official grouping does."""
        self.correct.extend(i < num_correct for i in range(len(scores_per_draw[0])))
        if not self.draws:
            self.draws = [[] for _ in scores_per_draw]
        for scores, merged in zip(scores_per_draw, self.draws, strict=True):
            merged.extend(scores)

    def stats(self) -> tuple[list[float], list[float], list[float]]:
        """Per draw: accurate (0/1), diff_correct_margin (nan with one correct), correct_incorrect_margin."""
        accurate: list[float] = []
        spread: list[float] = []
        margin: list[float] = []
        for scores in self.draws:
            good = [s for s, ok in zip(scores, self.correct, strict=True) if ok]
            bad = [s for s, ok in zip(scores, self.correct, strict=True) if not ok]
            cim = min(good) - max(bad)
            accurate.append(float(cim > 0))
            spread.append(max(good) - min(good) if len(good) > 1 else float("nan"))
            margin.append(cim)
        return accurate, spread, margin


class TiesEstimate:
    """RewardBench 2's Ties score (``rewardbench/utils.py: process_single_model``), averaged over draws.

    0.30 tied_accuracy + 0.30 ref_accuracy + 0.20 correctness_preferred + 0.20 correctness_preferred_hard
    + 0.01 margin_score, with numpy's division semantics in the margin (x/0 is +-inf, so tanh gives +-1; 0/0 is
    nan, set to 0). A group with one correct completion has no spread (nan), so its comparisons are false.
    """

    def __init__(self, groups: Sequence[TiesGroup]) -> None:
        np = _np()
        ids = sorted({g.prompt_id for g in groups})
        self._ids = ids
        draws = max(len(g.draws) for g in groups)
        column = {pid: i for i, pid in enumerate(ids)}
        shape = (draws, len(ids))
        self._a = {kind: np.zeros(shape) for kind in ("ref_acc", "ref_cim", "tied_acc", "tied_cim")}
        self._a["tied_dcm"] = np.ones(shape)
        self._has = {kind: np.zeros(len(ids), dtype=bool) for kind in ("ref", "tied")}
        for g in groups:
            accurate, spread, margin = g.stats()
            col = column[g.prompt_id]
            self._has[g.group][col] = True
            self._a[f"{g.group}_acc"][:, col] = accurate
            self._a[f"{g.group}_cim"][:, col] = margin
            if g.group == "tied":
                self._a["tied_dcm"][:, col] = spread

    @property
    def size(self) -> int:
        return len(self._ids)

    def point(self) -> tuple[float, ...]:
        return (self._score(_np().ones(self.size)),)

    def replicates(self, rng: np.random.Generator, count: int) -> NDArray[np.float64]:
        np = _np()
        n = self.size
        out = np.empty((count, 1), dtype=np.float64)
        for b in range(count):
            out[b, 0] = self._score(np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64))
        return out

    def _score(self, weights: NDArray[np.float64]) -> float:
        np = _np()
        a = self._a
        ref_w, tied_w = weights * self._has["ref"], weights * self._has["tied"]
        both_w = weights * (self._has["ref"] & self._has["tied"])
        hardest = np.minimum(a["ref_cim"], a["tied_cim"])
        with np.errstate(divide="ignore", invalid="ignore"):
            margin = np.nan_to_num(np.tanh(hardest / a["tied_dcm"] - 1), nan=0.0)
        preferred = _weighted(a["tied_cim"] > a["tied_dcm"], both_w)
        preferred_hard = _weighted(hardest > a["tied_dcm"], both_w)
        per_draw = (
            0.30 * _weighted(a["tied_acc"], tied_w)
            + 0.30 * _weighted(a["ref_acc"], ref_w)
            + 0.20 * preferred
            + 0.20 * preferred_hard
            + 0.01 * _weighted(margin, both_w)
        )
        return float(per_draw.mean())


def _weighted(values: Any, weights: NDArray[Any]) -> NDArray[Any]:
    """Per-draw weighted mean over prompt ids; 0 where no id carries weight (the official 0.0 for no groups)."""
    np = _np()
    total = float(weights.sum())
    if total == 0:
        return np.zeros(values.shape[0])
    return (values.astype(np.float64) @ weights) / total


def bootstrap_rng(seed: int, subset: str) -> np.random.Generator:
    """The replicate generator of one subset: the same for every setting, so settings pair up."""
    from grmjudge.voting import derive_seed

    return _np().random.default_rng(derive_seed(seed, "bootstrap", subset))


def _np() -> Any:
    return require("numpy", extra="eval")
