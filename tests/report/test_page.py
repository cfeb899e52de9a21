"""The report opened in a real headless Chromium: summary, position bias, filters, sorting, keys, escaping."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from grmjudge.cli import main
from grmjudge.eval.loaders import load_benchmark
from tests.eval.conftest import DATA, run
from tests.report.runs import INJECTED


@pytest.fixture(scope="module")
def page(score_run: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    source, output = score_run
    html = tmp_path_factory.mktemp("page") / "report.html"
    assert main(["report", str(output), "--input", str(source), "-o", str(html)]) == 0
    return html


def _open(browser: Any, html: Path) -> None:
    browser.get(html.as_uri())
    assert browser.execute_script("return document.body.dataset.ready") == "true"


def _visible(browser: Any) -> list[str]:
    return browser.execute_script(
        "return Array.from(document.querySelectorAll('#item-rows button.open')).map(b => b.textContent)"
    )


def _click(browser: Any, selector: str) -> None:
    browser.find_element("css selector", selector).click()


def _outputs(output: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]


def test_summary_and_position_bias_render(browser: Any, page: Path, score_run: tuple[Path, Path]) -> None:
    _open(browser, page)
    cards = dict(
        browser.execute_script(
            "return Array.from(document.querySelectorAll('.card')).map(c => [c.querySelector('dt').textContent,"
            " c.querySelector('dd').textContent])"
        )
    )
    records = _outputs(score_run[1])
    verdicts = sum(r["scores"] is not None for r in records)
    assert cards["Items"] == str(len(records)) == "6"
    assert cards["Verdicts"].startswith(f"{verdicts} ")
    assert cards["No verdict"] == str(len(records) - verdicts) == "1"
    samples = sum(len(r["samples"]) for r in records)
    valid = sum(s["scores"] is not None for r in records for s in r["samples"])
    assert cards["Samples (valid / all)"] == f"{valid} / {samples}"
    kept = sum(s["kept"] for r in records for s in r["samples"])
    assert cards["Meta RM keep rate"] == f"{100 * kept / valid:.1f}%"
    position = browser.find_element("id", "position").text
    # the scripted judge always prefers the response shown first, for every response count
    for n in (2, 3, 4):
        assert f"{n} responses:" in position
    rows = browser.execute_script(
        "return Array.from(document.querySelectorAll('#position table tbody tr:first-child'))"
        ".map(r => Array.from(r.cells).map(c => c.textContent))"
    )
    assert rows and all(row[1] == "100.0%" and set(row[2:]) == {"0.0%"} for row in rows)
    assert "no_boxed" in browser.find_element("id", "summary").text


def test_filters_and_search_change_the_visible_items(browser: Any, page: Path, score_run: tuple[Path, Path]) -> None:
    _open(browser, page)
    records = _outputs(score_run[1])
    assert sorted(_visible(browser)) == sorted(r["id"] for r in records)
    _click(browser, "#f-noverdict")
    assert _visible(browser) == ["broken"]
    _click(browser, "#f-noverdict")
    _click(browser, "#f-wrong")
    wrong = sorted(r["id"] for r in records if r["best"] is not None and r["best"] != r["label"])
    assert wrong and sorted(_visible(browser)) == wrong
    _click(browser, "#clear")
    browser.find_element("id", "search").send_keys("paris")
    assert _visible(browser) == ["capital"]
    assert browser.find_element("id", "item-count").text == f"1 of {len(records)} items shown"
    _click(browser, "#clear")
    _click(browser, "#f-split")
    split = [r["id"] for r in records if len({_winner(s["scores"]) for s in r["samples"] if s["scores"]}) > 1]
    assert sorted(_visible(browser)) == sorted(split)


def _winner(scores: list[int]) -> int | None:
    tops = [i for i, s in enumerate(scores) if s == max(scores)]
    return tops[0] if len(tops) == 1 else None


def test_sorting_and_keyboard_opening(browser: Any, page: Path) -> None:
    _open(browser, page)
    _click(browser, "button[data-sort='id']")
    ids = _visible(browser)
    assert ids == sorted(ids)
    header = browser.find_element("css selector", "button[data-sort='id']").find_element("xpath", "..")
    assert header.get_attribute("aria-sort") == "ascending"
    _click(browser, "button[data-sort='id']")
    assert _visible(browser) == sorted(ids, reverse=True)
    from selenium.webdriver.common.keys import Keys

    first = browser.find_element("css selector", "#item-rows button.open")
    first.send_keys(Keys.ENTER)
    opened = browser.find_element("css selector", "#item-rows button.open")
    assert opened.get_attribute("aria-expanded") == "true"
    assert browser.switch_to.active_element == opened  # focus stays on the item after the table redraws
    assert "Sample 1: shown as" in browser.find_element("css selector", "tr.detail").text


def test_injected_markup_is_shown_as_text_and_never_runs(browser: Any, page: Path) -> None:
    _open(browser, page)
    for order in range(1, 7):  # the table is redrawn after each click, so each button is found afresh
        _click(browser, f"#item-rows button[data-order='{order}']")
    assert len(browser.find_elements("css selector", "tr.detail")) == 6
    assert browser.execute_script("return window.__injected") is None
    assert browser.execute_script("return document.querySelectorAll('#item-rows script, #item-rows img').length") == 0
    texts = browser.execute_script("return Array.from(document.querySelectorAll('.text')).map(t => t.textContent)")
    assert INJECTED in texts
    # a sample that failed to parse shows why and the text it wrote instead of principles and critique
    assert "I cannot decide between these." in texts
    assert "failed: parse:no_boxed" in browser.find_element("id", "item-rows").text
    assert "<script>" not in page.read_text(encoding="utf-8").split('id="report-data">')[1].split("</script>")[0]


def test_an_eval_folder_reports_its_labels_sections_curve_and_position_bias(browser: Any, tmp_path: Path) -> None:
    import anyio

    benchmark = load_benchmark("rewardbench", DATA / "rewardbench" / "filtered.jsonl")
    report = anyio.run(lambda: run(benchmark, tmp_path / "run", ks=(1, 4)))
    sampled = report.position["sampled"]
    assert sampled.rows and sum(row.decisive + row.ties for row in sampled.rows) > 0
    saved = json.loads((tmp_path / "run" / "results.json").read_text(encoding="utf-8"))
    assert saved["position"]["sampled"] == sampled.model_dump(mode="json")
    assert "## Position bias" in (tmp_path / "run" / "results.md").read_text(encoding="utf-8")
    html = tmp_path / "eval.html"
    assert main(["report", str(tmp_path / "run"), "-o", str(html)]) == 0
    _open(browser, html)
    evaluation = browser.find_element("id", "eval").text
    assert "voting@4" in evaluation and "Scaling curve" in evaluation
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('#item-rows tr')).map(r => r.cells[4].textContent)"
    )
    assert labels and all(label.startswith("#") for label in labels)
    subsets = {item.subset for item in benchmark.items}
    sections = browser.execute_script(
        "return Array.from(document.querySelectorAll('#item-rows tr')).map(r => r.cells[2].textContent)"
    )
    assert set(sections) <= subsets and sections
    assert browser.find_elements("css selector", ".note") == []
