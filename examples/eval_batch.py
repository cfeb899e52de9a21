r"""Judge a JSONL file of items asynchronously: streaming, a sample cache, bounded concurrency, progress.

An evaluation harness: each line of the input holds ``{"id", "query" (or "messages"), "responses", "label"}``
(``id`` and ``label`` optional; ``label`` is the index of the best response). Items are read lazily and
judged ``--concurrency`` at a time with `Judge.stream`, which yields results as they finish, so memory stays
flat however long the file. Each result is written to ``--output`` as one JSON line the moment it arrives.
With ``--cache``, every judgement is stored in SQLite: a run that was stopped, or a run over a longer file,
sends no request it sent before, so running the same command again *resumes*: the output is rewritten, the
cached items cost nothing, and requests that failed (never cached) are sent again. A summary (verdicts,
accuracy against the labels, cache hits, requests, tokens) is printed at the end; progress goes to stderr.

Run it against a GRM served by vLLM:

    vllm serve BBQGOD/DeepSeek-GRM-27B --port 8000
    python examples/eval_batch.py items.jsonl --output verdicts.jsonl --base-url http://127.0.0.1:8000/v1 \
        --model BBQGOD/DeepSeek-GRM-27B --k 8 --cache judge-cache.sqlite --concurrency 32

``--limit 100`` judges the first 100 items only (a smoke run whose judgements the full run then reuses from
the cache). A server that wants a key reads it from ``OPENAI_API_KEY``. For large production runs, the
``grmjudge score`` command does the same with resumable output files and an errors file (docs/batch.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import anyio

from grmjudge import BatchResult, Judge, JudgeSettings, Usage
from grmjudge.backends import OpenAIBackend
from grmjudge.cache import SQLiteCache


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; every URL and path is an argument, so the script runs against any server."""
    parser = argparse.ArgumentParser(description="Judge a JSONL file of items with a GRM.")
    parser.add_argument("input", type=Path, help="JSONL items: id, query or messages, responses, label")
    parser.add_argument("--output", type=Path, required=True, help="JSONL results, one line per item")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="the GRM server's OpenAI base URL")
    parser.add_argument("--model", default="BBQGOD/DeepSeek-GRM-27B", help="the model name the server serves")
    parser.add_argument("--k", type=int, default=8, help="judgements per item (default 8)")
    parser.add_argument("--max-tokens", type=int, default=2048, help="token limit of one judgement")
    parser.add_argument("--concurrency", type=int, default=16, help="items in flight at once")
    parser.add_argument("--max-requests", type=int, default=64, help="backend requests in flight at once")
    parser.add_argument("--cache", type=Path, help="SQLite file of judgements; a rerun reuses them")
    parser.add_argument("--limit", type=int, help="judge only the first N items")
    parser.add_argument("--progress-every", type=float, default=5.0, help="seconds between progress lines")
    return parser.parse_args(argv)


@dataclass
class Summary:
    """Counts over the run, updated as results arrive."""

    items: int = 0
    verdicts: int = 0
    no_verdict: int = 0
    failed: int = 0
    bad_lines: list[str] = field(default_factory=list[str])
    labelled: int = 0
    correct: int = 0
    samples: int = 0
    valid_samples: int = 0
    cached_samples: int = 0
    usage: Usage = field(default_factory=Usage)

    def add(self, batch: BatchResult, label: int | None) -> dict[str, Any]:
        """Count one result and return its output line."""
        self.items += 1
        row: dict[str, Any] = {"id": batch.item_id, "label": label}
        if batch.error is not None:  # the item itself was bad (input validation), the rest of the batch goes on
            self.failed += 1
            return {**row, "error": {"type": batch.error.type, "message": batch.error.message}}
        result = batch.result
        assert result is not None
        self.samples += len(result.samples)
        self.valid_samples += result.n_valid
        self.cached_samples += sum(s.cached for s in result.samples)
        self.usage += result.usage
        if result.no_verdict is not None:  # every judgement failed: counted by reason, never turned into scores
            self.no_verdict += 1
            return {**row, "scores": None, "best": None, "no_verdict": result.no_verdict.failures}
        self.verdicts += 1
        if label is not None:
            self.labelled += 1
            self.correct += result.best == label
        return {**row, "scores": result.scores, "best": result.best, "n_valid": result.n_valid}

    def report(self, output: Path, seconds: float) -> None:
        """Print one ``name: value`` line per figure (easy to read, easy to grep)."""
        accuracy = f"{self.correct / self.labelled:.3f}" if self.labelled else "n/a"
        usage = self.usage
        print(f"items: {self.items}")
        print(f"with verdict: {self.verdicts}")
        print(f"no verdict: {self.no_verdict}")
        print(f"failed items: {self.failed}")
        print(f"bad lines: {len(self.bad_lines)}")
        print(f"accuracy: {accuracy} on {self.labelled} labelled items")
        print(f"samples: {self.samples} ({self.valid_samples} valid)")
        print(f"cached samples: {self.cached_samples}")
        print(f"requests: {usage.requests}")
        print(f"tokens: {usage.prompt_tokens or 0} prompt, {usage.completion_tokens or 0} completion")
        print(f"time: {seconds:.1f} s ({self.items / max(seconds, 1e-9):.1f} items/s)")
        print(f"results: {output}")


def read_items(path: Path, labels: dict[int, int | None], bad_lines: list[str]) -> Iterator[dict[str, Any]]:
    """The items of a JSONL file, read lazily; labels are kept aside by position, bad lines reported."""
    position = 0
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                bad_lines.append(f"line {line_number}: not JSON ({exc.msg})")
                continue
            if not isinstance(row, dict):
                bad_lines.append(f"line {line_number}: not a JSON object")
                continue
            fields: dict[str, Any] = dict(row)  # pyright: ignore[reportUnknownArgumentType]
            label = fields.pop("label", None)
            if label is not None and (isinstance(label, bool) or not isinstance(label, int)):
                bad_lines.append(f"line {line_number}: label must be an integer index, got {label!r}")
                continue
            fields.setdefault("id", f"line-{line_number}")
            labels[position] = label
            position += 1
            yield fields


async def evaluate(args: argparse.Namespace, judge: Judge, out: IO[str]) -> Summary:
    """Stream the items through the judge, writing each result as it finishes, in completion order."""
    summary = Summary()
    labels: dict[int, int | None] = {}
    items = itertools.islice(read_items(args.input, labels, summary.bad_lines), args.limit)
    started = last_report = time.monotonic()
    async with judge.stream(items, k=args.k, concurrency=args.concurrency) as results:
        async for batch in results:
            row = summary.add(batch, labels.pop(batch.index))
            out.write(json.dumps(row) + "\n")
            out.flush()  # one whole line per item: a stopped run leaves a readable file
            now = time.monotonic()
            if now - last_report >= args.progress_every:
                rate = summary.items / (now - started)
                print(f"progress: {summary.items} items, {rate:.1f} items/s", file=sys.stderr)
                last_report = now
    return summary


async def run(args: argparse.Namespace, out: IO[str]) -> Summary:
    """Build the judge (backend, cache, limits) and run the evaluation; closing the judge closes both."""
    backend = OpenAIBackend(args.base_url, args.model)
    cache = SQLiteCache(args.cache) if args.cache else None
    settings = JudgeSettings(max_tokens=args.max_tokens)
    async with Judge(backend, settings=settings, cache=cache, max_concurrent_requests=args.max_requests) as judge:
        return await evaluate(args, judge, out)  # leaving the block closes the backend and the cache


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0 when every line was judged, 1 when some line or item was bad, 2 without an input file."""
    args = parse_args(argv)
    if not args.input.is_file():
        print(f"no such input file: {args.input}", file=sys.stderr)
        return 2
    started = time.monotonic()
    with args.output.open("w", encoding="utf-8") as out:
        summary = anyio.run(run, args, out)
    for problem in summary.bad_lines:
        print(f"skipped {problem}", file=sys.stderr)
    summary.report(args.output, time.monotonic() - started)
    return 1 if summary.failed or summary.bad_lines else 0


if __name__ == "__main__":
    sys.exit(main())
