"""Which items the page shows in full: at most ``limit``, the most interesting first.

The rule, stated on the page: items that raised or have no verdict first, then verdicts that are wrong against
the label, then the lowest vote agreement, then the highest score spread; ties keep the run's order. The summary
always covers every item; only the per-item detail is bounded, so a 100k-item run gives a page of a few MB.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from grmjudge.report.items import ItemView

RULE = (
    "items with an error or no verdict first, then verdicts wrong against the label, then the lowest vote "
    "agreement, then the highest score spread; ties keep the run's order"
)

Key = tuple[bool, bool, float, int, int]


def interest(item: ItemView, order: int) -> Key:
    """The sort key of the rule above (smaller is more interesting)."""
    agreement = item.agreement
    return (item.verdict, not item.wrong, 1.0 if agreement is None else agreement, -item.spread, order)


def most_interesting(keys: Iterable[Key], limit: int) -> set[int]:
    """The run-order positions of the ``limit`` most interesting items."""
    return {key[-1] for key in heapq.nsmallest(limit, keys)}
