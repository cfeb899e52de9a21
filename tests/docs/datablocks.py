"""Data blocks (JSON, JSONL, YAML, TOML), excerpts of real output files, and printed output."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.docs.blocks import Block
from tests.docs.pyblocks import BlockFailure

ELIDED = "\u2026elided\u2026"
"""What ``...`` outside a string becomes while an excerpt is parsed."""


def parse_json_values(block: Block) -> list[Any]:
    """The block as one JSON value, or else as one value per non-blank line (JSONL)."""
    try:
        return [json.loads(block.code)]
    except json.JSONDecodeError as whole:
        rows = []
        for offset, line in enumerate(block.code.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise BlockFailure(
                    f"{block.where}: neither one JSON value ({whole}) nor JSON lines (line {offset}: {exc})"
                ) from exc
        return rows


def parse_yaml(block: Block) -> Any:
    import yaml

    try:
        return yaml.safe_load(block.code)
    except yaml.YAMLError as exc:
        raise BlockFailure(f"{block.where}: not valid YAML: {exc}") from exc


def parse_toml(block: Block) -> Any:
    try:
        return tomllib.loads(block.code)
    except tomllib.TOMLDecodeError as exc:
        raise BlockFailure(f"{block.where}: not valid TOML: {exc}") from exc


# --- schemas -------------------------------------------------------------------------------------------------


def _judge_input(row: Any, number: int) -> str | None:
    from grmjudge.score_lines import validate_record

    if not isinstance(row, dict):
        return "not a JSON object"
    checked = validate_record(number, row, max_chars=1_000_000)
    return None if isinstance(checked, tuple) else f"{checked.type}: {checked.message}"


def _pydantic(model: Any, value: Any) -> str | None:
    from pydantic import ValidationError

    try:
        model.model_validate_json(json.dumps(value))
    except ValidationError as exc:
        return str(exc)
    return None


def _spct_example(row: Any, number: int) -> str | None:
    from grmjudge.training.data import SPCTExample

    del number
    return _pydantic(SPCTExample, row)


def _accelerate(document: Any, number: int) -> str | None:
    from accelerate.commands.config.config_args import ClusterConfig

    del number
    try:
        ClusterConfig(**document)
    except TypeError as exc:
        return str(exc)
    return None


def _fault_stats(document: Any, number: int) -> str | None:
    from grmjudge.testing.faults import FaultStats

    del number
    return _pydantic(FaultStats, document)


SCHEMAS: dict[str, Callable[[Any, int], str | None]] = {
    "judge-input": _judge_input,
    "spct-example": _spct_example,
    "accelerate": _accelerate,
    "fault-stats": _fault_stats,
}
"""Each returns None for a valid row or document, else what is wrong with it."""


def check_schema(block: Block, name: str, rows: list[Any]) -> None:
    if name not in SCHEMAS:
        raise BlockFailure(f"{block.where}: unknown schema {name!r}; known: {', '.join(SCHEMAS)}")
    for number, row in enumerate(rows, start=1):
        problem = SCHEMAS[name](row, number)
        if problem is not None:
            raise BlockFailure(f"{block.where}: row {number} is not a valid {name}: {problem}")


def check_judgement(block: Block) -> None:
    """A ``text`` block with ``schema judgement responses=N``: a judgement that grmjudge parses, with both parts."""
    from grmjudge import DEFAULT_TEMPLATE, ParseFailure, parse_judgement
    from grmjudge.parsing import split_judgement

    count = block.marker.options.get("responses") if block.marker else None
    if count is None or not count.isdigit():
        raise BlockFailure(f"{block.where}: `schema judgement` needs responses=N")
    outcome = parse_judgement(block.code, "stop", int(count), DEFAULT_TEMPLATE.score_range)
    if isinstance(outcome, ParseFailure):
        raise BlockFailure(f"{block.where}: the judgement does not parse: {outcome.reason} {outcome.detail}")
    if None in split_judgement(block.code):
        raise BlockFailure(f"{block.where}: the judgement lacks its Specific Criteria or Analysis part")


# --- excerpts ------------------------------------------------------------------------------------------------


def parse_excerpt(block: Block) -> Any:
    """Parse JSON in which a bare ``...`` elides object members or trailing array elements."""
    out: list[str] = []
    stack: list[str] = []
    text = block.code
    i = 0
    in_string = False
    while i < len(text):
        char = text[i]
        if in_string:
            out.append(char)
            if char == "\\":
                out.append(text[i + 1])
                i += 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
            out.append(char)
        elif text.startswith("...", i):
            out.append(f'"{ELIDED}": null' if stack and stack[-1] == "{" else f'"{ELIDED}"')
            i += 2
        else:
            if char in "{[":
                stack.append(char)
            elif char in "}]":
                stack.pop()
            out.append(char)
        i += 1
    try:
        return json.loads("".join(out))
    except json.JSONDecodeError as exc:
        raise BlockFailure(f"{block.where}: the excerpt is not JSON with `...` elisions: {exc}") from exc


def check_excerpt(block: Block, workdir: Path, file_name: str) -> None:
    """The block must match the first line of ``file_name``, written by an earlier block of the page."""
    path = workdir / file_name
    if not path.is_file():
        raise BlockFailure(f"{block.where}: excerpt of {file_name}, but no earlier block wrote that file")
    first = path.read_text(encoding="utf-8").splitlines()[0]
    problem = _mismatch(parse_excerpt(block), json.loads(first), "")
    if problem is not None:
        raise BlockFailure(f"{block.where}: does not match the first line of {file_name}: {problem}")


def _mismatch(shown: Any, real: Any, at: str) -> str | None:
    """Where ``shown`` (with elisions) and ``real`` differ, or None."""
    if shown == "...":
        return None
    if isinstance(shown, dict):
        if not isinstance(real, dict):
            return f"{at or 'the row'} is {real!r}"
        keys = [k for k in shown if k != ELIDED]
        missing = [k for k in keys if k not in real]
        if missing:
            return f"{at or 'the row'} has no {missing}"
        if ELIDED not in shown and set(keys) != set(real):
            return f"{at or 'the row'} also has {sorted(set(real) - set(keys))} (add `...` to elide)"
        for key in keys:
            problem = _mismatch(shown[key], real[key], f"{at}.{key}" if at else key)
            if problem:
                return problem
        return None
    if isinstance(shown, list):
        if not isinstance(real, list):
            return f"{at} is {real!r}"
        elided = bool(shown) and shown[-1] == ELIDED
        items = shown[:-1] if elided else shown
        if len(real) < len(items) or (not elided and len(real) != len(items)):
            return f"{at} has {len(real)} elements, the excerpt shows {len(items)}{' and more' if elided else ''}"
        for n, (a, b) in enumerate(zip(items, real, strict=False)):
            problem = _mismatch(a, b, f"{at}[{n}]")
            if problem:
                return problem
        return None
    if shown != real or type(shown) is not type(real):
        return f"{at} is {real!r}, the excerpt shows {shown!r}"
    return None


# --- printed output ------------------------------------------------------------------------------------------

_NUMBER = re.compile(r"\d+(?:,\d{3})*(?:\.\d+)?")


def check_output(block: Block, printed: str | None, any_numbers: bool) -> None:
    """The block must be what the block before it printed; ``...`` lines stand for any lines."""
    if printed is None:
        raise BlockFailure(f"{block.where}: an output block must follow a python or bash block")
    shown = block.code.strip("\n").splitlines()
    real = [line.rstrip() for line in printed.strip("\n").splitlines()]
    patterns = [None if line.strip() == "..." else _line_pattern(line.rstrip(), any_numbers) for line in shown]
    if not _lines_match(patterns, real):
        raise BlockFailure(f"{block.where}: the output block does not match what was printed:\n{printed}")


def _line_pattern(line: str, any_numbers: bool) -> re.Pattern[str]:
    if not any_numbers:
        return re.compile(re.escape(line))
    parts = _NUMBER.split(line)
    return re.compile(_NUMBER.pattern.join(re.escape(part) for part in parts))


def _lines_match(patterns: list[re.Pattern[str] | None], lines: list[str]) -> bool:
    if not patterns:
        return not lines
    head, rest = patterns[0], patterns[1:]
    if head is None:
        return any(_lines_match(rest, lines[n:]) for n in range(len(lines) + 1))
    return bool(lines) and head.fullmatch(lines[0]) is not None and _lines_match(rest, lines[1:])
