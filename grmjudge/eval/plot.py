"""``scaling.png``: overall accuracy against k for Voting@k and MetaRM@k, with greedy as a reference line.

matplotlib loads here only, with the Agg canvas and no pyplot, so nothing global (the user's backend) changes.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grmjudge._optional import require

if TYPE_CHECKING:
    from grmjudge.eval.report import EvalReport

STYLE = {"voting": ("Voting@k", "tab:blue", "o"), "metarm": ("MetaRM@k", "tab:red", "s")}


def write_plot(report: EvalReport, path: Path) -> None:
    """Draw the scaling curve of ``report`` into ``path`` (PNG)."""
    require("matplotlib", extra="eval")
    figure_module: Any = importlib.import_module("matplotlib.figure")
    agg: Any = importlib.import_module("matplotlib.backends.backend_agg")
    figure = figure_module.Figure(figsize=(6.4, 4.2), dpi=120)
    agg.FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for kind, points in report.curve.items():
        label, color, marker = STYLE[kind]
        ks = [p.k for p in points]
        values = [100 * p.value for p in points]
        errors = [
            [100 * (p.value - p.ci[0]) if p.ci else 0.0 for p in points],
            [100 * (p.ci[1] - p.value) if p.ci else 0.0 for p in points],
        ]
        axes.errorbar(ks, values, yerr=errors, label=label, color=color, marker=marker, capsize=3)
    greedy = report.settings.get("greedy")
    if greedy is not None:
        axes.axhline(100 * greedy.overall.value, color="gray", linestyle="--", label="Greedy")
        if greedy.overall.ci is not None:
            low, high = greedy.overall.ci
            axes.axhspan(100 * low, 100 * high, color="gray", alpha=0.15)
    if report.curve:
        axes.set_xscale("log", base=2)
        all_ks = sorted({p.k for points in report.curve.values() for p in points})
        axes.set_xticks(all_ks, [str(k) for k in all_ks])
    axes.set_xlabel("k (samples per item)")
    axes.set_ylabel(f"{report.column} (%)")
    axes.set_title(f"{report.column}: {report.judge['model']}")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path, format="png")
