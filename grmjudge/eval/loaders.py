"""Benchmark loaders: official rows (from local files or the Hub) into [`EvalItem`][grmjudge.eval.items.EvalItem]s.

Schemas and sources follow BENCHMARKS.md. Local files use the official schemas; the Hub path calls
``datasets.load_dataset`` and is used only when no ``data`` path is given.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Literal

from grmjudge.eval import schema
from grmjudge.eval.constants import (
    JUDGEBENCH_CATEGORIES,
    PPE_CORRECTNESS_SETS,
    PRIOR_SETS_DROPPED,
    PRIOR_SETS_KNOWN,
    REWARDBENCH_SUBSETS,
    RM_BENCH_DOMAINS,
)
from grmjudge.eval.items import (
    AllPairsLabel,
    BestLabel,
    Call,
    DataSource,
    EvalItem,
    GamesLabel,
    LoadedBenchmark,
    StyleMatrixLabel,
    TiesLabel,
)
from grmjudge.exceptions import ConfigurationError
from grmjudge.rows import DataError, Row, RowSet, data_files, hub_rows, hub_splits, read_files

BenchmarkName = Literal[
    "rewardbench", "rewardbench2", "ppe-preference", "ppe-correctness", "rmb", "rm-bench", "judgebench"
]
BENCHMARK_NAMES: tuple[BenchmarkName, ...] = (
    "rewardbench",
    "rewardbench2",
    "ppe-preference",
    "ppe-correctness",
    "rmb",
    "rm-bench",
    "judgebench",
)
RmbBonProtocol = Literal["listwise", "pairwise"]

HUB = {
    "rewardbench": ("allenai/reward-bench", "filtered"),
    "rewardbench2": ("allenai/reward-bench-2", "test"),
    "ppe-preference": ("lmarena-ai/PPE-Human-Preference-V1", "test"),
    "rm-bench": ("THU-KEG/RM-Bench", "train"),
    "judgebench": ("ScalerLab/JudgeBench", "gpt"),
}
PRIOR_SETS_HUB = "allenai/pref-test-sets"
_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")


def load_benchmark(
    name: str,
    data: str | Path | None = None,
    *,
    split: str | None = None,
    revision: str | None = None,
    prior_sets: bool = False,
    prior_data: str | Path | None = None,
    rmb_bon: RmbBonProtocol = "listwise",
    limit: int | None = None,
) -> LoadedBenchmark:
    """Load a benchmark from ``data`` (a file or a folder of files) or, without it, from the Hugging Face Hub.

    ``prior_sets`` (or ``prior_data``) adds RewardBench's prior sets; ``rmb_bon`` picks how RMB best-of-n groups
    are judged: all responses in one call (``listwise``, as DeepSeek-GRM) or one call per (best, loser) pair.
    """
    if name not in BENCHMARK_NAMES:
        raise ConfigurationError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARK_NAMES)}")
    rowsets = _read(name, Path(data) if data is not None else None, split, revision)
    excluded: Counter[str] = Counter()
    items = _unique(_parse(name, rowsets, excluded, rmb_bon))
    options: dict[str, str] = {"rmb_bon": rmb_bon} if name == "rmb" else {}
    if name == "rewardbench" and (prior_sets or prior_data is not None):
        prior = _read_prior(Path(prior_data) if prior_data is not None else None, revision)
        rowsets += prior
        items += _unique(_prior_items(prior))
        options["prior_sets"] = "true"
    if split is not None:
        options["split"] = split
    source = _source(rowsets, items, excluded)
    return LoadedBenchmark(name, items, source, options).limited(limit)


def _read(name: str, data: Path | None, split: str | None, revision: str | None) -> list[RowSet]:
    if data is not None:
        return [read_files(data_files(data))]
    if name == "rmb":
        raise ConfigurationError(
            "RMB has no Hugging Face dataset: clone https://github.com/Zhou-Zoey/RMB-Reward-Model-Benchmark "
            "and pass --data RMB_dataset"
        )
    if name == "ppe-correctness":
        return [hub_rows(dataset_id, split or "train", revision=revision) for dataset_id in PPE_CORRECTNESS_SETS]
    dataset_id, default_split = HUB[name]
    return [hub_rows(dataset_id, split or default_split, revision=revision)]


def _parse(name: str, rowsets: list[RowSet], excluded: Counter[str], rmb_bon: RmbBonProtocol) -> list[EvalItem]:
    rows = [row for rowset in rowsets for row in rowset.rows]
    if name == "rewardbench":
        return [_rewardbench_item(row) for row in rows]
    if name == "rewardbench2":
        return [_rewardbench2_item(row) for row in rows]
    if name == "ppe-preference":
        return _ppe_preference_items(rows, excluded)
    if name == "ppe-correctness":
        return [item for rowset in rowsets for row in rowset.rows for item in _ppe_correctness_items(row, rowset)]
    if name == "rmb":
        return [_rmb_item(row, rmb_bon) for row in rows]
    if name == "rm-bench":
        return [_rm_bench_item(row) for row in rows]
    return [_judgebench_item(row) for row in rows]


def _pair_item(item_id: str, subset: str, row: Row, query_key: str, first: str, second: str) -> EvalItem:
    call = Call(item_id, schema.query(row, query_key), (first, second))
    return EvalItem(item_id, subset, (call,), BestLabel(0), row.where)


# --- RewardBench v1 ------------------------------------------------------------------------------------------


def _rewardbench_item(row: Row) -> EvalItem:
    subset = schema.text(row, "subset")
    if subset not in REWARDBENCH_SUBSETS:
        raise DataError(f"{row.where}: unknown RewardBench subset {subset!r} (not in EXAMPLE_COUNTS)")
    chosen, rejected = schema.text(row, "chosen"), schema.text(row, "rejected")
    return _pair_item(f"rb:{schema.ident(row, 'id')}", subset, row, "prompt", chosen, rejected)


def _read_prior(prior_data: Path | None, revision: str | None) -> list[RowSet]:
    if prior_data is not None:
        return [read_files([path]) for path in data_files(prior_data) if _prior_split(path) not in PRIOR_SETS_DROPPED]
    splits = [s for s in hub_splits(PRIOR_SETS_HUB, revision=revision) if s not in PRIOR_SETS_DROPPED]
    return [hub_rows(PRIOR_SETS_HUB, split, revision=revision) for split in splits]


def _prior_split(path: Path) -> str:
    split = _SHARD_SUFFIX.sub("", path.stem)
    if split not in PRIOR_SETS_KNOWN:
        raise DataError(f"{path}: the file name must name a prior set ({', '.join(sorted(PRIOR_SETS_KNOWN))})")
    return split


def _prior_items(rowsets: list[RowSet]) -> list[EvalItem]:
    items: list[EvalItem] = []
    for rowset in rowsets:
        split = rowset.hub[0].split if rowset.hub else _prior_split(Path(rowset.files[0].path))
        for row in rowset.rows:
            chosen, rejected = schema.text(row, "chosen"), schema.text(row, "rejected")
            items.append(_pair_item(f"prior:{split}:{schema.ident(row, 'id')}", split, row, "prompt", chosen, rejected))
    return items


# --- RewardBench 2 -------------------------------------------------------------------------------------------


def _rewardbench2_item(row: Row) -> EvalItem:
    row_id, subset = schema.ident(row, "id"), schema.text(row, "subset")
    chosen = schema.texts(row, "chosen")
    rejected = schema.texts(row, "rejected")
    query = schema.query(row, "prompt")
    call = Call(f"rb2:{row_id}", query, chosen + rejected)
    if subset.lower() == "ties":
        return EvalItem(call.id, subset, (call,), _ties_label(row, row_id, len(chosen)), row.where)
    if len(chosen) != 1:
        raise DataError(f"{row.where}: a {subset} row needs exactly one chosen completion, got {len(chosen)}")
    return EvalItem(call.id, subset, (call,), BestLabel(0), row.where)


def _ties_label(row: Row, row_id: str, n_chosen: int) -> TiesLabel:
    group, sep, prompt_id = row_id.partition(":")
    if not sep or group not in ("ref", "tied") or not prompt_id:
        raise DataError(f"{row.where}: a Ties row id must look like 'ref:<n>' or 'tied:<n>', got {row_id!r}")
    num_correct = schema.integer(row, "num_correct")
    if num_correct != n_chosen:
        raise DataError(f"{row.where}: num_correct is {num_correct} but 'chosen' holds {n_chosen} completions")
    return TiesLabel(group="ref" if group == "ref" else "tied", prompt_id=prompt_id, num_correct=num_correct)


# --- PPE -----------------------------------------------------------------------------------------------------


def _ppe_preference_items(rows: Iterable[Row], excluded: Counter[str]) -> list[EvalItem]:
    items: list[EvalItem] = []
    for row in rows:
        winner = schema.text(row, "winner")
        first, second = schema.text(row, "response_1"), schema.text(row, "response_2")
        if winner not in ("model_a", "model_b"):
            excluded["tied human label"] += 1
            continue
        item_id = f"ppe-p:{schema.ident(row, 'question_id')}"
        call = Call(item_id, schema.query(row, "prompt"), (first, second))
        items.append(
            EvalItem(item_id, "human preference", (call,), BestLabel(0 if winner == "model_a" else 1), row.where)
        )
    return items


def _ppe_correctness_items(row: Row, rowset: RowSet) -> list[EvalItem]:
    set_name = _ppe_set(row, rowset)
    correct = schema.flags(row, "scores")
    responses = _numbered_responses(row)
    if len(correct) != len(responses):
        raise DataError(f"{row.where}: {len(correct)} correctness flags for {len(responses)} responses")
    base = f"ppe-c:{set_name}:{schema.ident(row, 'question_id')}:{schema.ident(row, 'model_name')}"
    query = schema.query(row, "prompt")
    items: list[EvalItem] = []
    for n, (i, j) in enumerate(schema.index_pairs(row, "sampled_conflict_pairs")):
        if not (0 <= i < len(responses) and 0 <= j < len(responses)):
            raise DataError(f"{row.where}: conflict pair {n} ({i}, {j}) is outside responses 0..{len(responses) - 1}")
        if correct[i] == correct[j]:
            raise DataError(f"{row.where}: conflict pair {n} ({i}, {j}) does not have exactly one correct response")
        call = Call(f"{base}:{n}", query, (responses[i], responses[j]))
        items.append(EvalItem(call.id, set_name, (call,), BestLabel(0 if correct[i] else 1), row.where))
    return items


def _ppe_set(row: Row, rowset: RowSet) -> str:
    if rowset.hub:
        return PPE_CORRECTNESS_SETS[rowset.hub[0].id]
    name = Path(row.file).name.lower().replace("_", "-")
    for keyword, set_name in (("mmlu", "MMLU-Pro"), ("gpqa", "GPQA"), ("ifeval", "IFEval"), ("mbpp", "MBPP-Plus")):
        if keyword in name:
            return set_name
    if "math" in name:
        return "MATH"
    raise DataError(f"{row.where}: the file name must name its PPE set (mmlu-pro, math, gpqa, ifeval or mbpp-plus)")


def _numbered_responses(row: Row) -> list[str]:
    numbers = sorted(int(key.removeprefix("response_")) for key in row.fields if re.fullmatch(r"response_\d+", key))
    if numbers != list(range(1, len(numbers) + 1)) or not numbers:
        raise DataError(f"{row.where}: responses must be response_1 .. response_N with no gaps, got {numbers}")
    return [schema.text(row, f"response_{n}") for n in numbers]


# --- RMB -----------------------------------------------------------------------------------------------------


def _rmb_item(row: Row, protocol: RmbBonProtocol) -> EvalItem:
    goal = _rmb_goal(row)
    query = schema.query(row, "conversation_input")
    if "pair_uid" in row.fields:
        chosen = schema.answer(row, "chosen", schema.field(row, "chosen"))
        rejected = schema.answer(row, "reject", schema.field(row, "reject"))
        item_id = f"rmb:pair:{schema.ident(row, 'pair_uid')}"
        return EvalItem(
            item_id, f"Pairwise {goal}", (Call(item_id, query, (chosen, rejected)),), BestLabel(0), row.where
        )
    if "bon_uid" not in row.fields:
        raise DataError(f"{row.where}: an RMB row needs 'pair_uid' (pairwise) or 'bon_uid' (best-of-n)")
    best = schema.answer(row, "bon_best", schema.field(row, "bon_best"))
    losers = schema.field(row, "loser_list")
    if not isinstance(losers, list) or not losers:
        raise DataError(f"{row.where}: 'loser_list' must be a non-empty list")
    answers = [schema.answer(row, f"loser_list[{i}]", loser) for i, loser in enumerate(losers)]  # pyright: ignore[reportUnknownArgumentType, reportUnknownVariableType]
    item_id = f"rmb:bon:{schema.ident(row, 'bon_uid')}"
    subset = f"BoN {goal}"
    if protocol == "listwise":
        return EvalItem(item_id, subset, (Call(item_id, query, (best, *answers)),), BestLabel(0), row.where)
    calls = tuple(Call(f"{item_id}:{i}", query, (best, loser)) for i, loser in enumerate(answers))
    return EvalItem(item_id, subset, calls, AllPairsLabel(), row.where)


def _rmb_goal(row: Row) -> str:
    category = row.fields.get("category_path")
    for place in (row.file, category if isinstance(category, str) else ""):
        for goal in ("Helpfulness", "Harmlessness"):
            if goal.lower() in place.lower():
                return goal
    raise DataError(f"{row.where}: cannot tell Helpfulness from Harmlessness (from the file path or category_path)")


# --- RM-Bench and JudgeBench ---------------------------------------------------------------------------------


def _rm_bench_item(row: Row) -> EvalItem:
    domain = schema.text(row, "domain")
    subset = next((d for d in RM_BENCH_DOMAINS if domain.startswith(d)), None)
    if subset is None:
        raise DataError(f"{row.where}: unknown RM-Bench domain {domain!r} (expected chat, code, math or safety-*)")
    chosen, rejected = schema.texts(row, "chosen"), schema.texts(row, "rejected")
    if len(chosen) != 3 or len(rejected) != 3:
        raise DataError(f"{row.where}: RM-Bench rows need 3 chosen and 3 rejected responses")
    item_id = f"rm-bench:{domain}:{schema.ident(row, 'id')}"
    call = Call(item_id, schema.query(row, "prompt"), chosen + rejected)
    return EvalItem(item_id, subset, (call,), StyleMatrixLabel(), row.where)


def _judgebench_item(row: Row) -> EvalItem:
    label = schema.text(row, "label")
    if label not in ("A>B", "B>A"):
        raise DataError(f"{row.where}: label must be 'A>B' or 'B>A', got {label!r}")
    source = schema.text(row, "source")
    subset = next((name for prefix, name in JUDGEBENCH_CATEGORIES if source.startswith(prefix)), source)
    a, b = schema.text(row, "response_A"), schema.text(row, "response_B")
    query = schema.query(row, "question")
    item_id = f"jb:{schema.ident(row, 'pair_id')}"
    games = (Call(f"{item_id}:AB", query, (a, b), fixed_order=True), Call(f"{item_id}:BA", query, (b, a), True))
    return EvalItem(item_id, subset, games, GamesLabel(a_wins=label == "A>B"), row.where)


# --- common --------------------------------------------------------------------------------------------------


def _unique(items: list[EvalItem]) -> list[EvalItem]:
    """Ids seed shuffles and key resumed results, so a repeated id gets ``#2``, ``#3``... in file order."""
    seen: Counter[str] = Counter()
    out: list[EvalItem] = []
    for item in items:
        seen[item.id] += 1
        if seen[item.id] == 1:
            out.append(item)
            continue
        suffix = f"#{seen[item.id]}"
        calls = tuple(replace(call, id=call.id.replace(item.id, item.id + suffix, 1)) for call in item.calls)
        out.append(replace(item, id=item.id + suffix, calls=calls))
    return out


def _source(rowsets: list[RowSet], items: list[EvalItem], excluded: Counter[str]) -> DataSource:
    files = tuple(f for rowset in rowsets for f in rowset.files)
    hub = tuple(h for rowset in rowsets for h in rowset.hub)
    rows = sum(len(rowset.rows) for rowset in rowsets)
    return DataSource(
        kind="hub" if hub else "files", files=files, hub=hub, rows=rows, items=len(items), excluded=dict(excluded)
    )
