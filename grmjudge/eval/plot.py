"""The run's plots: ``scaling.png`` (accuracy against k) and ``compute.png`` (accuracy per compute).

``scaling.png`` draws Voting@k and MetaRM@k with greedy as a reference line; ``compute.png`` draws accuracy against
mean samples per item, the adaptive settings beside the fixed-k curves.

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


def _figure() -> tuple[Any, Any]:
    """A figure on the Agg canvas and its axes."""
    require("matplotlib", extra="eval")
    figure_module: Any = importlib.import_module("matplotlib.figure")
    agg: Any = importlib.import_module("matplotlib.backends.backend_agg")
    figure = figure_module.Figure(figsize=(6.4, 4.2), dpi=120)
    agg.FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure: Any, axes: Any, report: EvalReport, xlabel: str, title: str, path: Path) -> None:
    """Label the axes the way both plots do, then write the figure to ``path`` (PNG)."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(f"{report.column} (%)")
    axes.set_title(f"{title}: {report.judge['model']}")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path, format="png")


def _interval(value: float, ci: tuple[float, float] | None, scale: float) -> list[float]:
    return [scale * (value - ci[0]), scale * (ci[1] - value)] if ci else [0.0, 0.0]


def write_compute_plot(report: EvalReport, path: Path) -> None:
    """Draw accuracy against mean samples per item into ``path`` (PNG): fixed-k curves and adaptive points."""
    figure, axes = _figure()
    for kind, points in report.curve.items():
        label, color, marker = STYLE[kind]
        shown = [p for p in points if p.samples is not None]
        errors = list(zip(*(_interval(p.value, p.ci, 100) for p in shown), strict=True))
        xs = [p.samples for p in shown]
        axes.errorbar(xs, [100 * p.value for p in shown], yerr=errors, label=label, color=color, marker=marker)
    for setting in report.settings.values():
        spent = setting.samples_per_item
        if not setting.kind.startswith("adaptive") or spent is None:
            continue
        color = STYLE["metarm" if setting.kind.endswith("metarm") else "voting"][1]
        xerr = [[e] for e in _interval(spent.value, spent.ci, 1)]
        yerr = [[e] for e in _interval(setting.overall.value, setting.overall.ci, 100)]
        label = "Adaptive-MetaRM" if setting.kind.endswith("metarm") else "Adaptive"
        axes.errorbar(
            [spent.value],
            [100 * setting.overall.value],
            xerr=xerr,
            yerr=yerr,
            color=color,
            marker="*",
            markersize=12,
            linestyle="none",
            label=f"{label} (k ≤ {setting.k})",
        )
    axes.set_xscale("log", base=2)
    _save(figure, axes, report, "mean samples per item", f"{report.column} per compute", path)


def write_plot(report: EvalReport, path: Path) -> None:
    """Draw the scaling curve of ``report`` into ``path`` (PNG)."""
    figure, axes = _figure()
    for kind, points in report.curve.items():
        label, color, marker = STYLE[kind]
        ks = [p.k for p in points]
        values = [100 * p.value for p in points]
        errors = list(zip(*(_interval(p.value, p.ci, 100) for p in points), strict=True))
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
    _save(figure, axes, report, "k (samples per item)", report.column, path)
