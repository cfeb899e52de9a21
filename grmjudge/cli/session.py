"""One ``grmjudge score`` run: every check before any work, then the judging, the summary and the exit status."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import anyio
import anyio.to_thread
from pydantic import ValidationError

from grmjudge._inputs import check_k
from grmjudge._redact import Redactor
from grmjudge._tasks import task_group
from grmjudge.adaptive import AdaptivePolicy
from grmjudge.backends.base import Backend
from grmjudge.cache import SQLiteCache
from grmjudge.cli.files import STDIN, ExistingOutput, RunFiles, check_paths, load_existing_output, open_run_files
from grmjudge.cli.inputs import InputScanner, ScanCounts, count_lines, max_line_bytes, read_lines
from grmjudge.cli.options import EXIT_ABORTED, EXIT_ERRORS, EXIT_OK, ScoreOptions, UsageError
from grmjudge.cli.progress import RunStats, progress_line, summary
from grmjudge.cli.runner import FatalRunError, RunPlan, judge_lines
from grmjudge.cli.signals import StopSignals
from grmjudge.exceptions import GRMJudgeError, InvalidInputError
from grmjudge.journal import FileProblem, IdIndex, JournalWriter, dumps, truncate_partial_line
from grmjudge.judge import Judge
from grmjudge.judge_options import build_backend, build_meta, build_settings
from grmjudge.progress import ProgressReporter
from grmjudge.score_lines import LineError, error_record
from grmjudge.settings import JudgeSettings
from grmjudge.voting import default_k_meta


@dataclass
class Session:
    """A checked command, ready to run: the judge is built and the resume point (if any) is known."""

    options: ScoreOptions
    stderr: TextIO
    redact: Redactor
    judge: Judge
    existing: ExistingOutput | None
    files: RunFiles

    @classmethod
    def open(cls, options: ScoreOptions, stderr: TextIO) -> Session:
        """Check the paths, build the judge, open the files, load the resume point; any problem raises UsageError.

        Nothing is changed until every check has passed: files the checks created are removed on a refusal.
        """
        redact = Redactor.from_environment()
        try:
            check_paths(options)
            backend, meta, settings = (
                build_backend(options.judge),
                build_meta(options.judge),
                build_settings(options.judge),
            )
            _check_k(options.k, settings.max_k)
        except (GRMJudgeError, ValidationError) as exc:
            raise UsageError(redact(str(exc))) from exc
        files = open_run_files(options)
        cache: SQLiteCache | None = None
        try:
            existing = _load_resume_point(options, backend, settings) if options.resume else None
            cache = _open_cache(options.cache, files.created) if options.cache is not None else None
            judge = Judge(
                backend,
                meta=meta,
                settings=settings,
                max_concurrent_requests=options.max_concurrent_requests,
                cache=cache,
            )
            cut = existing is not None and existing.dropped_bytes > 0
            files.start(keep_output=options.resume, cut_output=cut)
            if cut:
                _cut_partial_line(options.output)
        except BaseException as exc:
            if cache is not None:
                anyio.run(cache.aclose)
            files.discard()
            if isinstance(exc, GRMJudgeError | ValidationError):
                raise UsageError(redact(str(exc))) from exc
            raise
        return cls(options, stderr, redact, judge, existing, files)

    def run(self) -> int:
        """Judge the input into the output; print the summary; return the exit status."""
        o = self.options
        self._note_resume()
        output = JournalWriter(self.files.output, name="output", redact=self.redact)
        errors = JournalWriter(self.files.errors, name="errors file", redact=self.redact)
        limit = max_line_bytes(o.max_input_chars)
        stats = RunStats(scan=ScanCounts())

        def report(error: LineError) -> None:
            errors.write(dumps(error_record(error)))
            stats.add_error(error)

        scanner = InputScanner(
            read_lines(self.files.source, max_line_bytes=limit),
            on_error=report,
            max_chars=o.max_input_chars,
            max_line_bytes=limit,
            done=self.existing.ids if self.existing is not None else IdIndex(),
            counts=stats.scan,
        )
        reporter = ProgressReporter(
            None if o.quiet else self.stderr,
            lambda: progress_line(stats),
            position=stats.position,
            every=o.progress_every,
            stamp=True,
            redact=self.redact,
        )
        outcome, status, note = "finished", EXIT_OK, ""
        with StopSignals() as signals:  # from here on, Ctrl-C and kill stop the run without cutting a write
            try:
                if anyio.run(self._judge, scanner, output, stats, report, reporter, signals):
                    assert signals.received is not None  # only a signal stops the judging early
                    outcome, status = "interrupted", 128 + signals.received
                    note = (
                        f"grmjudge score: interrupted ({signals.received.name}); every finished item is in the "
                        "output: continue with --resume."
                    )
            except (FatalRunError, FileProblem, GRMJudgeError) as exc:
                outcome, status = "aborted", EXIT_ABORTED
                note = f"grmjudge score: aborted: {exc}\nFix the cause, then run the same command with --resume."
            finally:
                self.files.close()
                reporter.close()
            if stats.out_of_order:
                note += (
                    f"\n{stats.out_of_order:,} finished items were written after items still in flight, out of "
                    "input order; --resume appends the missing ones."
                )
            if status == EXIT_OK and stats.errors:
                status = EXIT_ERRORS
            self._finish(stats, outcome, note)
        return status

    async def _judge(
        self,
        scanner: InputScanner,
        output: JournalWriter,
        stats: RunStats,
        report: Callable[[LineError], None],
        reporter: ProgressReporter,
        signals: StopSignals,
    ) -> bool:
        """Judge every line; True if a signal stopped the judging (every finished item is written all the same)."""
        o = self.options
        plan = RunPlan(
            judge=self.judge,
            k=o.k,
            meta=o.judge.meta is not None,
            adaptive=o.adaptive,
            concurrency=o.concurrency,
            order=o.order,
            texts=o.texts,
            max_consecutive_failures=o.max_consecutive_failures,
        )
        with anyio.CancelScope() as stopping:
            signals.arm(stopping.cancel)
            try:
                async with self.judge, task_group() as tg:
                    if not o.quiet:
                        tg.start_soon(reporter.run)
                        if o.input != STDIN:
                            tg.start_soon(_count_total, Path(o.input), stats)
                    await judge_lines(plan, scanner, output, stats, report)
                    tg.cancel_scope.cancel()
            finally:
                signals.disarm()
        return stopping.cancelled_caught

    def _note_resume(self) -> None:
        if self.existing is None or self.options.quiet:
            return
        dropped = (
            f"; dropped a partial last line ({self.existing.dropped_bytes:,} bytes)"
            if self.existing.dropped_bytes
            else ""
        )
        self.stderr.write(
            f"grmjudge score: resuming: {self.existing.lines:,} lines already in {self.options.output}{dropped}\n"
        )

    def _finish(self, stats: RunStats, outcome: str, note: str) -> None:
        if not self.options.quiet:
            text = summary(stats, outcome=outcome, output=str(self.options.output), errors=str(self.options.errors))
            self.stderr.write(self.redact(text) + "\n")
        if note:
            self.stderr.write(self.redact(note) + "\n")
        self.stderr.flush()


def _check_k(k: int, max_k: int) -> None:
    """``--k`` within the library's cap (``JudgeSettings.max_k``), before anything is opened."""
    try:
        check_k(k, max_k)
    except InvalidInputError as exc:
        raise UsageError(f"--k: {exc}") from exc


def _load_resume_point(o: ScoreOptions, backend: Backend, s: JudgeSettings) -> ExistingOutput:
    meta = o.judge.meta is not None
    expected: dict[str, object] = {
        "backend": backend.name,
        "model": backend.model,
        "template_hash": s.template.hash,
        "k": o.k,
        "meta": meta,
        "k_meta": (s.k_meta or default_k_meta(o.k)) if meta else None,
        "seed": s.seed,
        "temperature": s.temperature_for(o.k),
        "max_tokens": s.max_tokens,
        "adaptive": AdaptivePolicy().model_dump() if o.adaptive else None,
    }
    with Path(o.input).open("rb") as source:
        lines = read_lines(source, max_line_bytes=max_line_bytes(o.max_input_chars))
        return load_existing_output(o.output, expected, lines)


def _cut_partial_line(path: Path) -> None:
    """Drop what a killed writer left half-written, now that every check has passed."""
    try:
        truncate_partial_line(path)
    except OSError as exc:  # e.g. an append-only file
        raise UsageError(f"cannot cut the partial last line of the output {path}: {exc.strerror or exc}") from exc


def _open_cache(path: Path, created: list[Path]) -> SQLiteCache:
    """The cache at ``path``; the files and folders opening it created are added to ``created`` (deepest first)."""
    new = [p for p in (path, *path.parents) if not p.exists()]
    try:
        return SQLiteCache(path)
    except (sqlite3.Error, OSError) as exc:
        raise UsageError(f"cannot open the cache {path}: {exc}") from exc
    finally:
        if new:
            created.extend([path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"), *new])


async def _count_total(path: Path, stats: RunStats) -> None:
    def count() -> int:
        with path.open("rb") as file:
            return count_lines(file)

    try:
        stats.total_lines = await anyio.to_thread.run_sync(count, abandon_on_cancel=True)
    except OSError:
        return  # the progress line simply shows no total
