"""Combine several runs' ``results.json`` into the paper's main table: RB, PPE-P, PPE-C, RMB and Overall.

Overall is the plain mean of the four benchmarks' overall scores (DeepSeek-GRM, METHOD.md §9). The benchmarks
are independent samples, so Overall's interval combines theirs by a normal approximation: each interval gives a
standard error (width / 2 x 1.96), and Overall's is the root sum of squares over 4. It is marked approximate.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from grmjudge.eval.report import EvalReport, Number, percent, setting_label, table
from grmjudge.eval.scorecards import PAPER_COLUMNS, paper_overall
from grmjudge.exceptions import ConfigurationError

Z_95 = 1.959964


class SummaryRow(BaseModel):
    """One setting across benchmarks."""

    model_config = ConfigDict(frozen=True)

    setting: str
    scores: dict[str, Number]
    overall: Number | None


class Summary(BaseModel):
    """The content of ``summary.json``."""

    model_config = ConfigDict(frozen=True)

    runs: dict[str, str]
    rows: list[SummaryRow]
    overall_interval: str = "normal approximation from the four benchmarks' bootstrap intervals"


def read_reports(directories: Sequence[str | Path]) -> list[EvalReport]:
    """Every ``results.json`` named, one per benchmark."""
    reports: list[EvalReport] = []
    for directory in directories:
        path = Path(directory) / "results.json"
        try:
            reports.append(EvalReport.model_validate(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, ValidationError) as exc:
            raise ConfigurationError(f"{path}: not a grmjudge eval results file ({exc})") from exc
    names = [r.benchmark for r in reports]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigurationError(f"more than one run of {', '.join(repeated)}: give one run per benchmark")
    return reports


def summarize(reports: Sequence[EvalReport], directories: Sequence[str | Path]) -> Summary:
    """One row per setting name found in any run; Overall where all four paper benchmarks have that setting."""
    names = list(dict.fromkeys(name for r in reports for name in r.settings))
    rows: list[SummaryRow] = []
    for name in names:
        scores = {r.benchmark: r.settings[name].overall for r in reports if name in r.settings}
        rows.append(SummaryRow(setting=name, scores=scores, overall=_overall(scores)))
    runs = {r.benchmark: str(d) for r, d in zip(reports, directories, strict=True)}
    return Summary(runs=runs, rows=rows)


def _overall(scores: dict[str, Number]) -> Number | None:
    value = paper_overall({name: n.value for name, n in scores.items()})
    if value is None:
        return None
    parts = [scores[name] for name in PAPER_COLUMNS]
    if any(p.ci is None for p in parts):
        return Number(value=value)
    se = math.sqrt(sum(((p.ci[1] - p.ci[0]) / (2 * Z_95)) ** 2 for p in parts if p.ci)) / len(parts)
    return Number(value=value, ci=(value - Z_95 * se, value + Z_95 * se))


def write_summary(summary: Summary, out: Path) -> None:
    """Write ``summary.json`` and ``summary.md`` into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
    columns = list(PAPER_COLUMNS)
    others = sorted({b for row in summary.rows for b in row.scores if b not in PAPER_COLUMNS})
    header = ["Setting", *(PAPER_COLUMNS[c] for c in columns), "Overall", *others]
    rows = [
        [setting_label(row.setting), *(percent(row.scores.get(c)) for c in columns), percent(row.overall)]
        + [percent(row.scores.get(b)) for b in others]
        for row in summary.rows
    ]
    lines = [
        "# grmjudge eval summary",
        "",
        *table(header, rows),
        "",
        f"Overall interval: {summary.overall_interval}.",
        "",
    ]
    lines += [f"- `{name}`: {path}" for name, path in summary.runs.items()]
    (out / "summary.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
