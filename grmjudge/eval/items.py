"""What a benchmark becomes before judging: items, the judge calls each needs, and what each item's label says.

An item is the unit a benchmark scores (a pair, a best-of-n group, a 3x3 style matrix, a JudgeBench pair); a
call is one judge request on one list of responses. Most items need one call. JudgeBench pairs need two (both
orders) and RMB best-of-n groups under the pairwise protocol need one per loser.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict

from grmjudge.rows import HubSource, SourceFile
from grmjudge.types import Message


@dataclass(frozen=True)
class Call:
    """One judge request. ``id`` seeds the judge's shuffles and the evaluation's tie-breaks.

    ``fixed_order`` shows the responses exactly as listed (JudgeBench's two games); otherwise the judge shuffles.
    """

    id: str
    query: tuple[Message, ...]
    responses: tuple[str, ...]
    fixed_order: bool = False


@dataclass(frozen=True)
class BestLabel:
    """The response at ``best`` is labelled best (pairs, best-of-n lists, conflict pairs)."""

    best: int


@dataclass(frozen=True)
class AllPairsLabel:
    """Best-of-n judged pair by pair: each call shows (best, one loser) with the best at index 0."""


@dataclass(frozen=True)
class StyleMatrixLabel:
    """RM-Bench: responses are 3 chosen then 3 rejected, each ordered concise, detailed, detailed markdown."""

    styles: int = 3


@dataclass(frozen=True)
class GamesLabel:
    """JudgeBench: two calls, (A, B) then (B, A); ``a_wins`` is the label "A>B"."""

    a_wins: bool


@dataclass(frozen=True)
class TiesLabel:
    """RewardBench 2 Ties: the first ``num_correct`` responses are correct; groups pair by ``prompt_id``."""

    group: Literal["ref", "tied"]
    prompt_id: str
    num_correct: int


Label = BestLabel | AllPairsLabel | StyleMatrixLabel | GamesLabel | TiesLabel


@dataclass(frozen=True)
class EvalItem:
    """One scored unit of a benchmark: its subset, the calls it needs and its label."""

    id: str
    subset: str
    calls: tuple[Call, ...]
    label: Label
    where: str = ""


class DataSource(BaseModel):
    """Where a benchmark's rows came from: local files with hashes, or hub datasets with revisions."""

    model_config = ConfigDict(frozen=True)

    kind: Literal["files", "hub"]
    files: tuple[SourceFile, ...] = ()
    hub: tuple[HubSource, ...] = ()
    rows: int
    items: int
    excluded: dict[str, int] = {}


@dataclass
class LoadedBenchmark:
    """A benchmark ready to judge: its items in file order, where they came from, and how it was loaded."""

    name: str
    items: list[EvalItem]
    source: DataSource
    options: dict[str, str] = field(default_factory=dict[str, str])

    def calls(self) -> list[Call]:
        """Every call of every item, in item order."""
        return [call for item in self.items for call in item.calls]

    def limited(self, limit: int | None) -> LoadedBenchmark:
        """The first ``limit`` items (all of them for ``None``), for quick runs."""
        if limit is None or limit >= len(self.items):
            return self
        items = self.items[:limit]
        source = self.source.model_copy(update={"items": len(items)})
        return LoadedBenchmark(self.name, items, source, {**self.options, "limit": str(limit)})
