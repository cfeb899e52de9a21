"""``evaluate``: run a judge over a benchmark (greedy and one sampled pass), score every setting, write the outputs.

Outputs in ``out``: ``items.jsonl`` (every judged call, written as it arrives; a rerun resumes from it),
``results.json`` (every setting's scores with bootstrap intervals and provenance), ``results.md`` (tables in
the shape of the paper's), ``scaling.png`` (accuracy against k) and, with ``adaptive``, ``compute.png``
(accuracy against mean samples per item).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import anyio.to_thread

from grmjudge.eval.calls import labelled_best, newest_lines
from grmjudge.eval.identity import judge_identity, sampling_identity
from grmjudge.eval.items import LoadedBenchmark
from grmjudge.eval.journal import fingerprint, read_journal
from grmjudge.eval.options import EvalOptions
from grmjudge.eval.outcomes import resolve_policy
from grmjudge.eval.plot import write_compute_plot, write_plot
from grmjudge.eval.position import PositionBias, PositionTally
from grmjudge.eval.progress import PassCounts, Progress
from grmjudge.eval.report import EvalReport, build_report, write_markdown
from grmjudge.eval.runner import AnyJudge, PassPlan, RunOptions, run_pass
from grmjudge.eval.scaling import CallRecord, plan_settings
from grmjudge.eval.scoring import ScoringPlan, SettingScore, score_setting
from grmjudge.exceptions import ConfigurationError
from grmjudge.judge import Judge
from grmjudge.settings import ShuffleMode

JOURNAL = "items.jsonl"
RESULTS = "results.json"
TABLES = "results.md"
PLOT = "scaling.png"
COMPUTE_PLOT = "compute.png"


async def evaluate(
    judge: AnyJudge,
    benchmark: LoadedBenchmark,
    out: str | Path,
    *,
    ks: Sequence[int] = (1,),
    options: EvalOptions | None = None,
    progress: TextIO | None = None,
) -> EvalReport:
    """Judge ``benchmark`` and write its scores for greedy (k=1 in ``ks``) and Voting/MetaRM at every other k.

    The largest k is sampled once per call; smaller k are scored from subsets of those samples. A judge with a
    meta scorer also gets MetaRM@k. ``progress`` (e.g. ``sys.stderr``) receives the progress line.
    """
    opts = options or EvalOptions()
    ks = _check_ks(judge, ks)
    if not benchmark.items:
        raise ConfigurationError(f"{benchmark.name}: no items to judge")
    directory = Path(out)
    await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
    passes = _plan_passes(judge, benchmark, ks)
    done = await anyio.to_thread.run_sync(read_journal, directory / JOURNAL, {p.name: p.fingerprint for p in passes})
    bar = Progress(progress, every=opts.progress_every, tty=bool(progress is not None and progress.isatty()))
    run = RunOptions(concurrency=opts.concurrency, texts=opts.texts)
    counts: dict[str, PassCounts] = {}
    for plan in passes:
        counts[plan.name] = await run_pass(judge, benchmark, plan, done[plan.name], directory / JOURNAL, bar, run)
    return await anyio.to_thread.run_sync(_finish, judge, benchmark, directory, ks, opts, passes, done, counts)


def _finish(
    judge: AnyJudge,
    benchmark: LoadedBenchmark,
    directory: Path,
    ks: list[int],
    opts: EvalOptions,
    passes: list[PassPlan],
    done: dict[str, dict[str, CallRecord]],
    counts: dict[str, PassCounts],
) -> EvalReport:
    scalar = not isinstance(judge, Judge)
    policy = resolve_policy(opts.tie_policy, benchmark.name, scalar=scalar)
    meta = isinstance(judge, Judge) and judge.meta is not None and max(ks) > 1
    shuffle = judge.settings.shuffle if isinstance(judge, Judge) else ShuffleMode.NONE
    plan = ScoringPlan(policy, _seed(judge), _k_meta(judge), opts.bootstrap, opts.adaptive, shuffle)
    scores: list[SettingScore] = []
    labels = labelled_best(benchmark)
    adaptive = opts.adaptive is not None and isinstance(judge, Judge)
    for setting in plan_settings(ks, meta=meta, draws=opts.draws, adaptive=adaptive):
        records = done["greedy" if setting.kind == "greedy" else "sampled"]
        scores.append(score_setting(benchmark, setting, records, plan))
    position = {p.name: _position(directory / JOURNAL, p.name, labels) for p in passes}
    report = build_report(judge, benchmark, ks, opts, policy, passes, counts, scores, position)
    (directory / RESULTS).write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
    write_markdown(report, directory / TABLES)
    write_plot(report, directory / PLOT)
    if any(s.kind.startswith("adaptive") for s in report.settings.values()):
        write_compute_plot(report, directory / COMPUTE_PLOT)
    return report


def _position(journal: Path, pass_name: str, labels: dict[str, int]) -> PositionBias:
    """The pass's position-bias figures, from the orders its samples were shown in."""
    tally = PositionTally()
    for line in newest_lines(journal, pass_name):
        result: Any = line.get("result")
        if result is not None:
            samples: list[Any] = result["samples"]
            tally.add(((s["permutation"], s["scores"]) for s in samples), labels.get(str(line["call_id"])))
    return tally.figures()


def _check_ks(judge: AnyJudge, ks: Sequence[int]) -> list[int]:
    values = sorted(set(ks))
    if not values or any(isinstance(k, bool) or not isinstance(k, int) or k < 1 for k in values):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ConfigurationError(f"k values must be positive integers, got {list(ks)!r}")
    if not isinstance(judge, Judge) and values != [1]:
        raise ConfigurationError("a scalar reward model is deterministic: use k=1 only")
    return values


def _plan_passes(judge: AnyJudge, benchmark: LoadedBenchmark, ks: list[int]) -> list[PassPlan]:
    passes: list[PassPlan] = []
    base = {"benchmark": benchmark.name, "data": _data_identity(benchmark), "judge": judge_identity(judge)}
    if 1 in ks:
        greedy = judge.settings.model_copy(update={"temperature": 0.0}) if isinstance(judge, Judge) else None
        passes.append(_pass("greedy", 1, False, greedy, base))
    if max(ks) > 1 and isinstance(judge, Judge):
        passes.append(_pass("sampled", max(ks), judge.meta is not None, judge.settings, base))
    return passes


def _pass(name: str, k: int, meta: bool, settings: Any, base: dict[str, Any]) -> PassPlan:
    parts = {**base, "pass": name, "k": k, "meta": meta, "settings": sampling_identity(settings, k)}
    return PassPlan(name, k, meta, settings, fingerprint(parts))


def _data_identity(benchmark: LoadedBenchmark) -> dict[str, Any]:
    source = benchmark.source
    return {
        "files": [f.sha256 for f in source.files],
        "hub": [h.rows_sha256 for h in source.hub],
        "options": {k: v for k, v in benchmark.options.items() if k != "limit"},
    }


def _seed(judge: AnyJudge) -> int:
    return judge.settings.seed if isinstance(judge, Judge) else judge.seed


def _k_meta(judge: AnyJudge) -> int | None:
    return judge.settings.k_meta if isinstance(judge, Judge) else None
