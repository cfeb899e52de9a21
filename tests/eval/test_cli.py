"""``grmjudge eval`` end to end against a real OpenAI-compatible server process, and ``grmjudge eval summary``.

The server is the package's fake GRM: it scores each shown response ``1 + len(text) % 10``, so the e2e fixture's
expected numbers follow from the lengths of its responses (worked out by hand below).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from grmjudge.eval import load_benchmark
from grmjudge.eval.cli import main
from grmjudge.eval.progress import PassCounts, Progress
from tests.eval.conftest import DATA, run
from tests.servers import LocalServer, serve

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# e2e/filtered.jsonl: lengths 8 vs 2 -> 9 vs 3 (right); 5 vs 15 -> 6 vs 6 (tie, 1/2); 1 vs 7 -> 2 vs 8 (wrong);
# 9 vs 4 -> 10 vs 5 (right). Chat = alpacaeval-easy = 3/4; Reasoning = (0 x 984 + 1 x 164) / 1148 = 1/7.
E2E_RB = (0.75 + 1 / 7) / 2


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serve() as running:
        yield running


def eval_args(server: LocalServer, out: Path, *extra: str) -> list[str]:
    data = str(DATA / "e2e" / "filtered.jsonl")
    judge = ["--judge", "openai:fake-grm", "--base-url", server.base_url]
    return ["rewardbench", *judge, "--data", data, "--out", str(out), "--bootstrap", "200", *extra]


def test_the_command_writes_all_four_outputs(
    tmp_path: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    status = main(eval_args(server, out, "--k", "1,4", "--progress-every", "0.01"))
    stderr = capsys.readouterr().err
    assert status == 0, stderr

    results = json.loads((out / "results.json").read_text())
    assert set(results["settings"]) == {"greedy", "voting@4"}
    greedy = results["settings"]["greedy"]
    assert greedy["overall"]["value"] == pytest.approx(E2E_RB)
    assert greedy["sections"]["Chat"]["value"] == pytest.approx(0.75)
    assert greedy["sections"]["Reasoning"]["value"] == pytest.approx(1 / 7)
    low, high = greedy["overall"]["ci"]
    assert 0 <= low <= greedy["overall"]["value"] <= high <= 1
    assert results["settings"]["voting@4"]["overall"]["value"] == pytest.approx(E2E_RB)  # the fake is deterministic
    provenance = greedy["provenance"]
    assert provenance["backend"] == "openai" and provenance["model"] == "fake-grm"
    assert provenance["sampling"]["temperature"] == 0.0 and provenance["sampling"]["template_hash"]
    assert results["settings"]["voting@4"]["provenance"]["sampling"]["temperature"] == 0.5
    assert provenance["data"]["files"][0]["sha256"] == results["data"]["files"][0]["sha256"]
    assert [p["k"] for p in results["curve"]["voting"]] == [1, 2, 4]
    assert "metarm" not in results["curve"]

    markdown = (out / "results.md").read_text()
    assert "| Setting | RB | PPE-P | PPE-C | RMB | Overall |" in markdown
    assert f"| Greedy | {100 * E2E_RB:.1f} (" in markdown
    assert "| Setting | Chat | Reasoning | RB |" in markdown

    png = (out / "scaling.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 1000

    journal = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [(line["pass"], line["call_id"]) for line in journal][:4] == [("greedy", f"rb:{i}") for i in range(1, 5)]
    assert len(journal) == 8 and all(len(line["result"]["samples"]) == 4 for line in journal[4:])

    assert "greedy: items 4/4 | samples 4 |" in stderr
    assert "sampled: items 4/4 | samples 16 |" in stderr
    assert f"greedy: RB {100 * E2E_RB:.1f}" in stderr

    # a rerun resumes: nothing left to judge, the same numbers
    assert main(eval_args(server, out, "--k", "1,4", "-q")) == 0
    again = json.loads((out / "results.json").read_text())
    assert again["passes"]["greedy"]["resumed_calls"] == 4 and again["passes"]["sampled"]["resumed_calls"] == 4
    assert again["settings"]["greedy"]["overall"] == greedy["overall"]


@pytest.mark.anyio
async def test_summary_combines_four_runs_into_the_papers_overall(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sources = {
        "rewardbench": DATA / "rewardbench" / "filtered.jsonl",
        "ppe-preference": DATA / "ppe-preference" / "test.jsonl",
        "ppe-correctness": DATA / "ppe-correctness",
        "rmb": DATA / "rmb" / "RMB_dataset",
    }
    overall: dict[str, float] = {}
    for name, path in sources.items():
        report = await run(load_benchmark(name, path), tmp_path / name)
        overall[name] = report.settings["greedy"].overall.value
    status = main(["summary", *(str(tmp_path / name) for name in sources), "--out", str(tmp_path / "summary")])
    assert status == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "summary" / "summary.json").read_text())
    (row,) = summary["rows"]
    assert row["setting"] == "greedy"
    assert row["overall"]["value"] == pytest.approx(sum(overall.values()) / 4)
    low, high = row["overall"]["ci"]
    assert low < row["overall"]["value"] < high
    table = (tmp_path / "summary" / "summary.md").read_text()
    assert "| Setting | RB | PPE-P | PPE-C | RMB | Overall |" in table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rewardbench", "--out", "x"], "one of the arguments --judge --scalar is required"),
        (["rewardbench", "--judge", "openai:m", "--out", "x", "--k", "0,8"], "every k must be at least 1"),
        (["rewardbench3", "--judge", "openai:m", "--out", "x"], "invalid choice: 'rewardbench3'"),
        (["rmb", "--judge", "openai:m", "--base-url", "http://127.0.0.1:9", "--out", "x"], "RMB has no Hugging Face"),
        (["judgebench", "--scalar", "hf:/m", "--meta", "hf:/m", "--data", str(DATA / "judgebench"), "--out", "x"],
         "--meta needs a GRM"),
        (["judgebench", "--judge", "openai:m", "--data", str(DATA / "judgebench"), "--out", "x"],
         "needs base_url"),
        (["judgebench", "--judge", "openai:m", "--base-url", "http://127.0.0.1:9", "--temperature", "-1",
          "--data", str(DATA / "judgebench"), "--out", "x"], "temperature"),
    ],
)  # fmt: skip
def test_bad_arguments_exit_2_before_any_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(args) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_progress_line_shows_items_samples_failures_and_eta() -> None:
    now = [0.0]
    stream = io.StringIO()
    progress = Progress(stream, every=60, clock=lambda: now[0])
    counts = PassCounts(items=100, calls=200, calls_done=20, resumed_calls=10, items_done=10, samples=40)
    counts.failures.update({"parse:no_boxed": 3, "RateLimitError": 1})
    progress.start("sampled", counts)
    now[0] = 10.0
    assert progress.line() == (
        "sampled: items 10/100 | calls 20/200 | resumed 10 | samples 40 | "
        "failed parse:no_boxed 3, RateLimitError 1 | 1.0 calls/s | ETA 3m00s"
    )


def test_adaptive_adds_accuracy_per_compute_from_the_same_pass(
    tmp_path: Path, server: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    status = main(eval_args(server, out, "--k", "1,8", "--adaptive", "-q"))
    assert status == 0, capsys.readouterr().err
    results = json.loads((out / "results.json").read_text())
    adaptive = results["settings"]["adaptive@8"]
    # The fake's votes are the same in every sample: the three decided items settle after the first round of 4,
    # the tied one (6 vs 6) never settles and runs to 8. Accuracy is the fixed vote's.
    assert adaptive["samples_per_item"]["value"] == pytest.approx((4 + 8 + 4 + 4) / 4)
    assert adaptive["overall"]["value"] == pytest.approx(results["settings"]["voting@8"]["overall"]["value"])
    assert adaptive["vs_fixed"]["value"] == pytest.approx(0.0)
    journal = [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]
    assert [len(line["result"]["samples"]) for line in journal if line["pass"] == "sampled"] == [8, 8, 8, 8]
    assert "## Accuracy per compute" in (out / "results.md").read_text()
    assert (out / "compute.png").read_bytes().startswith(PNG_SIGNATURE)
