"""``grmjudge score --engine ray``: the same judging as a Ray Data job, from a laptop to a cluster.

The input is read with Ray's readers (``.parquet`` files or folders with ``read_parquet``, anything else as
JSON Lines with ``read_text``, so a bad line is an error row), judged by
[`judge_dataset`][grmjudge.integrations.ray.judge_dataset] and written as shards
([`grmjudge.integrations.ray.shards`][grmjudge.integrations.ray.shards]) under the output folder, with
``manifest.json`` (what was asked, by which versions, and the counts). ``--resume`` skips the ids already in
the shards; a run whose manifest holds other settings is refused. The closing summary is the local command's.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from typing import TYPE_CHECKING, Any, TextIO

from grmjudge.cli.options import (
    EXIT_ABORTED,
    EXIT_ERRORS,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    ScoreOptions,
    UsageError,
)
from grmjudge.engine_options import RayOptions, connect, engine_options
from grmjudge.exceptions import ConfigurationError

if TYPE_CHECKING:
    from grmjudge.cli.progress import RunStats
    from grmjudge.judge import Judge

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "grmjudge-ray-run/1"
WRITER_CPUS = 0.25
"""CPUs a shard-writing task asks for: it only encodes and writes, and must not wait behind the actors' CPUs."""
_ITEM_FAILURES = ("item_failed", "backend_failed")
"""Error types of items that were judged (the rest are lines that could not be read as items)."""


def ray_options(ns: argparse.Namespace) -> RayOptions | None:
    """The Ray engine's options, or None for the local engine; options that do not apply raise UsageError."""
    try:
        options = engine_options(ns)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from exc
    if options is None:
        return None
    for given, flag in ((ns.cache, "--cache"), (ns.errors, "--errors")):
        if given is not None:
            raise UsageError(f"{flag} is not available with --engine ray (errors go to OUT/errors/)")
    if ns.input == "-":
        raise UsageError("--engine ray reads a file or folder, not standard input")
    return options


def provenance_key(o: ScoreOptions) -> dict[str, Any]:
    """What makes two runs' lines comparable; ``--resume`` refuses an output made under another."""
    from grmjudge.adaptive import AdaptivePolicy
    from grmjudge.judge_options import build_settings
    from grmjudge.voting import default_k_meta

    s = build_settings(o.judge)
    meta = o.judge.meta is not None
    return {
        "judge": o.judge.judge,
        "meta": o.judge.meta,
        "template_hash": s.template.hash,
        "k": o.k,
        "k_meta": (s.k_meta or default_k_meta(o.k)) if meta else None,
        "seed": s.seed,
        "temperature": s.temperature_for(o.k),
        "max_tokens": s.max_tokens,
        "adaptive": AdaptivePolicy().model_dump() if o.adaptive else None,
        "texts": o.texts,
    }


def run_ray(o: ScoreOptions, r: RayOptions, stderr: TextIO) -> int:
    """Judge ``o.input`` into the folder ``o.output`` on Ray; returns the exit status."""
    from pydantic import ValidationError

    from grmjudge._inputs import check_k
    from grmjudge._optional import require
    from grmjudge._redact import Redactor
    from grmjudge.cli.progress import RunStats, progress_line, summary
    from grmjudge.exceptions import GRMJudgeError
    from grmjudge.integrations.ray.shards import ERRORS_DIR, clear_errors, clear_partial, done_ids, shard_files
    from grmjudge.judge_options import build_settings
    from grmjudge.progress import ProgressReporter

    redact = Redactor.from_environment()
    out = str(o.output)
    try:
        check_k(o.k, build_settings(o.judge).max_k)
        key = provenance_key(o)
        ray = require("ray", extra="ray")
        existing = _read_manifest(out)
        _check_resume(o, out, existing, key)
    except (GRMJudgeError, ValidationError, UsageError) as exc:
        stderr.write(f"grmjudge score: error: {redact(str(exc))}\n")
        return EXIT_USAGE
    connect(r.address, progress=not o.quiet)
    data = require("ray.data", extra="ray")
    removed = clear_partial(out)
    clear_errors(out)
    done = frozenset(done_ids(out)) if o.resume else frozenset[str]()
    if done and not o.quiet:
        stderr.write(f"grmjudge score: resuming: {len(done):,} items already in {out}")
        stderr.write(f"; removed {removed} partial files\n" if removed else "\n")
    manifest = _manifest(o, r, key, ray.__version__)
    _write_manifest(out, manifest)
    stats = RunStats()
    stats.scan.skipped = len(done)
    status, note = EXIT_OK, ""
    # the local engine's progress line (samples, failures, tokens), as plain lines beside Ray's own bars
    reporter = ProgressReporter(
        None if o.quiet else stderr, lambda: progress_line(stats), every=o.progress_every, tty=False, stamp=True,
        redact=redact,
    )  # fmt: skip
    try:
        for row in _pipeline(o, r, data, done).iter_rows():
            _count(stats, row)
            reporter.tick()  # once a shard is written
        outcome = "finished"
    except KeyboardInterrupt:
        outcome, status = "interrupted", EXIT_INTERRUPTED
        note = "grmjudge score: interrupted; every finished shard is in the output: continue with --resume."
    except Exception as exc:  # a Ray task error (refused credentials, a lost cluster): its cause, first line
        outcome, status = "aborted", EXIT_ABORTED
        note = f"grmjudge score: aborted: {_first_line(exc)}\nFix the cause, then run the same command with --resume."
    finally:
        reporter.close()
    if status == EXIT_OK and stats.errors:
        status = EXIT_ERRORS
    manifest.update(status=outcome, finished=_now(), counts=_counts(stats), shards=len(shard_files(out)))
    _write_manifest(out, manifest)
    if not o.quiet:
        stderr.write(redact(summary(stats, outcome=outcome, output=out, errors=f"{out}/{ERRORS_DIR}/")) + "\n")
    if note:
        stderr.write(redact(note) + "\n")
    return status


def _pipeline(o: ScoreOptions, r: RayOptions, data: Any, done: frozenset[str]) -> Any:
    from grmjudge.integrations.ray import JudgeSpec, StageResources, judge_dataset
    from grmjudge.integrations.ray.shards import write_shard

    source = data.read_parquet(o.input) if o.input.rstrip("/").endswith(".parquet") else data.read_text(o.input)
    judged = judge_dataset(
        source,
        JudgeSpec(options=o.judge, max_concurrent_requests=o.max_concurrent_requests),
        o.k,
        o.judge.meta is not None,
        adaptive=o.adaptive,
        texts=o.texts,
        max_input_chars=o.max_input_chars,
        skip_ids=done,
        grm=StageResources.grm_stage(r, o.concurrency),
        meta_stage=StageResources.meta_stage(r),
    )
    return judged.map_batches(
        write_shard,
        fn_kwargs={"out": str(o.output), "format": r.output_format},
        batch_format="pyarrow",
        num_cpus=WRITER_CPUS,
    )


def _count(stats: RunStats, row: dict[str, Any]) -> None:
    """Add one shard's summary to the run's counters."""
    errors: Counter[str] = Counter(json.loads(row["error_types"]))
    judged_errors = sum(errors[t] for t in _ITEM_FAILURES)
    unreadable = row["errors"] - judged_errors
    stats.settled += row["outputs"] + judged_errors
    stats.scan.valid += row["outputs"] + judged_errors
    stats.scan.invalid += unreadable
    stats.scan.lines += row["outputs"] + row["errors"]
    stats.written += row["outputs"]
    stats.verdicts += row["verdict"]
    stats.no_verdicts += row["outputs"] - row["verdict"]
    stats.errors.update(errors)
    stats.samples += row["samples"]
    stats.samples_valid += row["samples_valid"]
    stats.samples_cached += row["samples_cached"]
    stats.failures.update(json.loads(row["failures"]))
    stats.requests += row["requests"]
    stats.prompt_tokens += row["prompt_tokens"]
    stats.completion_tokens += row["completion_tokens"]
    stats.labelled += row["labelled"]
    stats.label_agree += row["label_agree"]


def _counts(stats: RunStats) -> dict[str, Any]:
    return {
        "items_judged": stats.settled,
        "already_done": stats.scan.skipped,
        "outputs": stats.written,
        "verdicts": stats.verdicts,
        "errors": dict(stats.errors),
        "samples": stats.samples,
        "samples_valid": stats.samples_valid,
        "failures": dict(stats.failures),
        "requests": stats.requests,
        "prompt_tokens": stats.prompt_tokens,
        "completion_tokens": stats.completion_tokens,
        "seconds": round(stats.elapsed(), 3),
    }


def _manifest(o: ScoreOptions, r: RayOptions, key: dict[str, Any], ray_version: str) -> dict[str, Any]:
    from grmjudge._version import __version__

    return {
        "format": MANIFEST_FORMAT,
        "grmjudge_version": __version__,
        "ray_version": ray_version,
        "input": o.input,
        "output_format": r.output_format,
        "provenance": key,
        "status": "running",
        "started": _now(),
    }


def _check_resume(o: ScoreOptions, out: str, existing: dict[str, Any] | None, key: dict[str, Any]) -> None:
    from grmjudge.integrations.ray.shards import shard_files

    if not o.resume:
        if existing is not None or shard_files(out):
            raise UsageError(f"{out} already holds a run: add --resume to finish it, or choose another output folder")
        return
    if existing is None:
        return
    recorded: dict[str, Any] = existing.get("provenance", {})
    for name, value in key.items():
        if recorded.get(name) != value:
            raise UsageError(
                f"--resume: {out} was made with {name}={recorded.get(name)!r}, this command asks for {value!r}"
            )


def _read_manifest(out: str) -> dict[str, Any] | None:
    from grmjudge._optional import require
    from grmjudge.integrations.ray.shards import filesystem

    fs, root = filesystem(out)
    fs_module = require("pyarrow.fs", extra="ray")
    path = f"{root}/{MANIFEST}"
    if fs.get_file_info(path).type != fs_module.FileType.File:
        return None
    with fs.open_input_stream(path) as stream:
        return json.loads(stream.read())


def _write_manifest(out: str, manifest: dict[str, Any]) -> None:
    from grmjudge.integrations.ray.shards import filesystem

    fs, root = filesystem(out)
    fs.create_dir(root, recursive=True)
    with fs.open_output_stream(f"{root}/{MANIFEST}.tmp") as stream:
        stream.write((json.dumps(manifest, indent=2) + "\n").encode())
    fs.move(f"{root}/{MANIFEST}.tmp", f"{root}/{MANIFEST}")


def _first_line(exc: BaseException) -> str:
    """What stopped the job: the innermost cause Ray wrapped (a task error holds its cause), its first line."""
    seen: set[int] = set()
    current: BaseException | None = exc
    innermost = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        innermost = current
        wrapped = getattr(current, "cause", None)
        current = wrapped if isinstance(wrapped, BaseException) else current.__cause__ or current.__context__
    lines = [line for line in str(innermost).splitlines() if line.strip()]
    return lines[0] if lines else type(innermost).__name__


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def eval_judge(ns: argparse.Namespace, engine: RayOptions) -> Judge:
    """``grmjudge eval --engine ray``: the GRM the command line names, judging each pass's calls on Ray actors."""
    from grmjudge.integrations.ray import JudgeSpec, RayJudge, StageResources, judge_options

    if ns.scalar is not None or ns.cache is not None:
        raise ConfigurationError("--engine ray takes a GRM (--judge) and no --cache")
    options = judge_options(
        ns.judge,
        base_urls=(ns.base_url,) if ns.base_url is not None else (),
        meta=ns.meta,
        meta_base_url=ns.meta_base_url,
        k_meta=ns.k_meta,
        temperature=ns.temperature,
        max_tokens=ns.max_tokens,
        seed=ns.seed,
    )
    connect(engine.address, progress=not ns.quiet)
    spec = JudgeSpec(options=options, max_concurrent_requests=ns.max_concurrent_requests)
    return RayJudge(spec, grm=StageResources.grm_stage(engine, ns.concurrency))
