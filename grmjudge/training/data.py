"""The canonical SPCT training example, adapters from common dataset shapes, and loading them.

One example is a conversation (its last turn the user's query), n >= 1 responses and a label: the index of
the single best response for n >= 2, or a 0/1 correctness rating for n = 1. Every stage reads this shape.

Adapters (``format=``): ``pairwise`` (``chosen``/``rejected`` as strings with a ``prompt``, or as message
lists), ``listwise`` (``responses`` + ``best``), ``ratings`` (``responses`` + numeric ``ratings``: best =
unique maximum, ties dropped and counted), ``rating_rows`` (HelpSteer2: one row per response, grouped by
prompt), ``single`` (``response`` + 0/1 ``label``) and ``canonical`` (this module's own JSONL). A row that
does not fit is reported with its position and the reason; nothing is skipped silently.

Only the standard library and pydantic are needed, except for parquet files (pyarrow) and Hugging Face hub
datasets (``datasets``), both in the ``train`` extra.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from grmjudge._inputs import content_id
from grmjudge.exceptions import ConfigurationError, InvalidInputError
from grmjudge.prompts import normalise_query
from grmjudge.rows import DataError, RowError, read_rows, row_error_reason, row_id
from grmjudge.training.decontamination import PROMPT_KEYS, DecontaminationReport, decontaminate, eval_prompts
from grmjudge.training.rewards import Label
from grmjudge.types import Message
from grmjudge.voting import derive_seed

__all__ = [
    "FORMATS",
    "DataError",
    "DecontaminationReport",
    "LoadReport",
    "RowError",
    "SPCTExample",
    "convert_rows",
    "decontaminate",
    "load_examples",
    "read_rows",
    "write_examples",
]

DataFormat = Literal["auto", "canonical", "listwise", "pairwise", "ratings", "rating_rows", "single"]
FORMATS: tuple[str, ...] = ("auto", "canonical", "listwise", "pairwise", "ratings", "rating_rows", "single")


class SPCTExample(BaseModel):
    """One training item: a conversation, its responses and the label.

    ``best`` (n >= 2) indexes ``responses``; ``rating`` (n = 1) is 1 for a correct response and 0 otherwise.
    ``strength`` is an optional preference strength (e.g. HelpSteer2's); ``source``, ``domain`` and
    ``split`` are free tags carried into statistics and logs.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1)
    query: tuple[Message, ...]
    responses: tuple[str, ...] = Field(min_length=1)
    best: int | None = None
    rating: int | None = None
    source: str = ""
    domain: str | None = None
    strength: float | None = None
    split: str = "train"

    @field_validator("query", mode="before")
    @classmethod
    def _query_messages(cls, value: Any) -> tuple[Message, ...]:
        return normalise_query(value)

    @model_validator(mode="after")
    def _label_fits(self) -> SPCTExample:
        self.label  # noqa: B018  (validates best / rating against n)
        return self

    @property
    def n(self) -> int:
        """The number of responses."""
        return len(self.responses)

    @property
    def label(self) -> Label:
        """The label as the correctness rule takes it."""
        return Label(n=self.n, best=self.best, rating=self.rating)


@dataclass
class LoadReport:
    """What loading produced: the examples, the rows that failed, and the rows dropped on purpose.

    ``dropped_ties`` counts rating rows whose top rating is shared (no unique best); ``decontaminated``
    counts examples removed because their prompt appears in an evaluation set.
    """

    examples: list[SPCTExample] = field(default_factory=list[SPCTExample])
    errors: list[RowError] = field(default_factory=list[RowError])
    dropped_ties: int = 0
    decontaminated: int = 0

    def summary(self) -> dict[str, int]:
        """Counts for logs and run cards."""
        return {
            "examples": len(self.examples),
            "errors": len(self.errors),
            "dropped_ties": self.dropped_ties,
            "decontaminated": self.decontaminated,
        }


def convert_rows(
    rows: Iterable[Mapping[str, Any]],
    *,
    format: DataFormat = "auto",
    source: str = "",
    seed: int = 0,
    column_map: Mapping[str, str] | None = None,
    rating_key: str = "helpfulness",
) -> LoadReport:
    """Turn rows into examples, collecting a [`RowError`][grmjudge.rows.RowError] for each bad row.

    ``format="auto"`` picks the adapter from the first row's columns. ``column_map`` renames columns first
    (``{"question": "prompt"}``). Pairwise rows are put in a random A/B order seeded by (``seed``, id), so the
    labelled best is not always first. Rows without an ``id`` get a hash of their content; two rows with the
    same id are an error.
    """
    renamed = [_rename(row, column_map) for row in rows]
    report = LoadReport()
    if not renamed:
        return report
    chosen = _detect(renamed[0]) if format == "auto" else format
    if chosen == "rating_rows":
        items: Iterable[tuple[int, Mapping[str, Any]]] = _group_rating_rows(renamed, rating_key, report)
        chosen = "ratings"
    else:
        items = enumerate(renamed)
    seen: set[str] = set()
    for index, row in items:
        try:
            example = _ADAPTERS[chosen](row, source, seed)
        except _DroppedTie:
            report.dropped_ties += 1
            continue
        except (InvalidInputError, ValidationError, KeyError, TypeError, ValueError) as exc:
            report.errors.append(RowError(index, row_error_reason(exc), row_id(row)))
            continue
        if example.id in seen:
            duplicate = "duplicate id (an earlier row has the same id or content)"
            report.errors.append(RowError(index, duplicate, example.id))
            continue
        seen.add(example.id)
        report.examples.append(example)
    return report


def load_examples(
    source: str | Path,
    *,
    format: DataFormat = "auto",
    split: str = "train",
    name: str | None = None,
    source_name: str | None = None,
    seed: int = 0,
    column_map: Mapping[str, str] | None = None,
    rating_key: str = "helpfulness",
    decontaminate_with: Sequence[str | Path] = (),
    on_error: Literal["raise", "report"] = "raise",
) -> LoadReport:
    """Read ``source`` (a local file or a hub id) and convert its rows; see `convert_rows` for the options.

    ``decontaminate_with`` names evaluation sets whose prompts must not appear in training (see
    `decontaminate`). With ``on_error="raise"`` any bad row raises
    [`DataError`][grmjudge.rows.DataError] listing all of them; ``"report"`` returns them in
    ``LoadReport.errors`` for the caller to handle.
    """
    tag = source_name if source_name is not None else _default_source_name(source)
    rows = read_rows(source, split=split, name=name)
    report = convert_rows(rows, format=format, source=tag, seed=seed, column_map=column_map, rating_key=rating_key)
    if report.errors and on_error == "raise":
        raise DataError.listing(str(source), report.errors)
    if decontaminate_with:
        prompts = [prompt for path in decontaminate_with for prompt in eval_prompts(read_rows(path, split=split))]
        cleaned = decontaminate(report.examples, prompts)
        report.examples = cleaned.kept
        report.decontaminated = len(cleaned.dropped_ids)
    return report


def write_examples(path: str | Path, examples: Iterable[SPCTExample]) -> int:
    """Write examples as canonical JSONL (readable back with ``format="canonical"``); returns the count."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as handle:
        for example in examples:
            handle.write(example.model_dump_json() + "\n")
            count += 1
    return count


class _DroppedTie(Exception):
    """A ratings row whose top rating is shared: dropped on purpose and counted, not an error."""


def _canonical(row: Mapping[str, Any], source: str, seed: int) -> SPCTExample:
    data = dict(row)
    data.setdefault("source", source)
    if "id" not in data:
        data["id"] = content_id(normalise_query(data.get("query", "")), tuple(data.get("responses", ())))
    return SPCTExample.model_validate(data)


def _listwise(row: Mapping[str, Any], source: str, seed: int) -> SPCTExample:
    query = _query(row)
    responses = _strings(row["responses"], "responses")
    if len(responses) < 2:
        raise InvalidInputError("a listwise row needs at least two responses (use format='single' for one)")
    best = row["best"]
    if isinstance(best, bool) or not isinstance(best, int):
        raise InvalidInputError(f"best must be an integer index, got {best!r}")
    return _example(row, query, responses, source, best=best)


def _pairwise(row: Mapping[str, Any], source: str, seed: int) -> SPCTExample:
    chosen, rejected = row["chosen"], row["rejected"]
    prompt = next((row[key] for key in PROMPT_KEYS if key in row), None)
    if prompt is None:
        query, good, bad = _split_conversations(chosen, rejected)
    else:
        query = normalise_query(prompt)
        good, bad = _reply(chosen, "chosen"), _reply(rejected, "rejected")
    if good == bad:
        raise InvalidInputError("chosen and rejected are the same text")
    example_id = row_id(row) or content_id(query, (good, bad))
    swap = random.Random(derive_seed(seed, example_id, "pair-order")).random() < 0.5
    responses = (bad, good) if swap else (good, bad)
    return _example(row, query, responses, source, best=1 if swap else 0, example_id=example_id)


def _ratings(row: Mapping[str, Any], source: str, seed: int) -> SPCTExample:
    query = _query(row)
    responses = _strings(row["responses"], "responses")
    ratings = row["ratings"]
    if not isinstance(ratings, Sequence) or isinstance(ratings, str):
        raise InvalidInputError("ratings must be a list of numbers")
    values: list[float] = []
    for value in ratings:  # pyright: ignore[reportUnknownVariableType]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidInputError(f"ratings must be numbers, got {value!r}")
        values.append(float(value))
    if len(values) != len(responses) or len(responses) < 2:
        raise InvalidInputError(f"{len(values)} ratings for {len(responses)} responses; need one each, at least two")
    top = max(values)
    if values.count(top) > 1:
        raise _DroppedTie
    runner_up = max(v for v in values if v != top)
    strength = row.get("strength", top - runner_up)
    return _example(row, query, responses, source, best=values.index(top), strength=strength)


def _single(row: Mapping[str, Any], source: str, seed: int) -> SPCTExample:
    query = _query(row)
    response = row["response"]
    if not isinstance(response, str):
        raise InvalidInputError(f"response must be a string, got {type(response).__name__}")
    label = row["label"] if "label" in row else row["rating"]
    if label not in (0, 1) or isinstance(label, float):
        raise InvalidInputError(f"a single-response label must be 0/1 or true/false, got {label!r}")
    return _example(row, query, (response,), source, rating=int(label))


_ADAPTERS = {
    "canonical": _canonical,
    "listwise": _listwise,
    "pairwise": _pairwise,
    "ratings": _ratings,
    "single": _single,
}


def _detect(row: Mapping[str, Any]) -> str:
    keys = set(row)
    if {"chosen", "rejected"} <= keys:
        return "pairwise"
    if {"responses", "ratings"} <= keys:
        return "ratings"
    if {"query", "responses"} <= keys <= set(SPCTExample.model_fields):
        return "canonical"
    if "responses" in keys and "best" in keys:
        return "listwise"
    if "response" in keys and ("label" in keys or "rating" in keys):
        return "single"
    raise ConfigurationError(
        f"cannot tell the data format from the columns {sorted(keys)}; pass format= one of {', '.join(FORMATS[1:])} "
        "(HelpSteer2-style rows with one response each need format='rating_rows')"
    )


def _group_rating_rows(
    rows: Sequence[Mapping[str, Any]], rating_key: str, report: LoadReport
) -> list[tuple[int, Mapping[str, Any]]]:
    """Group one-response-per-row data (HelpSteer2) by prompt into ``responses`` + ``ratings`` rows."""
    groups: dict[str, dict[str, Any]] = {}
    first_index: dict[str, int] = {}
    for index, row in enumerate(rows):
        prompt, response, rating = row.get("prompt"), row.get("response"), row.get(rating_key)
        if not isinstance(prompt, str) or not isinstance(response, str) or rating is None:
            needs = f"a rating row needs a string 'prompt', a string 'response' and '{rating_key}'"
            report.errors.append(RowError(index, needs))
            continue
        group = groups.setdefault(prompt, {"prompt": prompt, "responses": [], "ratings": []})
        first_index.setdefault(prompt, index)
        group["responses"].append(response)
        group["ratings"].append(rating)
    return [(first_index[prompt], group) for prompt, group in groups.items()]


def _example(
    row: Mapping[str, Any],
    query: tuple[Message, ...],
    responses: Sequence[str],
    source: str,
    *,
    best: int | None = None,
    rating: int | None = None,
    strength: Any = None,
    example_id: str | None = None,
) -> SPCTExample:
    texts = tuple(responses)
    return SPCTExample(
        id=example_id or row_id(row) or content_id(query, texts),
        query=query,
        responses=texts,
        best=best,
        rating=rating,
        source=str(row.get("source", source)),
        domain=row.get("domain"),
        strength=strength if strength is not None else row.get("strength"),
        split=str(row.get("split", "train")),
    )


def _query(row: Mapping[str, Any]) -> tuple[Message, ...]:
    for key in PROMPT_KEYS:
        if key in row:
            return normalise_query(row[key])
    raise InvalidInputError(f"no query column: expected one of {', '.join(PROMPT_KEYS)}")


def _strings(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise InvalidInputError(f"{name} must be a list of strings")
    texts = tuple(value)  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
    for index, text in enumerate(texts):  # pyright: ignore[reportUnknownVariableType, reportUnknownArgumentType]
        if not isinstance(text, str):
            raise InvalidInputError(f"{name}[{index}] is {type(text).__name__}, not a string")  # pyright: ignore[reportUnknownArgumentType]
    return texts  # pyright: ignore[reportUnknownVariableType]


def _reply(value: Any, name: str) -> str:
    """A response given as a string, or as messages whose last one is the assistant's reply."""
    if isinstance(value, str):
        return value
    messages = _messages(value, name)
    if not messages or messages[-1].role != "assistant":
        raise InvalidInputError(f"{name} must be a string or messages ending with the assistant's reply")
    return messages[-1].content


def _split_conversations(chosen: Any, rejected: Any) -> tuple[tuple[Message, ...], str, str]:
    """Full chosen/rejected conversations: the shared turns are the query, the last assistant turns differ."""
    if isinstance(chosen, str) or isinstance(rejected, str):
        raise InvalidInputError("chosen/rejected are strings but there is no 'prompt' column to say what was asked")
    good, bad = _messages(chosen, "chosen"), _messages(rejected, "rejected")
    if len(good) < 2 or good[-1].role != "assistant" or len(bad) < 2 or bad[-1].role != "assistant":
        raise InvalidInputError("chosen and rejected conversations must end with an assistant reply after a user turn")
    if good[:-1] != bad[:-1]:
        raise InvalidInputError("chosen and rejected conversations differ before their last assistant turn")
    return normalise_query(good[:-1]), good[-1].content, bad[-1].content


def _messages(value: Any, name: str) -> tuple[Message, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise InvalidInputError(f"{name} must be a list of messages")
    try:
        return tuple(Message.model_validate(m) for m in value)  # pyright: ignore[reportUnknownVariableType]
    except ValidationError as exc:
        raise InvalidInputError(f"{name} holds a malformed message: {row_error_reason(exc)}") from exc


def _rename(row: Mapping[str, Any], column_map: Mapping[str, str] | None) -> dict[str, Any]:
    if not column_map:
        return dict(row)
    return {column_map.get(key, key): value for key, value in row.items()}


def _default_source_name(source: str | Path) -> str:
    path = Path(source)
    return path.stem if path.exists() else str(source)
