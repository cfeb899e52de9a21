"""``grmjudge report RUN -o report.html``: the command's options and its exit statuses (2 for a bad run or path)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO

from grmjudge.exceptions import ConfigurationError


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Register ``report`` and its options."""
    parser = commands.add_parser(
        "report",
        help="write a self-contained HTML report of a score output or an eval folder",
        description="Write one HTML file (no server, no network) with the run's summary, position bias and items.",
    )
    parser.add_argument("run", type=Path, metavar="RUN", help="a grmjudge score output file or a grmjudge eval folder")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="HTML", help="the report file to write")
    parser.add_argument("--input", type=Path, metavar="JSONL", help="the scored input file, for queries and responses")
    parser.add_argument("--data", type=Path, metavar="PATH", help="an eval run's data (default: the files it names)")
    parser.add_argument("--pass", dest="pass_name", metavar="NAME", help="the eval pass shown (default: sampled)")
    parser.add_argument("--items", type=_positive, default=500, metavar="N", help="items shown in full (default 500)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Write the report; returns the exit status."""
    from grmjudge.report.build import write_report

    try:
        stats = write_report(
            args.run, args.out, inputs=args.input, data=args.data, pass_name=args.pass_name, items=args.items
        )
    except (ConfigurationError, OSError, ValueError, KeyError) as exc:
        sys.stderr.write(f"error: {args.run}: {exc}\n")
        return 2
    out.write(f"wrote {args.out}: {stats.items} items, {stats.shown} shown in full, {stats.size / 1e6:.1f} MB\n")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value
