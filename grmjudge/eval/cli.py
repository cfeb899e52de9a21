"""``grmjudge eval BENCHMARK --judge SPEC --k 1,8,32 --out DIR`` (also ``python -m grmjudge.eval``).

``grmjudge eval summary RUN_DIR... --out DIR`` combines the runs of RB, PPE-P, PPE-C and RMB into the paper's
Overall. Exit status: 0 done; 2 bad arguments, data or configuration, or an unwritable output folder (the message
says which); 130 interrupted (finished calls are kept in DIR/items.jsonl, and a rerun resumes).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pydantic import ValidationError

from grmjudge.argtypes import non_negative_int, positive_float, positive_int
from grmjudge.engine_options import RayOptions, add_engine_options, engine_options
from grmjudge.eval.loaders import BENCHMARK_NAMES
from grmjudge.eval.outcomes import TiePolicy
from grmjudge.exceptions import ConfigurationError, GRMJudgeError
from grmjudge.meta import meta_from_spec

if TYPE_CHECKING:
    from grmjudge.eval.runner import AnyJudge

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


RayJudgeBuilder = Callable[[argparse.Namespace, RayOptions], "AnyJudge"]
"""Builds the judge of ``--engine ray`` from the parsed flags; the ``grmjudge`` command passes one in."""


def main(argv: Sequence[str] | None = None, *, ray_judge: RayJudgeBuilder | None = None) -> int:
    """Run ``grmjudge eval``; returns the exit status. ``ray_judge`` makes ``--engine ray`` available."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help and on bad arguments
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    ns.ray_judge = ray_judge
    try:
        return ns.handler(ns, sys.stderr)
    except (GRMJudgeError, ValidationError, OSError) as exc:
        sys.stderr.write(f"grmjudge eval: error: {exc}\n")
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("grmjudge eval: interrupted; finished calls are in DIR/items.jsonl and a rerun resumes\n")
        return EXIT_INTERRUPTED


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per benchmark, plus ``summary``."""
    parser = argparse.ArgumentParser(
        prog="grmjudge eval", description="Score a reward model on a benchmark with the benchmark's official rules."
    )
    commands = parser.add_subparsers(title="benchmarks", metavar="BENCHMARK", required=True)
    for name in BENCHMARK_NAMES:
        _add_benchmark(commands, name)
    summary = commands.add_parser("summary", help="combine runs into RB / PPE-P / PPE-C / RMB / Overall")
    summary.add_argument("runs", nargs="+", metavar="RUN_DIR", help="output folders of grmjudge eval runs")
    summary.add_argument("--out", required=True, type=Path, metavar="DIR", help="where summary.json/.md go")
    summary.set_defaults(handler=_summary)
    return parser


def _k_list(text: str) -> list[int]:
    try:
        ks = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be integers separated by commas, e.g. 1,8,32; got {text!r}") from None
    if not ks or any(k < 1 for k in ks):
        raise argparse.ArgumentTypeError(f"every k must be at least 1, got {text!r}")
    return ks


def _add_benchmark(commands: argparse._SubParsersAction[argparse.ArgumentParser], name: str) -> None:  # pyright: ignore[reportPrivateUsage]
    p = commands.add_parser(name, help=f"evaluate on {name}")
    judge = p.add_argument_group("judge").add_mutually_exclusive_group(required=True)
    judge.add_argument(
        "--judge", metavar="SPEC", help="GRM backend spec, e.g. openai:MODEL (with --base-url), vllm:PATH"
    )
    judge.add_argument("--scalar", metavar="SPEC", help="scalar RM: hf:PATH, or http:MODEL (with --base-url)")
    g = p.add_argument_group("judge options")
    g.add_argument("--base-url", metavar="URL", help="server of an openai: judge or an http: scalar RM")
    g.add_argument("--meta", metavar="SPEC", help="meta RM for MetaRM@k: http:MODEL (with --meta-base-url) or hf:PATH")
    g.add_argument("--meta-base-url", metavar="URL", help="server of an http: meta RM")
    g.add_argument("--k-meta", type=positive_int, metavar="N", help="judgements kept by the meta RM (default k/2)")
    g.add_argument("--temperature", type=float, metavar="T", help="of the sampled pass (default 0.5; greedy uses 0)")
    g.add_argument("--max-tokens", type=positive_int, metavar="N", help="per judgement (default 2048)")
    g.add_argument(
        "--seed", type=int, default=0, metavar="S", help="seeds shuffles, samples, ties, subsets (default 0)"
    )
    g.add_argument("--max-concurrent-requests", type=positive_int, default=64, metavar="N", help="(default 64)")
    g.add_argument("--cache", type=Path, metavar="PATH", help="SQLite sample cache shared across runs")
    d = p.add_argument_group("data")
    d.add_argument("--data", type=Path, metavar="PATH", help="local file or folder in the official schema (else Hub)")
    d.add_argument("--split", metavar="NAME", help="Hub split (e.g. judgebench: gpt or claude)")
    d.add_argument("--revision", metavar="REV", help="Hub dataset revision")
    d.add_argument("--limit", type=positive_int, metavar="N", help="judge only the first N items")
    if name == "rewardbench":
        d.add_argument("--prior-sets", action="store_true", help="add the prior sets (allenai/pref-test-sets)")
        d.add_argument("--prior-data", type=Path, metavar="PATH", help="prior-set files, one per set")
    if name == "rmb":
        d.add_argument("--rmb-bon", choices=("listwise", "pairwise"), default="listwise", help="BoN protocol")
    r = p.add_argument_group("run")
    r.add_argument("--k", type=_k_list, default=[1], metavar="K,...", help="1 = greedy; larger k share one pass")
    r.add_argument(
        "--out", type=Path, required=True, metavar="DIR", help="results.json, results.md, scaling.png, items.jsonl"
    )
    r.add_argument("--tie-policy", choices=[t.value for t in TiePolicy], default="official", help="(default official)")
    r.add_argument("--draws", type=positive_int, default=16, metavar="N", help="random k-subsets per k (default 16)")
    r.add_argument(
        "--adaptive",
        action="store_true",
        help="also score adaptive k (at most the largest k), replayed on the sampled pass, per sample spent",
    )
    r.add_argument("--bootstrap", type=non_negative_int, default=1000, metavar="N", help="resamples (default 1000)")
    r.add_argument("--concurrency", type=positive_int, default=16, metavar="N", help="calls in flight (default 16)")
    r.add_argument("--no-texts", action="store_true", help="leave judgement texts out of items.jsonl")
    r.add_argument(
        "--progress-every", type=positive_float, default=5.0, metavar="S", help="seconds between progress lines"
    )
    r.add_argument("-q", "--quiet", action="store_true", help="no progress line")
    add_engine_options(p, shards=False)
    p.set_defaults(handler=_evaluate, benchmark=name)


def _evaluate(ns: argparse.Namespace, stderr: TextIO) -> int:
    import anyio

    from grmjudge.adaptive import AdaptivePolicy
    from grmjudge.eval.harness import EvalOptions, evaluate
    from grmjudge.eval.loaders import load_benchmark

    benchmark = load_benchmark(
        ns.benchmark,
        ns.data,
        split=ns.split,
        revision=ns.revision,
        prior_sets=getattr(ns, "prior_sets", False),
        prior_data=getattr(ns, "prior_data", None),
        rmb_bon=getattr(ns, "rmb_bon", "listwise"),
        limit=ns.limit,
    )
    options = EvalOptions(
        tie_policy=TiePolicy(ns.tie_policy),
        draws=ns.draws,
        bootstrap=ns.bootstrap,
        concurrency=ns.concurrency,
        texts=not ns.no_texts,
        progress_every=ns.progress_every,
        adaptive=AdaptivePolicy() if ns.adaptive else None,
    )
    engine = engine_options(ns)
    if engine is not None and ns.ray_judge is None:
        raise ConfigurationError("--engine ray runs through the grmjudge command: grmjudge eval ... --engine ray")
    judge = build_judge(ns) if engine is None else ns.ray_judge(ns, engine)

    async def run() -> None:
        try:
            report = await evaluate(
                judge, benchmark, ns.out, ks=ns.k, options=options, progress=None if ns.quiet else stderr
            )
        finally:
            await judge.aclose()
        for name, setting in report.settings.items():
            stderr.write(f"{name}: {report.column} {100 * setting.overall.value:.1f}\n")
        stderr.write(f"results: {ns.out / 'results.json'}, {ns.out / 'results.md'}, {ns.out / 'scaling.png'}\n")

    anyio.run(run)
    return EXIT_OK


def build_judge(ns: argparse.Namespace) -> AnyJudge:
    """The judge the command line names: a GRM through ``Judge.from_spec``, or a scalar RM."""
    if ns.scalar is not None:
        if ns.meta is not None:
            raise ConfigurationError("--meta needs a GRM (--judge): a scalar RM has no judgements to rank")
        return _scalar(ns.scalar, ns.base_url, ns.seed)
    from grmjudge.cache import SQLiteCache
    from grmjudge.judge import Judge
    from grmjudge.settings import JudgeSettings

    given = {"temperature": ns.temperature, "max_tokens": ns.max_tokens, "k_meta": ns.k_meta, "seed": ns.seed}
    settings = JudgeSettings.model_validate({k: v for k, v in given.items() if v is not None})
    backend_options = {"base_url": ns.base_url} if ns.base_url is not None else {}
    meta = meta_from_spec(ns.meta, ns.meta_base_url) if ns.meta is not None else None
    judge = Judge.from_spec(
        ns.judge, meta=meta, settings=settings, max_concurrent_requests=ns.max_concurrent_requests, **backend_options
    )
    if ns.cache is not None:
        judge.cache = SQLiteCache(ns.cache)
    return judge


def _scalar(spec: str, base_url: str | None, seed: int) -> AnyJudge:
    from grmjudge.scalar import ScalarJudge

    kind, sep, model = spec.partition(":")
    if not sep or not model or kind not in ("http", "hf"):
        raise ConfigurationError(f"--scalar must look like 'hf:PATH' or 'http:MODEL', got {spec!r}")
    if kind == "hf":
        return ScalarJudge.from_transformers(model, seed=seed)
    if base_url is None:
        raise ConfigurationError("--scalar http:MODEL needs --base-url, the server that serves it")
    return ScalarJudge.from_http(base_url, model, seed=seed)


def _summary(ns: argparse.Namespace, stderr: TextIO) -> int:
    from grmjudge.eval.summary import read_reports, summarize, write_summary

    reports = read_reports(ns.runs)
    write_summary(summarize(reports, ns.runs), ns.out)
    stderr.write(f"summary: {ns.out / 'summary.md'}\n")
    return EXIT_OK
