"""`grmjudge score` end to end against a real OpenAI-compatible server process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from grmjudge import Judge, JudgeSettings
from grmjudge._redact import Redactor
from grmjudge.backends.function import FunctionBackend
from grmjudge.backends.limits import RateLimits
from grmjudge.backends.openai import OpenAIBackend
from grmjudge.cli.inputs import ScanCounts
from grmjudge.cli.progress import RunStats, progress_line
from grmjudge.cli.runner import REORDER_FACTOR
from grmjudge.journal import JournalWriter, dumps
from grmjudge.judge_options import JudgeOptions, build_backend, build_settings
from grmjudge.progress import ProgressReporter
from grmjudge.score_lines import output_record
from tests.cli.conftest import (
    RecordingServer,
    expected_scores,
    item,
    read_jsonl,
    recording_server,
    run_in_process,
    score_args,
    write_jsonl,
)
from tests.servers import REPO_ROOT

SAMPLE_FIELDS = {
    "permutation",
    "scores",
    "principles",
    "critique",
    "text",
    "finish_reason",
    "error",
    "meta_score",
    "kept",
    "cached",
}
HEAVY_MODULES = ("torch", "transformers", "vllm", "trl", "datasets")


def test_every_item_is_judged_and_written_in_input_order(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [item(i, label=i % 2) for i in range(150)]
    source, output = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out.jsonl"

    status, stderr = run_in_process(
        score_args(source, output, fake.base_url, "--k", "4", "--concurrency", "16"), capsys
    )

    assert status == 0, stderr
    records = read_jsonl(output)
    assert [r["id"] for r in records] == [i["id"] for i in items]
    for given, record in zip(items, records, strict=True):
        scores = expected_scores(given["responses"], k=4)
        assert record["scores"] == scores
        assert record["best"] == scores.index(max(scores))
        assert record["label"] == given["label"]
        assert record["n_valid"] == 4
        assert record["no_verdict"] is None
        assert len(record["samples"]) == 4
        assert all(set(s) == SAMPLE_FIELDS for s in record["samples"])
        assert all(s["text"].startswith("Specific Criteria:") and s["principles"] for s in record["samples"])
        assert record["provenance"]["item_id"] == given["id"]
        assert record["provenance"]["k"] == 4
        assert record["usage"]["requests"] == 2  # two responses, balanced shuffle: one request per order
    assert (tmp_path / "out.errors.jsonl").read_text() == ""
    assert "150 lines written" in stderr and "best == label" in stderr
    assert len(fake.requests()) == 300


def test_completion_order_writes_each_item_once(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [item(i) for i in range(120)]
    source, output = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out.jsonl"

    status, _ = run_in_process(score_args(source, output, fake.base_url, "--k", "2", "--order", "completion"), capsys)

    assert status == 0
    records = read_jsonl(output)
    assert sorted(r["id"] for r in records) == sorted(i["id"] for i in items)
    by_id = {r["id"]: r for r in records}
    assert all(by_id[i["id"]]["scores"] == expected_scores(i["responses"], k=2) for i in items)


@pytest.mark.slow
def test_a_slow_item_pauses_reading_instead_of_growing_the_reorder_buffer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    concurrency, stall = 4, 2.0
    items = [item(i) for i in range(1500)]
    items[5]["responses"][0] += " SLOW-ITEM"
    source, output = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out.jsonl"
    args = ("--slow-marker", "SLOW-ITEM", "--slow-delay", str(stall))

    with recording_server(tmp_path / "requests.jsonl", *args) as server:
        cli = score_args(source, output, server.base_url, "--k", "2", "--concurrency", str(concurrency))
        status, _ = run_in_process(cli, capsys)
        requests = server.requests()

    assert status == 0
    assert [r["id"] for r in read_jsonl(output)] == [i["id"] for i in items]
    slow_start = min(r["t"] for r in requests if "SLOW-ITEM" in json.dumps(r["body"]))
    during_stall = [r for r in requests if slow_start < r["t"] < slow_start + stall - 0.2]
    items_during_stall = {_item_of(r) for r in during_stall} - {"item-5"}
    # at most: the reorder buffer's limit, a stream buffer of finished items, the others in flight, one read ahead
    bound = REORDER_FACTOR * concurrency + concurrency + (concurrency - 1) + 1
    # reading goes on up to the bound (the buffer does fill), then stops until the slow item is written
    assert REORDER_FACTOR * concurrency <= len(items_during_stall) <= bound


def test_no_texts_leaves_the_judgement_texts_out(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = write_jsonl(tmp_path / "in.jsonl", [item(i) for i in range(5)]), tmp_path / "out.jsonl"

    status, _ = run_in_process(score_args(source, output, fake.base_url, "--k", "2", "--no-texts"), capsys)

    assert status == 0
    for record in read_jsonl(output):
        assert all(set(s) == SAMPLE_FIELDS - {"text", "principles", "critique"} for s in record["samples"])
        assert record["scores"] is not None


def test_unicode_line_separators_are_escaped_so_every_reader_sees_one_line_per_verdict(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = {**item(1), "id": "odd\u2028id\x85\u2029é"}
    source, output = write_jsonl(tmp_path / "in.jsonl", [item(0), odd]), tmp_path / "out.jsonl"

    status, _ = run_in_process(score_args(source, output, fake.base_url, "--k", "2"), capsys)

    assert status == 0
    assert [r["id"] for r in read_jsonl(output)] == ["item-0", odd["id"]]  # read_jsonl uses str.splitlines
    assert "é" in output.read_text()  # UTF-8 is kept as is otherwise


@pytest.mark.anyio
async def test_a_result_holding_lone_surrogates_is_written_as_valid_utf8_json(tmp_path: Path) -> None:
    judge = Judge(FunctionBackend(lambda request: ["Analysis: fine.\nScores: \\boxed{5, 6}"] * request.n))
    result = await judge.score("q", ["a", "b"], k=2)
    odd = "split \ud83d emoji \udfff"  # what a server may send back, or a caller pass in, as a JSON escape
    sample = result.samples[0].model_copy(update={"text": odd})
    result = result.model_copy(update={"samples": [sample, *result.samples[1:]]})
    path = tmp_path / "out.jsonl"

    with path.open("ab", buffering=0) as file:
        JournalWriter(file, name="output", redact=Redactor([])).write(
            dumps(output_record(result, "id-\ud800", None, texts=True))
        )

    line = path.read_bytes().decode("utf-8")  # strict UTF-8
    record = json.loads(line)
    assert (record["id"], record["samples"][0]["text"]) == ("id-\ud800", odd)
    assert "\\ud83d" in line and "\\udfff" in line  # the same JSON escapes a reader wrote them with


def test_meta_rm_keeps_the_top_samples(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = write_jsonl(tmp_path / "in.jsonl", [item(i) for i in range(6)]), tmp_path / "out.jsonl"
    meta = ("--meta", "http:meta-rm", "--meta-base-url", fake.server.root, "--k-meta", "3")

    status, stderr = run_in_process(score_args(source, output, fake.base_url, "--k", "4", *meta), capsys)

    assert status == 0, stderr
    for record in read_jsonl(output):
        assert sum(s["kept"] for s in record["samples"]) == 3
        assert all(isinstance(s["meta_score"], float) for s in record["samples"])
        assert record["provenance"]["meta"] is True and record["provenance"]["k_meta"] == 3


def test_sampling_and_flow_control_flags_work_end_to_end(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = write_jsonl(tmp_path / "in.jsonl", [item(i) for i in range(3)]), tmp_path / "out.jsonl"
    flags = ("--rpm", "6000", "--tpm", "1e7", "--max-retries-per-item", "1", "--temperature", "0.7", "--seed", "3")

    status, stderr = run_in_process(score_args(source, output, fake.base_url, "--k", "2", *flags), capsys)

    assert status == 0, stderr
    provenance = read_jsonl(output)[0]["provenance"]
    assert (provenance["temperature"], provenance["seed"]) == (0.7, 3)
    assert {r["body"]["temperature"] for r in fake.requests()} == {0.7}


def test_flags_build_the_backend_and_settings_they_name() -> None:
    options = JudgeOptions(
        judge="openai:m",
        base_urls=("http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"),
        meta=None,
        meta_base_url=None,
        k_meta=None,
        temperature=0.3,
        max_tokens=64,
        seed=5,
        rpm=600.0,
        tpm=1e6,
        max_retries_per_item=2,
    )

    backend = build_backend(options)
    settings = build_settings(options)

    assert isinstance(backend, OpenAIBackend)
    assert backend.base_urls == ("http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1")
    assert backend.http.gate.limits == RateLimits(requests_per_minute=600.0, tokens_per_minute=1e6)
    assert (settings.temperature, settings.max_tokens, settings.seed) == (0.3, 64, 5)
    assert settings.retry_budget_per_item == 2
    assert build_settings(replace(options, temperature=None, max_retries_per_item=None)) == JudgeSettings(
        max_tokens=64, seed=5
    )


def test_a_refused_request_sends_the_item_to_the_errors_file_and_resume_retries_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [item(i) for i in range(10)]
    items[3]["responses"][1] = "long " * 400  # ~1000 prompt words against 800 of context: HTTP 400, not retried
    source, output = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out.jsonl"
    cli = score_args(source, output, "", "--k", "2", "--max-tokens", "100")

    with recording_server(tmp_path / "requests.jsonl", "--max-model-len", "800") as server:
        cli[cli.index("--base-url") + 1] = server.base_url
        status, stderr = run_in_process(cli, capsys)
        (error,) = read_jsonl(tmp_path / "out.errors.jsonl")
        assert status == 1, stderr
        assert [r["id"] for r in read_jsonl(output)] == [i["id"] for i in items if i["id"] != "item-3"]
        assert error["type"] == "backend_failed" and error["line"] == 4 and error["id"] == "item-3"
        assert "maximum context length" in error["message"]
        before = len(server.requests())

        status, _ = run_in_process([*cli, "--resume"], capsys)

        assert status == 1
        retried = server.requests()[before:]
        assert retried and all("long long" in json.dumps(r["body"]) for r in retried)


def test_the_backend_failing_item_after_item_aborts_the_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source, output = write_jsonl(tmp_path / "in.jsonl", [item(i) for i in range(300)]), tmp_path / "out.jsonl"

    with recording_server(tmp_path / "requests.jsonl", "--max-model-len", "10") as server:
        cli = score_args(source, output, server.base_url, "--k", "2", "--concurrency", "4")
        status, stderr = run_in_process([*cli, "--max-consecutive-failures", "20"], capsys)

    assert status == 3
    assert "aborted" in stderr and "--max-consecutive-failures" in stderr and "--resume" in stderr
    errors = read_jsonl(tmp_path / "out.errors.jsonl")
    assert 20 <= len(errors) <= 20 + 4  # the 20th, and at most the 4 (--concurrency) items in flight when it failed
    assert output.read_text() == ""


@pytest.mark.slow
def test_progress_lines_and_summary_on_a_pipe(tmp_path: Path) -> None:
    items = [item(i) for i in range(400)]
    source, output = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out.jsonl"
    with recording_server(tmp_path / "requests.jsonl", "--delay", "0.05") as server:
        cli = [
            *score_args(source, output, server.base_url, "--k", "2", "--concurrency", "8"),
            "--progress-every",
            "0.2",
        ]
        done = subprocess.run(
            [sys.executable, "-m", "grmjudge.cli", *cli], cwd=REPO_ROOT, capture_output=True, text=True, check=False
        )

    assert done.returncode == 0, done.stderr
    progress = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(progress) >= 3
    assert "\r" not in done.stderr  # not a terminal: whole lines, no redraws
    assert all("/400 | out " in line and "items/s" in line for line in progress[1:])
    assert "ETA" in progress[-1]
    assert "grmjudge score: finished after" in done.stderr and "400 lines written" in done.stderr
    assert done.stdout == ""


def test_progress_redraws_in_place_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    stats = RunStats(scan=ScanCounts(lines=10, blank=1), total_lines=100, settled=9, written=9, samples=18)
    stats.failures["parse:no_boxed_scores"] = 2
    reporter = ProgressReporter(stream, lambda: progress_line(stats), position=stats.position, redact=Redactor([]))

    reporter.draw()
    reporter.draw()
    reporter.close()

    text = stream.getvalue()
    assert text.startswith("\r") and text.count("\r") >= 2  # each drawing overwrites the last
    assert "\n" not in text[:-1] and text.endswith("\n")  # one line, left for a fresh one at the end
    assert "lines 10/100" in text and "failed parse:no_boxed_scores 2" in text and "ETA" in text


def test_the_command_loads_no_heavy_module(tmp_path: Path, fake: RecordingServer) -> None:
    source, output = write_jsonl(tmp_path / "in.jsonl", [item(0)]), tmp_path / "out.jsonl"
    script = (
        "import json, sys\n"
        "from grmjudge.cli import main\n"
        f"status = main({score_args(source, output, fake.base_url, '--k', '2', '-q')!r})\n"
        f"print(json.dumps([status, [m for m in {HEAVY_MODULES!r} if m in sys.modules]]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)

    assert json.loads(done.stdout) == [0, []]
    assert done.stderr == ""  # --quiet


def _item_of(request: dict[str, object]) -> str:
    text = json.dumps(request["body"])
    start = text.index("item-")
    end = start + 5
    while text[end].isdigit():
        end += 1
    return text[start:end]


def test_adaptive_stops_each_item_once_settled_and_resume_keeps_the_mode(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [item(i) for i in range(6)]
    source, output = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out.jsonl"

    status, stderr = run_in_process(score_args(source, output, fake.base_url, "--k", "16", "--adaptive"), capsys)

    assert status == 0, stderr
    for given, record in zip(items, read_jsonl(output), strict=True):
        # the fake GRM is unanimous: the first round (two orders, n=2 each) settles every item
        adaptive = record["provenance"]["adaptive"]
        assert (adaptive["samples"], adaptive["rounds"], adaptive["stop"]) == (4, 1, "settled")
        assert record["provenance"]["k"] == 16 and len(record["samples"]) == 4
        assert record["scores"] == expected_scores(given["responses"], 4)
    assert len(fake.requests()) == 2 * len(items)

    write_jsonl(source, [*items, item(6)])
    status, stderr = run_in_process(score_args(source, output, fake.base_url, "--k", "16", "--resume"), capsys)
    assert status == 2 and "adaptive" in stderr
    status, stderr = run_in_process(
        score_args(source, output, fake.base_url, "--k", "16", "--adaptive", "--resume"), capsys
    )
    assert status == 0, stderr
    assert len(read_jsonl(output)) == 7
