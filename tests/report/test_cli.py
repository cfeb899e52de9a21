"""``grmjudge report`` without a browser: arguments, exit statuses, the shown-items rule, notes and the page's data."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from grmjudge.cli import main
from grmjudge.report import write_report


def _data(page: Path) -> dict[str, object]:
    text = page.read_text(encoding="utf-8")
    return json.loads(text.split('<script type="application/json" id="report-data">')[1].split("</script>")[0])


def test_bad_runs_are_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "missing.jsonl"), "-o", str(tmp_path / "r.html")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "run").mkdir()
    assert main(["report", str(tmp_path / "run"), "-o", str(tmp_path / "r.html")]) == 2
    assert "not a grmjudge eval output folder" in capsys.readouterr().err
    (tmp_path / "bad.jsonl").write_text('{"id": "a"}\n', encoding="utf-8")
    assert main(["report", str(tmp_path / "bad.jsonl"), "-o", str(tmp_path / "r.html")]) == 2
    assert "not a grmjudge score output line" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_the_most_interesting_items_are_shown_first(score_run: tuple[Path, Path], tmp_path: Path) -> None:
    source, output = score_run
    records = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    stats = write_report(output, tmp_path / "r.html", inputs=source, items=2)
    assert (stats.items, stats.shown) == (len(records), 2)
    shown = _data(tmp_path / "r.html")["items"]
    assert isinstance(shown, list)
    wrong = [r for r in records if r["best"] is not None and r["best"] != r["label"]]
    least_agreed = min(wrong, key=_agreement)  # min keeps the first of equals: the run's order
    assert [item["id"] for item in shown] == ["broken", least_agreed["id"]]  # pyright: ignore[reportUnknownVariableType]
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert f"Showing 2 of {len(records)} items in full" in page


def _agreement(record: dict[str, Any]) -> float:
    valid = [s["scores"] for s in record["samples"] if s["scores"] is not None]
    named = [scores.index(max(scores)) for scores in valid if scores.count(max(scores)) == 1]
    return sum(w == record["best"] for w in named) / len(valid)


def test_without_the_input_the_page_says_why_texts_are_missing(score_run: tuple[Path, Path], tmp_path: Path) -> None:
    write_report(score_run[1], tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "give the scored input file with --input" in page
    items = _data(tmp_path / "r.html")["items"]
    assert isinstance(items, list) and all(item["query"] is None and item["samples"] for item in items)  # pyright: ignore[reportUnknownVariableType]


def test_the_policy_allows_the_pages_own_script_only(score_run: tuple[Path, Path], tmp_path: Path) -> None:
    write_report(score_run[1], tmp_path / "r.html", inputs=score_run[0])
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", page, re.DOTALL)
    assert len(scripts) == 1
    digest = base64.b64encode(hashlib.sha256(scripts[0].encode()).digest()).decode()
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]*)"', page)
    assert policy is not None
    assert f"script-src 'sha256-{digest}'" in policy.group(1) and "default-src 'none'" in policy.group(1)
    assert not re.search(r"\b(?:src|href)=\"https?:", page)  # nothing is fetched


def test_an_eval_folder_whose_data_moved_takes_it_from_data(tmp_path: Path) -> None:
    import anyio

    from grmjudge.eval.loaders import load_benchmark
    from tests.eval.conftest import DATA, run

    data = tmp_path / "filtered.jsonl"
    data.write_bytes((DATA / "rewardbench" / "filtered.jsonl").read_bytes())
    anyio.run(lambda: run(load_benchmark("rewardbench", data), tmp_path / "run", ks=(1,)))
    moved = tmp_path / "moved.jsonl"
    data.rename(moved)
    write_report(tmp_path / "run", tmp_path / "r.html")
    assert "give them with --data" in (tmp_path / "r.html").read_text(encoding="utf-8")
    assert main(["report", str(tmp_path / "run"), "--data", str(moved), "-o", str(tmp_path / "r.html")]) == 0
    items = _data(tmp_path / "r.html")["items"]
    assert isinstance(items, list) and all(item["query"] and item["label"] is not None for item in items)  # pyright: ignore[reportUnknownVariableType]
    assert main(["report", str(tmp_path / "run"), "--pass", "sampled", "-o", str(tmp_path / "r.html")]) == 2
