"""``results.json`` (the [`EvalReport`][grmjudge.eval.report.EvalReport] model) and ``results.md`` of a run.

All scores are fractions in [0, 1] in the JSON (RewardBench 2's Ties formula can reach -0.01 or 1.01 through its
0.01 margin term); the Markdown shows percentages with one decimal and the 95% interval, as the paper's tables.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from grmjudge._version import __version__
from grmjudge.eval.identity import judge_identity, sampling_identity
from grmjudge.eval.items import DataSource, LoadedBenchmark
from grmjudge.eval.outcomes import TiePolicy
from grmjudge.eval.position import PositionBias
from grmjudge.eval.progress import PassCounts
from grmjudge.eval.scorecards import PAPER_COLUMNS
from grmjudge.eval.scoring import CI_LEVEL, SettingScore, percentile_interval

if TYPE_CHECKING:
    from grmjudge.eval.options import EvalOptions
    from grmjudge.eval.runner import AnyJudge, PassPlan

TITLES = {
    "rewardbench": "RewardBench",
    "rewardbench2": "RewardBench 2",
    "ppe-preference": "PPE Preference",
    "ppe-correctness": "PPE Correctness",
    "rmb": "RMB",
    "rm-bench": "RM-Bench",
    "judgebench": "JudgeBench",
    "toy-spct": "Toy SPCT held-out items",
}
COLUMNS = {
    **PAPER_COLUMNS,
    "rewardbench2": "RB2",
    "rm-bench": "RM-Bench",
    "judgebench": "JudgeBench",
    "toy-spct": "Toy",
}


class Number(BaseModel):
    """A score (a fraction) and its bootstrap interval (``None`` with ``bootstrap=0``)."""

    model_config = ConfigDict(frozen=True)

    value: float
    ci: tuple[float, float] | None = None


class SettingReport(BaseModel):
    """One setting's scores, how many calls had no verdict, and the provenance of its numbers.

    ``samples_per_item`` is the mean number of samples an item's calls used; ``vs_fixed`` (adaptive settings)
    the overall score minus that of the fixed-k setting with the same k, with a paired bootstrap interval.
    """

    model_config = ConfigDict(frozen=True)

    name: str
    kind: Literal["greedy", "voting", "metarm", "adaptive", "adaptive-metarm"]
    k: int
    draws: int
    overall: Number
    sections: dict[str, Number]
    subsets: dict[str, Number]
    subset_sizes: dict[str, int]
    extras: dict[str, Number]
    calls: int
    no_verdict_calls: float
    provenance: dict[str, Any]
    samples_per_item: Number | None = None
    vs_fixed: Number | None = None


class PassReport(BaseModel):
    """What a sampling pass cost and how its samples failed."""

    model_config = ConfigDict(frozen=True)

    name: str
    k: int
    meta: bool
    items: int
    calls: int
    resumed_calls: int
    samples: int
    sample_failures: dict[str, int]
    call_errors: dict[str, int]
    requests: int
    prompt_tokens: int
    completion_tokens: int


class CurvePoint(BaseModel):
    """One point of a scaling curve."""

    model_config = ConfigDict(frozen=True)

    k: int
    value: float
    ci: tuple[float, float] | None
    samples: float | None = None


class EvalReport(BaseModel):
    """The content of ``results.json``."""

    model_config = ConfigDict(frozen=True)

    benchmark: str
    column: str
    grmjudge_version: str
    created: str
    data: DataSource
    options: dict[str, str]
    judge: dict[str, Any]
    protocol: dict[str, Any]
    passes: dict[str, PassReport]
    settings: dict[str, SettingReport]
    curve: dict[str, list[CurvePoint]]
    position: dict[str, PositionBias] = {}


def build_report(
    judge: AnyJudge,
    benchmark: LoadedBenchmark,
    ks: Sequence[int],
    opts: EvalOptions,
    policy: TiePolicy,
    passes: Sequence[PassPlan],
    counts: Mapping[str, PassCounts],
    scores: Sequence[SettingScore],
    position: Mapping[str, PositionBias] | None = None,
) -> EvalReport:
    """Assemble the report; ``settings`` holds greedy and every requested k, ``curve`` every computed k."""
    by_pass = {p.name: p for p in passes}
    judge_info = judge_identity(judge)
    settings: dict[str, SettingReport] = {}
    curve: dict[str, list[CurvePoint]] = {}
    for score in scores:
        plan = by_pass["greedy" if score.setting.kind == "greedy" else "sampled"]
        provenance = {
            **judge_info,
            "sampling": sampling_identity(plan.settings, plan.k),
            "pass": plan.name,
            "pass_k": plan.k,
            "k_meta": _k_meta(plan.settings, score.setting.k) if score.setting.kind == "metarm" else None,
            "draws": score.setting.draws,
            "tie_policy": policy.value,
            "data": _data_ref(benchmark.source),
        }
        if score.setting.adaptive:
            provenance["adaptive"] = opts.adaptive.model_dump() if opts.adaptive is not None else None
        report = _setting_report(score, provenance, _vs_fixed(score, scores))
        if score.setting.kind in ("voting", "metarm"):
            samples = report.samples_per_item.value if report.samples_per_item is not None else None
            curve.setdefault(score.setting.kind, []).append(
                CurvePoint(k=report.k, value=report.overall.value, ci=report.overall.ci, samples=samples)
            )
        if score.setting.kind == "greedy" or (score.setting.k > 1 and score.setting.k in ks):
            settings[report.name] = report
    return EvalReport(
        benchmark=benchmark.name,
        column=COLUMNS[benchmark.name],
        grmjudge_version=__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        data=benchmark.source,
        options=benchmark.options,
        judge=judge_info,
        protocol=_protocol(benchmark, opts, policy, ks),
        passes={name: _pass_report(by_pass[name], c) for name, c in counts.items()},
        settings=settings,
        curve=curve,
        position=dict(position or {}),
    )


def _k_meta(settings: Any, k: int) -> int:
    from grmjudge.voting import default_k_meta

    return (settings.k_meta if settings is not None and settings.k_meta else None) or default_k_meta(k)


def _vs_fixed(score: SettingScore, scores: Sequence[SettingScore]) -> Number | None:
    """An adaptive setting's overall minus the fixed-k one's, with an interval from the paired replicates."""
    if not score.setting.adaptive:
        return None
    kind = "metarm" if score.setting.meta else "voting"
    fixed = next((s for s in scores if s.setting.kind == kind and s.setting.k == score.setting.k), None)
    if fixed is None:
        return None
    diffs = [a - b for a, b in zip(score.overall_replicates, fixed.overall_replicates, strict=True)]
    return Number(value=score.card.overall - fixed.card.overall, ci=percentile_interval(diffs) if diffs else None)


def _setting_report(score: SettingScore, provenance: dict[str, Any], vs_fixed: Number | None) -> SettingReport:
    card, ci = score.card, score.intervals

    def number(key: str, value: float) -> Number:
        return Number(value=value, ci=ci.get(key))

    return SettingReport(
        name=score.setting.name,
        kind=score.setting.kind,
        k=score.setting.k,
        draws=score.setting.draws,
        overall=number("overall", card.overall),
        sections={k: number(f"section:{k}", v) for k, v in card.sections.items()},
        subsets={k: number(f"subset:{k}", v) for k, v in card.subsets.items()},
        subset_sizes=dict(score.sizes),
        extras={k: number(f"extra:{k}", v) for k, v in card.extras.items()},
        calls=score.calls,
        no_verdict_calls=score.no_verdict,
        provenance=provenance,
        samples_per_item=(
            Number(value=sum(score.samples) / len(score.samples), ci=score.samples_ci) if score.samples else None
        ),
        vs_fixed=vs_fixed,
    )


def _protocol(benchmark: LoadedBenchmark, opts: EvalOptions, policy: TiePolicy, ks: Sequence[int]) -> dict[str, Any]:
    protocol: dict[str, Any] = {
        "ks": list(ks),
        "tie_policy": policy.value,
        "tie_policy_requested": opts.tie_policy.value,
        "response_order": "seeded shuffle per sample (settings.shuffle); evaluation ties seeded by (seed, call id)",
        "subset_draws": opts.draws,
        "bootstrap_resamples": opts.bootstrap,
        "ci_level": CI_LEVEL,
        "input": "listwise: each item's responses judged together in one call",
    }
    if benchmark.name == "rmb":
        protocol["rmb_bon"] = benchmark.options.get("rmb_bon", "listwise")
    if benchmark.name == "judgebench":
        protocol["input"] = "two games per pair: (A, B) then (B, A), shown in that order; a pair is correct if net > 0"
    if benchmark.name == "ppe-correctness":
        protocol["input"] = "one call per sampled conflict pair"
    if benchmark.name == "rm-bench":
        protocol["input"] = "listwise: the 3 chosen and 3 rejected responses in one call, filling the 3x3 matrix"
    return protocol


def _pass_report(plan: PassPlan, counts: PassCounts) -> PassReport:
    return PassReport(
        name=plan.name,
        k=plan.k,
        meta=plan.meta,
        items=counts.items,
        calls=counts.calls,
        resumed_calls=counts.resumed_calls,
        samples=counts.samples,
        sample_failures=dict(counts.failures.most_common()),
        call_errors=dict(counts.errors.most_common()),
        requests=counts.requests,
        prompt_tokens=counts.prompt_tokens,
        completion_tokens=counts.completion_tokens,
    )


def _data_ref(source: DataSource) -> dict[str, Any]:
    if source.kind == "hub":
        return {"hub": [h.model_dump() for h in source.hub]}
    return {"files": [f.model_dump() for f in source.files]}


# --- Markdown ------------------------------------------------------------------------------------------------


def percent(number: Number | None) -> str:
    """``86.0 (84.9-87.1)``, or ``-`` when there is no number."""
    if number is None:
        return "–"
    text = f"{100 * number.value:.1f}"
    if number.ci is not None:
        text += f" ({100 * number.ci[0]:.1f}–{100 * number.ci[1]:.1f})"
    return text


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def setting_label(name: str) -> str:
    """``Greedy``, ``Voting@8``, ``MetaRM@32``, ``Adaptive@32``, ``Adaptive-MetaRM@32``."""
    words = {"voting": "Voting", "metarm": "MetaRM", "adaptive": "Adaptive"}
    kind, at, k = name.partition("@")
    return {"greedy": "Greedy"}.get(name, "-".join(words.get(w, w) for w in kind.split("-")) + at + k)


def write_markdown(report: EvalReport, path: Path) -> None:
    """Write ``results.md``: the headline table, sections, subsets and the scaling curve."""
    path.write_text("\n".join(markdown(report)) + "\n", encoding="utf-8")


def markdown(report: EvalReport) -> list[str]:
    """The lines of ``results.md``."""
    lines = [f"# {TITLES[report.benchmark]}: grmjudge eval", "", *_about(report), ""]
    headline = [*PAPER_COLUMNS.values(), "Overall"] if report.column in PAPER_COLUMNS.values() else [report.column]
    rows = [
        [setting_label(name)] + [percent(s.overall) if col == report.column else "–" for col in headline]
        for name, s in report.settings.items()
    ]
    lines += ["## Headline", "", *table(["Setting", *headline], rows), ""]
    if report.column in PAPER_COLUMNS.values():
        lines += ["Overall needs all four benchmarks: `grmjudge eval summary RUN_DIR...` combines runs.", ""]
    sections = list(dict.fromkeys(k for s in report.settings.values() for k in [*s.sections, *s.extras]))
    if sections:
        rows = [
            [
                setting_label(name),
                *(percent(s.sections.get(k) or s.extras.get(k)) for k in sections),
                percent(s.overall),
            ]
            for name, s in report.settings.items()
        ]
        lines += ["## Sections", "", *table(["Setting", *sections, report.column], rows), ""]
    lines += _subset_table(report)
    lines += _curve_table(report)
    lines += _compute_table(report)
    lines += _position_tables(report)
    return lines


def _about(report: EvalReport) -> list[str]:
    judge = report.judge
    meta = judge.get("meta")
    data = report.data
    source = (
        ", ".join(f"{h.id} [{h.split}] revision {h.revision or 'default'}" for h in data.hub)
        if data.kind == "hub"
        else ", ".join(f"{Path(f.path).name} (sha256 {f.sha256[:12]})" for f in data.files)
    )
    excluded = "".join(f"; excluded {n} ({why})" for why, n in data.excluded.items())
    lines = [
        f"- Judge: {judge['type']} `{judge['model']}` on backend `{judge['backend']}`"
        + (f"; meta RM `{meta['type']}`" if meta else ""),
        f"- Data: {source}; {data.rows} rows, {data.items} items{excluded}",
        f"- Protocol: tie policy `{report.protocol['tie_policy']}`; {report.protocol['input']}",
        f"- Intervals: {report.protocol['bootstrap_resamples']} bootstrap resamples, "
        f"{int(100 * report.protocol['ci_level'])}%; k < {max(report.protocol['ks'])} averages "
        f"{report.protocol['subset_draws']} random subsets of the sampled pass",
    ]
    for p in report.passes.values():
        failures = ", ".join(f"{k} {v}" for k, v in p.sample_failures.items()) or "none"
        lines.append(
            f"- Pass `{p.name}` (k={p.k}{', meta' if p.meta else ''}): {p.calls} calls, {p.samples} samples, "
            f"failed samples: {failures}; call errors: {sum(p.call_errors.values())}"
        )
    return lines


def _subset_table(report: EvalReport) -> list[str]:
    names = list(dict.fromkeys(k for s in report.settings.values() for k in s.subsets))
    if len(names) < 2:
        return []
    first = next(iter(report.settings.values()))
    rows = [
        [name, str(first.subset_sizes.get(name.split(" ")[0] if report.benchmark == "rm-bench" else name, ""))]
        + [percent(s.subsets.get(name)) for s in report.settings.values()]
        for name in names
    ]
    return ["## Subsets", "", *table(["Subset", "n", *map(setting_label, report.settings)], rows), ""]


def _curve_table(report: EvalReport) -> list[str]:
    if not report.curve:
        return []
    kinds = list(report.curve)
    ks = sorted({p.k for points in report.curve.values() for p in points})
    by = {(kind, p.k): p for kind, points in report.curve.items() for p in points}
    rows = [[str(k), *(percent(_point(by.get((kind, k)))) for kind in kinds)] for k in ks]
    header = ["k", *("Voting@k" if kind == "voting" else "MetaRM@k" for kind in kinds)]
    return ["## Scaling curve", "", *table(header, rows), ""]


def _compute_table(report: EvalReport) -> list[str]:
    """Accuracy per compute: every fixed-k point and the adaptive settings, by mean samples per item."""
    adaptive = [s for s in report.settings.values() if s.kind.startswith("adaptive")]
    if not adaptive:
        return []
    rows = [
        [setting_label(f"{kind}@{p.k}"), _mean(Number(value=p.samples)) if p.samples else "–", percent(_point(p)), "–"]
        for kind, points in report.curve.items()
        for p in points
    ]
    rows += [
        [setting_label(s.name), _mean(s.samples_per_item), percent(s.overall), _points(s.vs_fixed)] for s in adaptive
    ]
    policy: dict[str, Any] = adaptive[0].provenance.get("adaptive") or {}
    about = ", ".join(f"{key} {value}" for key, value in policy.items())
    header = ["Setting", "Samples per item", report.column, "Δ vs fixed k (points)"]
    return ["## Accuracy per compute", "", f"Adaptive policy: {about}.", "", *table(header, rows), ""]


def _position_tables(report: EvalReport) -> list[str]:
    """Per pass: wins by shown position, flip rates and accuracy by the labelled best's position."""
    lines: list[str] = []
    for name, bias in report.position.items():
        if not bias.rows:
            continue
        lines += [f"### Pass `{name}`", ""]
        width = max(row.n for row in bias.rows)
        positions = [f"pos {i + 1}" for i in range(width)]
        rows = [
            [str(row.n), "wins", str(row.decisive), str(row.ties), *_shares(row.win_share, width)] for row in bias.rows
        ]
        rows += [
            [
                str(row.n),
                "right when best shown here",
                str(sum(row.labelled)),
                "",
                *_shares(row.accuracy_by_label_position, width),
            ]
            for row in bias.rows
            if sum(row.labelled)
        ]
        lines += [*table(["Responses", "Share", "Samples", "Ties", *positions], rows), ""]
        lines += [
            f"Flip rate: {_share_text(bias.flip_across_orders)} of {bias.pairs_across_orders} sample pairs shown in "
            f"different orders pick different winners; {_share_text(bias.flip_within_order)} of "
            f"{bias.pairs_within_order} pairs shown in the same order (the sampling noise).",
            "",
        ]
    if not lines:
        return []
    about = "From the shuffled samples themselves, valid samples only; without a bias each position wins 1/n."
    return ["## Position bias", "", about, "", *lines]


def _share_text(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _shares(values: Sequence[float | None], width: int) -> list[str]:
    return [_share_text(v) for v in values] + ["–"] * (width - len(values))


def _mean(number: Number | None) -> str:
    """``5.43 (5.10–5.80)``: a plain mean with its interval."""
    if number is None:
        return "–"
    return f"{number.value:.2f}" + (f" ({number.ci[0]:.2f}–{number.ci[1]:.2f})" if number.ci is not None else "")


def _points(number: Number | None) -> str:
    """A difference of fractions in signed percentage points, with its interval."""
    if number is None:
        return "–"
    text = f"{100 * number.value:+.1f}"
    if number.ci is not None:
        text += f" ({100 * number.ci[0]:+.1f} to {100 * number.ci[1]:+.1f})"
    return text


def _point(point: CurvePoint | None) -> Number | None:
    return None if point is None else Number(value=point.value, ci=point.ci)
