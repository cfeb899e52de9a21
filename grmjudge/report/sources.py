"""What ``grmjudge report`` reads: a ``grmjudge score`` output file, or a ``grmjudge eval`` output folder.

Neither output repeats the query and responses (they can be large), so a run is joined with its input by id: the
score input file given as ``--input``, or the eval's benchmark, reloaded from the data files its ``results.json``
names (or ``--data``). Without them the report still shows every judgement; a note on the page says what is
missing and why. The run is read as a stream, so its size is bounded by disk, not memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from grmjudge.eval.calls import journal_passes, labelled_best, newest_lines
from grmjudge.eval.items import LoadedBenchmark
from grmjudge.exceptions import ConfigurationError
from grmjudge.journal import Journal
from grmjudge.report.items import ItemView, item_view


@dataclass(frozen=True)
class Texts:
    """What the judge was shown for an item: the query (one paragraph per message) and the responses."""

    query: str
    responses: tuple[str, ...]


class Run(Protocol):
    """A run to report on: its items streamed in file order, and the texts of the items the page shows."""

    notes: list[str]
    results: dict[str, Any] | None

    @property
    def name(self) -> str:
        """How the page names the run."""
        ...

    def items(self, only: set[int] | None = None) -> Iterator[tuple[int, ItemView]]:
        """Every item with its position in the run, or only the positions in ``only`` (the others are not parsed)."""
        ...

    def texts(self, ids: set[str]) -> dict[str, Texts]:
        """The texts of the items in ``ids`` that the run's input holds."""
        ...

    def about(self) -> dict[str, str]:
        """What judged the run, for the page's header."""
        ...


def open_run(path: Path, *, inputs: Path | None = None, data: Path | None = None, pass_name: str | None = None) -> Run:
    """The run at ``path``: an eval folder (it holds ``items.jsonl``) or a score output file."""
    if path.is_dir():
        if inputs is not None:
            raise ConfigurationError("--input is for a grmjudge score output; an eval run's texts come from --data")
        return EvalRun.open(path, data=data, pass_name=pass_name)
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such file or folder")
    if data is not None or pass_name is not None:
        raise ConfigurationError("--data and --pass are for a grmjudge eval folder")
    return ScoreRun(path, inputs)


def query_text(query: Any) -> str:
    """A query string as is; a list of chat messages as one ``role: content`` paragraph each."""
    if isinstance(query, str):
        return query
    parts: list[str] = []
    for message in query:
        parts.append(_message_text(message))
    return "\n\n".join(parts)


def _message_text(message: Any) -> str:
    if isinstance(message, Mapping):
        fields: Mapping[str, Any] = message  # pyright: ignore[reportUnknownVariableType]
        return f"{fields['role']}: {fields['content']}"
    return f"{message.role}: {message.content}"


@dataclass
class ScoreRun:
    """A ``grmjudge score`` output: one JSON line per item, with its label when the input had one."""

    path: Path
    inputs: Path | None
    results: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list[str])

    def __post_init__(self) -> None:
        if self.inputs is None:
            self.notes.append("Queries and responses are not shown: give the scored input file with --input.")

    @property
    def name(self) -> str:
        """The output file's name."""
        return self.path.name

    def items(self, only: set[int] | None = None) -> Iterator[tuple[int, ItemView]]:
        """Every output line as an item (or the lines at the positions in ``only``)."""
        for order, (number, line) in enumerate(Journal(self.path, kind="grmjudge score output line").lines(only)):
            if line is None:
                continue
            if "id" not in line or "samples" not in line:
                raise ConfigurationError(f"{self.path} line {number}: not a grmjudge score output line")
            yield order, item_view(str(line["id"]), line, label=line.get("label"), section=None)

    def about(self) -> dict[str, str]:
        """The judge of the first line's provenance (every line of one output shares it)."""
        for _, line in Journal(self.path, kind="grmjudge score output line").records():
            p: Mapping[str, Any] = line.get("provenance") or {}
            return {
                "Run": f"grmjudge score output {self.path.name}",
                "Judge": f"{_model_name(p.get('model'))} on {p.get('backend')}, template {p.get('template_id')}",
                "Sampling": f"k={p.get('k')}, temperature {p.get('temperature')}, shuffle {p.get('shuffle')}, "
                f"seed {p.get('seed')}" + (f", meta RM keeps {p.get('k_meta') or 'k/2'}" if p.get("meta") else ""),
            }
        return {"Run": f"grmjudge score output {self.path.name} (empty)"}

    def texts(self, ids: set[str]) -> dict[str, Texts]:
        """The query and responses of ``ids`` from the input file (an item's id defaults to its line number)."""
        if self.inputs is None:
            return {}
        found: dict[str, Texts] = {}
        for number, line in Journal(self.inputs, kind="grmjudge score input line").records():
            item_id = str(line.get("id", number))
            if item_id in ids:
                query = line["query"] if "query" in line else line.get("messages", [])
                found[item_id] = Texts(query_text(query), tuple(str(r) for r in line.get("responses", ())))
        return found


@dataclass
class EvalRun:
    """A ``grmjudge eval`` folder: ``items.jsonl`` (one line per judged call), ``results.json`` and its benchmark."""

    path: Path
    pass_name: str
    results: dict[str, Any] | None
    benchmark: LoadedBenchmark | None
    notes: list[str] = field(default_factory=list[str])

    @classmethod
    def open(cls, path: Path, *, data: Path | None, pass_name: str | None) -> EvalRun:
        """Read the folder's results and reload its benchmark when its data can be found."""
        journal = path / "items.jsonl"
        if not journal.is_file():
            raise ConfigurationError(f"{path}: no items.jsonl, so not a grmjudge eval output folder")
        passes = journal_passes(journal)
        chosen = pass_name or ("sampled" if "sampled" in passes else (passes[0] if passes else "greedy"))
        if pass_name is not None and pass_name not in passes:
            raise ConfigurationError(f"{journal} has no pass {pass_name!r}; it has {', '.join(passes) or 'none'}")
        results_path = path / "results.json"
        results: dict[str, Any] | None = None
        if results_path.is_file():
            results = json.loads(results_path.read_text(encoding="utf-8"))
        notes: list[str] = []
        benchmark = _reload(results, data, notes)
        return cls(path, chosen, results, benchmark, notes=notes)

    @property
    def name(self) -> str:
        """The folder's name and the pass shown."""
        return f"{self.path.name} (pass {self.pass_name})"

    def items(self, only: set[int] | None = None) -> Iterator[tuple[int, ItemView]]:
        """The pass's calls, each call's newest line (or those at the positions in ``only``)."""
        labels = labelled_best(self.benchmark) if self.benchmark is not None else {}
        sections = _sections(self.benchmark)
        for order, line in enumerate(newest_lines(self.path / "items.jsonl", self.pass_name)):
            if only is not None and order not in only:
                continue
            call_id = str(line["call_id"])
            error: Any = line.get("error")
            label, section = labels.get(call_id), sections.get(call_id)
            if error is not None:
                yield order, item_view(call_id, None, label=label, section=section, error=str(error["type"]))
            else:
                yield order, item_view(call_id, line.get("result"), label=label, section=section)

    def about(self) -> dict[str, str]:
        """The benchmark, judge and protocol from ``results.json``."""
        facts = {"Run": f"grmjudge eval output {self.path.name}, pass {self.pass_name}"}
        if self.results is not None:
            judge: Mapping[str, Any] = self.results.get("judge") or {}
            meta: Mapping[str, Any] | None = judge.get("meta")
            facts["Benchmark"] = str(self.results.get("benchmark"))
            facts["Judge"] = f"{judge.get('type')} {_model_name(judge.get('model'))} on {judge.get('backend')}" + (
                f", meta RM {meta.get('type')}" if meta else ""
            )
            protocol: Mapping[str, Any] = self.results.get("protocol") or {}
            facts["Protocol"] = f"k in {protocol.get('ks')}, tie policy {protocol.get('tie_policy')}"
        return facts

    def texts(self, ids: set[str]) -> dict[str, Texts]:
        """The calls' query and responses, from the reloaded benchmark."""
        if self.benchmark is None:
            return {}
        return {
            call.id: Texts(query_text(call.query), call.responses) for call in self.benchmark.calls() if call.id in ids
        }


def _model_name(model: Any) -> str:
    """A model id as is; a local model folder by its last two parts (the rest is where it sits on one machine)."""
    text = str(model)
    path = Path(text)
    return str(Path(*path.parts[-2:])) if path.is_absolute() and len(path.parts) > 2 else text


def _sections(benchmark: LoadedBenchmark | None) -> dict[str, str]:
    if benchmark is None:
        return {}
    return {call.id: item.subset for item in benchmark.items for call in item.calls}


def _reload(results: Mapping[str, Any] | None, data: Path | None, notes: list[str]) -> LoadedBenchmark | None:
    """The run's benchmark, for its texts, labels and sections; ``None`` with a note when it cannot be read."""
    if results is None:
        notes.append("No results.json: the run did not finish, so labels, sections and texts are not shown.")
        return None
    name = str(results["benchmark"])
    source: Mapping[str, Any] = results.get("data") or {}
    path = data or _data_path([str(f["path"]) for f in source.get("files", ())])
    if path is None:
        notes.append(
            "Queries, responses, labels and sections are not shown: the run's data files are not here "
            "(give them with --data)."
        )
        return None
    options: Mapping[str, str] = results.get("options") or {}
    try:
        return _load(name, path, options)
    except (ConfigurationError, OSError, ValueError) as exc:
        notes.append(f"Queries, responses, labels and sections are not shown: {path} could not be read ({exc}).")
        return None


def _data_path(files: Sequence[str]) -> Path | None:
    paths = [Path(f) for f in files]
    if not paths or not all(p.is_file() for p in paths):
        return None
    if len(paths) == 1:
        return paths[0]
    parents = {p.parent for p in paths}
    return parents.pop() if len(parents) == 1 else None


def _load(name: str, path: Path, options: Mapping[str, str]) -> LoadedBenchmark:
    if name == "toy-spct":
        from grmjudge.training.toy.pipeline import heldout_benchmark

        return heldout_benchmark(path)
    from grmjudge.eval.loaders import load_benchmark

    rmb_bon = "pairwise" if options.get("rmb_bon") == "pairwise" else "listwise"
    return load_benchmark(
        name,
        path,
        split=options.get("split"),
        prior_sets=options.get("prior_sets") == "true",
        rmb_bon=rmb_bon,
        limit=int(options["limit"]) if "limit" in options else None,
    )
