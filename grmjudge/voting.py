"""Pure functions for shuffling, un-shuffling and voting (METHOD.md §7-§8). No I/O, no randomness without a seed.

A permutation ``perm`` lists, for each prompt position m, the caller's index of the response shown there:
``perm[m] = i`` means the response the caller passed at index i is shown as "Response m+1".
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


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


Permutation = tuple[int, ...]


class ResponseSpread(BaseModel):
    """How the kept votes for one response are spread across samples."""

    model_config = ConfigDict(frozen=True)

    min: int
    max: int
    stdev: float


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any printable parts, e.g. (global seed, item id, purpose, index)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan_permutations(n: int, k: int, mode: ShuffleMode, rng: random.Random) -> list[Permutation]:
    """The order shown to the model for each of the k samples."""
    identity = tuple(range(n))
    if mode is ShuffleMode.NONE:
        return [identity] * k
    if mode is ShuffleMode.RANDOM:
        return [tuple(rng.sample(identity, n)) for _ in range(k)]
    base = rng.sample(identity, n)
    rotations = [tuple(base[(m + r) % n] for m in range(n)) for r in range(n)]
    full_blocks, remainder = divmod(k, n)
    if not remainder:
        return rotations * full_blocks  # sample(rotations, 0) draws nothing: the same plan, without the call
    return rotations * full_blocks + rng.sample(rotations, remainder)


def group_by_permutation(permutations: Sequence[Permutation]) -> dict[Permutation, list[int]]:
    """Sample indices that share an order, so each group can be one request with ``n`` = its size."""
    groups: dict[Permutation, list[int]] = {}
    for index, perm in enumerate(permutations):
        groups.setdefault(perm, []).append(index)
    return groups


def apply_permutation(items: Sequence[str], perm: Permutation) -> list[str]:
    """The caller's items in the order shown to the model."""
    return [items[i] for i in perm]


def to_caller_order(prompt_scores: Sequence[int], perm: Permutation) -> tuple[int, ...]:
    """Map scores given in prompt order back to the caller's order."""
    caller = [0] * len(perm)
    for position, original in enumerate(perm):
        caller[original] = prompt_scores[position]
    return tuple(caller)


def default_k_meta(k: int) -> int:
    """The paper's k_meta = k/2, at least one."""
    return max(1, k // 2)


def select_by_meta(meta_scores: Mapping[int, float], k_meta: int) -> list[int]:
    """Sample indices of the ``k_meta`` highest meta scores; equal scores keep the lower sample index."""
    ranked = sorted(meta_scores, key=lambda index: (-meta_scores[index], index))
    return sorted(ranked[:k_meta])


def sum_votes(votes: Sequence[Sequence[int]], n: int) -> list[float]:
    """Plain sum of each response's scores over the given samples (Eq. 14)."""
    return [float(sum(sample[i] for sample in votes)) for i in range(n)]


def pick_best(totals: Sequence[float], rng: random.Random) -> int:
    """Index of the highest total; a tie at the top is broken by the seeded ``rng``."""
    top = max(totals)
    return rng.choice([i for i, total in enumerate(totals) if total == top])


def vote_spread(votes: Sequence[Sequence[int]], n: int) -> list[ResponseSpread]:
    """Per-response min, max and population standard deviation of the votes."""
    columns = [[sample[i] for sample in votes] for i in range(n)]
    validate = ResponseSpread.__pydantic_validator__.validate_python  # ResponseSpread(...) without __init__'s layer
    return [validate({"min": min(c), "max": max(c), "stdev": _pstdev(c)}) for c in columns]


def _pstdev(values: Sequence[int]) -> float:
    # plain float arithmetic: statistics.pstdev's exact fractions cost more than the rest of a vote
    mean = sum(values) / len(values)
    return math.sqrt(sum([(v - mean) ** 2 for v in values]) / len(values))  # a list: faster than a generator
