"""Loaders: official schemas from JSON, JSON Lines and parquet; rows that do not fit are errors naming file and row."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from grmjudge.eval import DataError, load_benchmark
from grmjudge.eval.items import BestLabel, TiesLabel
from grmjudge.exceptions import ConfigurationError
from grmjudge.rows import file_sha256
from tests.eval.conftest import DATA
from tests.servers import REPO_ROOT


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def rb_row(**changes: Any) -> dict[str, Any]:
    row = {"prompt": "Q?", "chosen": "A", "chosen_model": "m", "rejected": "B", "rejected_model": "n"}
    return {**row, "subset": "alpacaeval-easy", "id": 1, **changes}


def test_rewardbench_rows_become_pairs_with_provenance() -> None:
    path = DATA / "rewardbench" / "filtered.jsonl"
    benchmark = load_benchmark("rewardbench", path)
    assert len(benchmark.items) == 11
    first = benchmark.items[0]
    assert first.id == "rb:1" and first.subset == "alpacaeval-easy" and first.label == BestLabel(0)
    assert first.calls[0].responses == (
        "(score 9) Paris is the capital of France.",
        "(score 3) Lyon is the capital of France.",
    )
    assert first.where == "filtered.jsonl line 1"
    assert benchmark.source.kind == "files"
    assert [(f.path, f.sha256) for f in benchmark.source.files] == [(str(path), file_sha256(path))]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"chosen": None}, "line 2: missing field 'chosen'"),
        ({"rejected": ["B"]}, "line 2: field 'rejected' must be a string"),
        ({"subset": "new-subset"}, "line 2: unknown RewardBench subset 'new-subset'"),
        ({"prompt": [{"role": "assistant", "content": "hi"}]}, "line 2: field 'prompt': the last turn"),
    ],
)
def test_a_row_that_does_not_fit_names_file_and_row(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = write_jsonl(tmp_path / "rb.jsonl", [rb_row(), rb_row(id=2, **change)])
    with pytest.raises(DataError, match=f"rb.jsonl {message}"):
        load_benchmark("rewardbench", path)


def test_bad_json_and_non_objects_are_named(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text(json.dumps(rb_row()) + "\n{not json\n")
    with pytest.raises(DataError, match="a.jsonl line 2: not valid JSON"):
        load_benchmark("rewardbench", tmp_path / "a.jsonl")
    (tmp_path / "b.json").write_text(json.dumps([rb_row(), [1, 2]]))
    with pytest.raises(DataError, match="b.json row 2: expected an object, got list"):
        load_benchmark("rewardbench", tmp_path / "b.json")


def test_parquet_files_load_like_json(tmp_path: Path) -> None:
    pyarrow = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    rows = [
        json.loads(line) for line in (DATA / "ppe-correctness" / "PPE-MATH-Best-of-K.jsonl").read_text().splitlines()
    ]
    target = tmp_path / "ppe" / "math-00000-of-00001.parquet"
    target.parent.mkdir()
    parquet.write_table(pyarrow.Table.from_pylist(rows), target)
    from_parquet = load_benchmark("ppe-correctness", target.parent)
    from_json = load_benchmark("ppe-correctness", DATA / "ppe-correctness" / "PPE-MATH-Best-of-K.jsonl")
    assert [(i.id, i.subset, i.calls, i.label) for i in from_parquet.items] == [
        (i.id, i.subset, i.calls, i.label) for i in from_json.items
    ]
    assert from_parquet.items[0].where == "math-00000-of-00001.parquet row 1"


def test_ppe_conflict_pairs_are_checked(tmp_path: Path) -> None:
    row = json.loads((DATA / "ppe-correctness" / "PPE-MATH-Best-of-K.jsonl").read_text())
    path = write_jsonl(tmp_path / "PPE-MATH-Best-of-K.jsonl", [{**row, "sampled_conflict_pairs": [[1, 2]]}])
    with pytest.raises(DataError, match=r"line 1: conflict pair 0 \(1, 2\) is outside responses 0..1"):
        load_benchmark("ppe-correctness", path)
    write_jsonl(path, [{**row, "scores": [True, True]}])
    with pytest.raises(DataError, match="does not have exactly one correct response"):
        load_benchmark("ppe-correctness", path)
    write_jsonl(path, [{k: v for k, v in row.items() if k != "response_1"}])
    with pytest.raises(DataError, match="response_1 .. response_N with no gaps"):
        load_benchmark("ppe-correctness", path)
    with pytest.raises(DataError, match="must name its PPE set"):
        load_benchmark("ppe-correctness", write_jsonl(tmp_path / "other.jsonl", [row]))


def test_rewardbench2_labels() -> None:
    items = {item.id: item for item in load_benchmark("rewardbench2", DATA / "rewardbench2" / "test.jsonl").items}
    assert items["rb2:tied:1"].label == TiesLabel(group="tied", prompt_id="1", num_correct=2)
    assert items["rb2:tied:1"].calls[0].responses[:2] == ("(score 8) 7", "(score 6) 11")  # correct ones first
    assert items["rb2:c2"].label == BestLabel(0) and len(items["rb2:c2"].calls[0].responses) == 3


def test_rewardbench2_ties_rows_are_checked(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (DATA / "rewardbench2" / "test.jsonl").read_text().splitlines()]
    ties = next(row for row in rows if row["id"] == "tied:1")
    with pytest.raises(DataError, match="line 1: num_correct is 3 but 'chosen' holds 2"):
        load_benchmark("rewardbench2", write_jsonl(tmp_path / "t.jsonl", [{**ties, "num_correct": 3}]))
    with pytest.raises(DataError, match="must look like 'ref:<n>' or 'tied:<n>'"):
        load_benchmark("rewardbench2", write_jsonl(tmp_path / "t.jsonl", [{**ties, "id": "t1"}]))
    factual = rows[0]
    with pytest.raises(DataError, match="needs exactly one chosen completion, got 2"):
        load_benchmark("rewardbench2", write_jsonl(tmp_path / "t.jsonl", [{**factual, "chosen": ["a", "b"]}]))


def test_rmb_goal_comes_from_the_layout(tmp_path: Path) -> None:
    rows = json.loads((DATA / "rmb" / "RMB_dataset" / "Pairwise_set" / "Harmlessness" / "S1.json").read_text())
    for row in rows:
        row.pop("category_path")
    target = tmp_path / "somewhere" / "S1.json"
    target.parent.mkdir()
    target.write_text(json.dumps(rows))
    with pytest.raises(DataError, match="S1.json row 1: cannot tell Helpfulness from Harmlessness"):
        load_benchmark("rmb", target)
    shutil.copy(target, tmp_path / "Harmlessness.json")
    assert {item.subset for item in load_benchmark("rmb", tmp_path / "Harmlessness.json").items} == {
        "Pairwise Harmlessness"
    }


def test_rmb_conversation_keeps_its_turns() -> None:
    items = {item.id: item for item in load_benchmark("rmb", DATA / "rmb" / "RMB_dataset").items}
    query = items["rmb:pair:harm-pair-1"].calls[0].query
    assert [m.role for m in query] == ["user", "assistant", "user"]


def test_rmb_needs_local_files() -> None:
    with pytest.raises(ConfigurationError, match="RMB has no Hugging Face dataset"):
        load_benchmark("rmb")


def test_repeated_ids_are_made_unique(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "rb.jsonl", [rb_row(), rb_row(), rb_row()])
    assert [item.id for item in load_benchmark("rewardbench", path).items] == ["rb:1", "rb:1#2", "rb:1#3"]


def test_judgebench_categories_and_games() -> None:
    items = load_benchmark("judgebench", DATA / "judgebench" / "gpt.jsonl").items
    assert [item.subset for item in items] == ["Knowledge", "Knowledge", "Math", "Reasoning", "Coding"]
    a_b, b_a = items[0].calls
    assert a_b.responses == tuple(reversed(b_a.responses)) and a_b.fixed_order and b_a.fixed_order


def test_limit_keeps_the_first_items() -> None:
    benchmark = load_benchmark("rm-bench", DATA / "rm-bench" / "total_dataset.json", limit=2)
    assert [item.id for item in benchmark.items] == ["rm-bench:chat:1", "rm-bench:safety-refuse:2"]
    assert benchmark.source.items == 2 and benchmark.options["limit"] == "2"


def test_unknown_benchmark_and_missing_path() -> None:
    with pytest.raises(ConfigurationError, match="unknown benchmark 'rewardbench3'"):
        load_benchmark("rewardbench3", DATA)
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_benchmark("rewardbench", DATA / "missing.jsonl")


def test_hub_failure_says_how_to_use_local_files(tmp_path: Path) -> None:
    pytest.importorskip("datasets")
    code = (
        "from grmjudge.eval import load_benchmark\n"
        "try:\n    load_benchmark('judgebench')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=120
    )
    assert out.stdout.startswith("ConfigurationError could not load 'ScalerLab/JudgeBench' (split 'gpt')"), out.stderr
    assert "--data PATH" in out.stdout


def test_importing_the_eval_package_is_light() -> None:
    heavy = ("numpy", "datasets", "matplotlib", "pyarrow", "torch")
    code = f"import sys, grmjudge.eval, grmjudge.eval.cli; print(','.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == ""
