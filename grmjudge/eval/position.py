"""Position bias, measured on the shuffled samples a run already drew (no extra requests).

Every sample shows the responses in its own order (``permutation[m]`` is the caller's index shown at position m)
and scores them in the caller's order, so each valid sample with a unique top score names the position it
preferred. Three figures follow, over valid samples (kept or not: the bias belongs to the GRM, not to the meta RM):

- **wins by shown position**, per response count n: the share of decisive samples whose winner sat at each
  position; without a bias every share is 1/n (the balanced shuffle shows each response at each position equally
  often);
- **flip rate**: over pairs of decisive samples of the same call, the share whose winners differ, for pairs that
  saw different orders and, as the noise floor of sampling, pairs that saw the same order; a gap between the two
  is what the order changed;
- **accuracy by the labelled best's position**, when labels exist: the share of decisive samples that picked the
  labelled best, by the position it was shown in.

A sample whose top score is tied names no position and is counted under ``ties``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict


class PositionRow(BaseModel):
    """The figures of the calls with ``n`` responses; shares are fractions, ``None`` where nothing was counted."""

    model_config = ConfigDict(frozen=True)

    n: int
    decisive: int
    ties: int
    win_share: list[float | None]
    labelled: list[int]
    accuracy_by_label_position: list[float | None]


class PositionBias(BaseModel):
    """A pass's (or a run's) position-bias figures; see the module docstring for what each one counts."""

    model_config = ConfigDict(frozen=True)

    rows: list[PositionRow]
    pairs_across_orders: int
    flip_across_orders: float | None
    pairs_within_order: int
    flip_within_order: float | None


def winner(scores: Sequence[float] | None) -> int | None:
    """The caller's index of the unique top score, or ``None`` (no scores, or a tie at the top)."""
    if not scores:
        return None
    top = max(scores)
    tops = [i for i, s in enumerate(scores) if s == top]
    return tops[0] if len(tops) == 1 else None


@dataclass
class _Counts:
    wins: list[int]
    labelled: list[int]
    right: list[int]
    ties: int = 0


@dataclass
class PositionTally:
    """Adds up the figures one call at a time, so a run of any size streams through it."""

    _by_n: dict[int, _Counts] = field(default_factory=dict[int, _Counts])
    _across: list[int] = field(default_factory=lambda: [0, 0])
    _within: list[int] = field(default_factory=lambda: [0, 0])

    def add(self, samples: Iterable[tuple[Sequence[int], Sequence[float] | None]], best: int | None = None) -> None:
        """One call's samples as (permutation, scores in the caller's order); ``best`` is its labelled best."""
        decided: list[tuple[tuple[int, ...], int]] = []
        for permutation, scores in samples:
            if scores is None:
                continue
            n = len(permutation)
            counts = self._by_n.setdefault(n, _Counts([0] * n, [0] * n, [0] * n))
            won = winner(scores)
            if won is None:
                counts.ties += 1
                continue
            order = tuple(permutation)
            counts.wins[order.index(won)] += 1
            if best is not None and 0 <= best < n:
                shown = order.index(best)
                counts.labelled[shown] += 1
                counts.right[shown] += won == best
            decided.append((order, won))
        self._count_flips(decided)

    def _count_flips(self, decided: list[tuple[tuple[int, ...], int]]) -> None:
        """Pairs of decisive samples, by whether they saw the same order and agreed, counted without listing them."""
        orders = Counter(order for order, _ in decided)
        winners = Counter(won for _, won in decided)
        cells = Counter(decided)
        pairs = _pairs(len(decided))
        within = sum(_pairs(m) for m in orders.values())
        agree_within = sum(_pairs(m) for m in cells.values())
        agree = sum(_pairs(m) for m in winners.values())
        self._within[0] += within - agree_within
        self._within[1] += within
        self._across[0] += (pairs - within) - (agree - agree_within)
        self._across[1] += pairs - within

    def figures(self) -> PositionBias:
        """The shares so far."""
        rows: list[PositionRow] = []
        for n, c in sorted(self._by_n.items()):
            decisive = sum(c.wins)
            rows.append(
                PositionRow(
                    n=n,
                    decisive=decisive,
                    ties=c.ties,
                    win_share=[_share(w, decisive) for w in c.wins],
                    labelled=list(c.labelled),
                    accuracy_by_label_position=[_share(r, t) for r, t in zip(c.right, c.labelled, strict=True)],
                )
            )
        return PositionBias(
            rows=rows,
            pairs_across_orders=self._across[1],
            flip_across_orders=_share(*self._across),
            pairs_within_order=self._within[1],
            flip_within_order=_share(*self._within),
        )


def _pairs(m: int) -> int:
    return m * (m - 1) // 2


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None
