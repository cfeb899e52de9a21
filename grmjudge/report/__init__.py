"""``grmjudge report``: one self-contained HTML page of a ``grmjudge score`` or ``grmjudge eval`` run.

[`write_report`][grmjudge.report.build.write_report] reads the run (``sources``, ``items``), adds up its summary
and position bias over every item (``summary``), picks the items shown in full (``select``) and writes the page
(``page``, ``svg``, with ``assets/`` inlined). Reading a run needs nothing beyond the core install.
"""

from grmjudge.report.build import ReportStats, write_report

__all__ = ["ReportStats", "write_report"]
