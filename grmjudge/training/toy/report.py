"""The toy run's report: a table in the shape of the paper's Table 3 and a plot of accuracy against k.

Rows are the three GRMs (cold start, RFT, RFT+GRPO); columns Greedy, Voting@1, Voting@8 and MetaRM@8 accuracy
on the held-out items (Voting@k and MetaRM@k at the run's largest k where that is below 8, as in ``--quick``),
each with its bootstrap 95% interval, read from the ``results.json`` that `grmjudge.eval.harness.evaluate`
wrote for each GRM; below it, each claimed ordering with its paired bootstrap (`claims`). The plot draws
Voting@k and MetaRM@k against k, one colour per GRM.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from grmjudge._optional import require
from grmjudge.eval.report import EvalReport, Number
from grmjudge.exceptions import ConfigurationError
from grmjudge.training.toy.claims import ClaimResult
from grmjudge.training.toy.pipeline import GRM_STAGES, read_stages

__all__ = [
    "ROW_NAMES",
    "columns",
    "load_reports",
    "render_claims",
    "render_table",
    "table_rows",
    "write_markdown",
    "write_plot",
]

ROW_NAMES = {"cold_start": "Cold start (SFT on teacher)", "rft": "RFT", "grpo": "RFT + GRPO"}
TABLE_K = 8
"""The k of the table's Voting@k and MetaRM@k columns, as in the paper's Table 3 (less if the run drew fewer)."""
TABLE_FILE = "report.md"
PLOT_FILE = "scaling.png"
_COLORS = {"cold_start": "tab:gray", "rft": "tab:blue", "grpo": "tab:red"}


def load_reports(out: str | Path) -> dict[str, EvalReport]:
    """Each GRM's evaluation report; a run whose ``eval`` stage has not finished raises `ConfigurationError`."""
    directory = Path(out)
    if "eval" not in read_stages(directory):
        raise ConfigurationError(
            f"{directory} has no finished toy run: run `python -m grmjudge.training.toy run` first"
        )
    reports: dict[str, EvalReport] = {}
    for stage in GRM_STAGES:
        path = directory / "eval" / stage / "results.json"
        reports[stage] = EvalReport.model_validate_json(path.read_text(encoding="utf-8"))
    return reports


def columns(reports: dict[str, EvalReport]) -> dict[str, str]:
    """Setting -> column name: greedy, Voting@1, and Voting@k and MetaRM@k at ``TABLE_K`` or the run's largest k."""
    largest = max(point.k for report in reports.values() for point in report.curve.get("voting", []))
    k = min(TABLE_K, largest)
    return {"greedy": "Greedy", "voting@1": "Voting@1", f"voting@{k}": f"Voting@{k}", f"metarm@{k}": f"MetaRM@{k}"}


def table_rows(reports: dict[str, EvalReport]) -> dict[str, dict[str, Number | None]]:
    """Row name -> column name -> accuracy with interval (``None`` where the run did not reach that k)."""
    shown = columns(reports)
    return {
        ROW_NAMES[stage]: {column: _number(reports[stage], setting) for setting, column in shown.items()}
        for stage in GRM_STAGES
    }


def _number(report: EvalReport, setting: str) -> Number | None:
    found = report.settings.get(setting)
    if found is not None:
        return found.overall
    kind, _, k = setting.partition("@")
    point = next((p for p in report.curve.get(kind, []) if str(p.k) == k), None)
    return None if point is None else Number(value=point.value, ci=point.ci)


def _cell(number: Number | None) -> str:
    if number is None:
        return "n/a"
    if number.ci is None:
        return f"{100 * number.value:.1f}"
    return f"{100 * number.value:.1f} [{100 * number.ci[0]:.1f}, {100 * number.ci[1]:.1f}]"


def render_table(reports: dict[str, EvalReport]) -> str:
    """The Markdown table: accuracy (%) with bootstrap 95% intervals."""
    names = list(columns(reports).values())
    header = ["GRM", *names]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, cells in table_rows(reports).items():
        lines.append("| " + " | ".join([row, *(_cell(cells[c]) for c in names)]) + " |")
    first = next(iter(reports.values()))
    lines += [
        "",
        f"{first.data.items} held-out items (2-4 responses each; accuracy = the labelled best gets the strictly "
        "highest summed score), bootstrap 95% intervals.",
    ]
    return "\n".join(lines) + "\n"


def render_claims(results: list[ClaimResult]) -> str:
    """The Markdown table of the claimed orderings: difference in points, paired 95% interval, share above zero."""
    lines = [
        "| Claim | Difference (points) | Paired 95% interval | Replicates > 0 | Holds |",
        "|---|---|---|---|---|",
    ]
    for result in results:
        low, high = result.ci
        lines.append(
            f"| {result.claim.text} | {100 * result.difference:+.1f} | [{100 * low:+.1f}, {100 * high:+.1f}] "
            f"| {100 * result.share_above_zero:.1f}% | {'yes' if result.holds else 'no'} |"
        )
    lines += [
        "",
        "Paired bootstrap on the same held-out items (resampled within each task family, as the table's intervals); "
        "a claim holds when its whole interval is above zero.",
    ]
    return "\n".join(lines) + "\n"


def write_markdown(out: str | Path, reports: dict[str, EvalReport], claims: list[ClaimResult]) -> Path:
    """Write ``report.md`` beside the run: the table, the claims, then each stage's time and summary."""
    directory = Path(out)
    stages = read_stages(directory)
    lines = ["# Toy SPCT reproduction", "", render_table(reports), "## Claims", "", render_claims(claims)]
    lines += ["## Stages", ""]
    lines += ["| Stage | Seconds | Summary |", "|---|---|---|"]
    for name, entry in stages.items():
        lines.append(f"| {name} | {entry['seconds']:.0f} | `{json.dumps(entry['summary'])}` |")
    lines.append(f"\nTotal: {sum(e['seconds'] for e in stages.values()) / 60:.1f} minutes.")
    path = directory / TABLE_FILE
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_plot(out: str | Path, reports: dict[str, EvalReport]) -> Path:
    """``scaling.png``: Voting@k (solid) and MetaRM@k (dashed) against k for each GRM, greedy as a cross at k=1."""
    require("matplotlib", extra="eval")
    figure_module: Any = importlib.import_module("matplotlib.figure")
    agg: Any = importlib.import_module("matplotlib.backends.backend_agg")
    figure = figure_module.Figure(figsize=(9.0, 4.4), dpi=120)
    agg.FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for stage, report in reports.items():
        color = _COLORS[stage]
        greedy = report.settings.get("greedy")
        if greedy is not None:
            value = 100 * greedy.overall.value
            axes.plot([1], [value], "x", color=color, markersize=9, label=f"{ROW_NAMES[stage]}, greedy")
        for kind, style in (("voting", "-"), ("metarm", "--")):
            points = report.curve.get(kind, [])
            if not points:  # a GRM judged greedily only
                continue
            label = f"{ROW_NAMES[stage]}, {'Voting' if kind == 'voting' else 'MetaRM'}@k"
            axes.plot(
                [p.k for p in points], [100 * p.value for p in points], style, color=color, marker="o", label=label
            )
    axes.set_xscale("log", base=2)
    ks = sorted({p.k for report in reports.values() for points in report.curve.values() for p in points})
    axes.set_xticks(ks, [str(k) for k in ks])
    axes.set_xlabel("k (sampled judgements per item)")
    axes.set_ylabel("held-out accuracy (%)")
    axes.set_title("Toy SPCT: inference-time scaling")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small")  # beside the curves, not on them
    figure.tight_layout()
    path = Path(out) / PLOT_FILE
    figure.savefig(path, format="png")
    return path
