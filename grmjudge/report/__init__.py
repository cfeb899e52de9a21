"""``grmjudge report``: one self-contained HTML page of a ``grmjudge score`` or ``grmjudge eval`` run.

[`write_report`][grmjudge.report.build.write_report] reads the run (``sources``, ``items``), adds up its summary
and position bias over every item (``summary``), picks the items shown in full (``select``) and writes the page
(``page``, ``svg``, with ``assets/`` inlined). Reading a run needs nothing beyond the core install. The names load
on first use, so registering the command costs the CLI's startup nothing.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grmjudge.report.build import ReportStats, write_report

__all__ = ["ReportStats", "write_report"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("grmjudge.report.build"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
