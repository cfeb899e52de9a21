"""``write_report``: read a run twice, for the summary over every item and for the items shown; write the page."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grmjudge.report.page import render
from grmjudge.report.select import Key, interest, most_interesting
from grmjudge.report.sources import open_run
from grmjudge.report.summary import Summary

DEFAULT_ITEMS = 500
"""Items shown in full by default: a page of a few MB at k = 8, quick to open on a laptop."""


@dataclass(frozen=True)
class ReportStats:
    """What was written: items in the run, items shown in full, and the page's size in bytes."""

    items: int
    shown: int
    size: int


def write_report(
    run: str | Path,
    out: str | Path,
    *,
    inputs: str | Path | None = None,
    data: str | Path | None = None,
    pass_name: str | None = None,
    items: int = DEFAULT_ITEMS,
) -> ReportStats:
    """Write the HTML report of ``run`` (a ``grmjudge score`` output file or a ``grmjudge eval`` folder) to ``out``.

    ``inputs`` is the scored input file (for a score run's queries and responses), ``data`` an eval run's data
    (default: the files its ``results.json`` names), ``pass_name`` the eval pass shown (default ``sampled``), and
    ``items`` how many items are shown in full; the summary always covers every item.
    """
    source = open_run(
        Path(run),
        inputs=None if inputs is None else Path(inputs),
        data=None if data is None else Path(data),
        pass_name=pass_name,
    )
    summary = Summary()
    keys: list[Key] = []
    for order, item in source.items():
        summary.add(item)
        keys.append(interest(item, order))
    chosen = most_interesting(keys, items)
    order_of = {key[-1]: key for key in keys if key[-1] in chosen}
    picked = [(order_of[order], item) for order, item in source.items(chosen)]
    picked.sort(key=lambda pair: pair[0])
    ordered = [item for _, item in picked]
    texts = source.texts({item.id for item in ordered})
    page = render(
        f"grmjudge report: {source.name}",
        summary,
        ordered,
        texts,
        notes=source.notes,
        results=source.results,
        about=source.about(),
    )
    encoded = page.encode("utf-8")
    Path(out).write_bytes(encoded)
    return ReportStats(items=summary.items, shown=len(ordered), size=len(encoded))
