"""The example scripts, each run as a subprocess against real local servers, as a user would run it.

The fake GRM (``tests.cli.servers``: the package's fake OpenAI server with a key check, a request log and a
``/classify`` meta RM), stand-ins for hosted chat models and for a teacher (``tests.examples.servers``) and,
for the training example, a tiny local model. Every test checks what the script printed or wrote, and that
the API key it was given appears in none of it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import RecordingServer, expected_scores, read_jsonl, recording_server, write_jsonl
from tests.servers import REPO_ROOT, LocalServer, free_port, serve

pytestmark = pytest.mark.slow

OPENAI_KEY = "sk-test-EXAMPLES-5c1f0e9a7b3d42e6a8c4f2b1d0e9a7b3"
ANTHROPIC_KEY = "sk-ant-test-EXAMPLES-0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"
MODEL = "fake-grm"


def run_example(
    script: str, args: Sequence[str], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python examples/SCRIPT ARGS`` from the repository root; its key never shows in what it printed."""
    environment = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    command = [sys.executable, str(REPO_ROOT / "examples" / script), *args]
    done = subprocess.run(command, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300)
    for key in (OPENAI_KEY, ANTHROPIC_KEY):
        assert key not in done.stdout + done.stderr
    return done


def fields(stdout: str) -> dict[str, str]:
    """The ``name: value`` lines of a summary."""
    return dict(line.split(": ", 1) for line in stdout.splitlines() if ": " in line)


@pytest.fixture(scope="module")
def grm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordingServer]:
    """The fake GRM, refusing any key but ``OPENAI_KEY`` (and echoing a wrong one, as a careless server would)."""
    log = tmp_path_factory.mktemp("grm") / "requests.jsonl"
    with recording_server(log, "--require-key", OPENAI_KEY) as server:
        yield server


WITH_KEY = {"OPENAI_API_KEY": OPENAI_KEY}

# ---------------------------------------------------------------- score_app.py

CANDIDATES = ["Use sorted(xs) for a new list.", "Call xs.sort().", "Write your own bubble sort, it is faster."]


def app_args(base_url: str, *extra: str) -> list[str]:
    candidates = [arg for text in CANDIDATES for arg in ("--candidate", text)]
    return ["--base-url", base_url, "--model", MODEL, "--question", "How do I sort a list?", *candidates, *extra]


def printed_scores(stdout: str) -> list[float]:
    return [float(score) for score in re.findall(r"^  candidate \d+: score (\S+)", stdout, re.MULTILINE)]


def test_score_app_prints_the_summed_scores_and_the_best(grm: RecordingServer) -> None:
    done = run_example("score_app.py", app_args(grm.base_url, "--k", "4"), WITH_KEY)

    assert done.returncode == 0, done.stderr
    expected = expected_scores(CANDIDATES, 4)
    assert printed_scores(done.stdout) == expected
    assert fields(done.stdout)["best"] == str(expected.index(max(expected)))
    assert "samples: 4 valid of 4\n" in done.stdout


def test_score_app_with_a_meta_rm_keeps_half_the_judgements(grm: RecordingServer) -> None:
    done = run_example("score_app.py", app_args(grm.base_url, "--k", "4", "--meta-url", grm.server.root), WITH_KEY)

    assert done.returncode == 0, done.stderr
    assert "samples: 4 valid of 4, 2 kept by the meta RM" in done.stdout
    assert printed_scores(done.stdout) == expected_scores(CANDIDATES, 2)  # only the two kept judgements voted


def test_score_app_reports_a_failed_meta_rm(grm: RecordingServer) -> None:
    meta_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    done = run_example("score_app.py", app_args(grm.base_url, "--k", "2", "--meta-url", meta_url), WITH_KEY)

    assert done.returncode == 1
    assert "the meta RM failed: BackendConnectionError" in done.stderr
    assert printed_scores(done.stdout) == []


def test_score_app_falls_back_on_a_typed_no_verdict(grm: RecordingServer) -> None:
    done = run_example("score_app.py", app_args(grm.base_url, "--k", "4", "--max-tokens", "3"), WITH_KEY)

    assert done.returncode == 1
    assert "no verdict (truncated x4); showing the first draft" in done.stderr
    assert fields(done.stdout)["best"] == "none (fallback 0)"
    assert printed_scores(done.stdout) == []


def test_score_app_refuses_bad_input_before_sending(grm: RecordingServer) -> None:
    before = len(grm.requests())
    done = run_example("score_app.py", [*app_args(grm.base_url), "--question", ""], WITH_KEY)

    assert done.returncode == 2
    assert "cannot judge this input: the user's query is empty" in done.stderr
    assert len(grm.requests()) == before


def test_score_app_reports_a_wrong_key_by_type_only(grm: RecordingServer) -> None:
    wrong = "sk-test-WRONG-0123456789abcdef0123456789abcdef"
    done = run_example("score_app.py", app_args(grm.base_url, "--k", "2"), {"OPENAI_API_KEY": wrong})

    assert done.returncode == 1
    assert "no verdict (AuthenticationError x2)" in done.stderr
    assert wrong not in done.stdout + done.stderr  # the server echoed it in its 401 body


def test_score_app_survives_an_unreachable_server() -> None:
    done = run_example("score_app.py", app_args(f"http://127.0.0.1:{free_port()}/v1", "--k", "2"))

    assert done.returncode == 1
    assert "no verdict (BackendConnectionError x2)" in done.stderr


# ---------------------------------------------------------------- eval_batch.py


def eval_items() -> list[dict[str, Any]]:
    return [
        {"id": f"item-{i}", "query": f"Question {i}?", "responses": ["a" * (i + 1), "b" * (3 * i + 2)], "label": i % 2}
        for i in range(6)
    ]


def expected_accuracy(items: Sequence[dict[str, Any]], k: int) -> str:
    right = 0
    for item in items:
        scores = expected_scores(item["responses"], k)
        right += scores.index(max(scores)) == item["label"]
    return f"{right / len(items):.3f} on {len(items)} labelled items"


def test_eval_batch_streams_caches_and_resumes(grm: RecordingServer, tmp_path: Path) -> None:
    items = eval_items()
    source = write_jsonl(tmp_path / "items.jsonl", [*items, {"id": "empty", "query": "Hi?", "responses": []}])
    with source.open("a") as handle:
        handle.write("{not json\n")
    output, cache = tmp_path / "out.jsonl", tmp_path / "cache.sqlite"
    args = [str(source), "--output", str(output), "--base-url", grm.base_url, "--model", MODEL, "--k", "4"]
    args += ["--cache", str(cache), "--concurrency", "4", "--progress-every", "0"]

    sent = len(grm.requests())
    first = run_example("eval_batch.py", [*args, "--limit", "3"], WITH_KEY)
    assert first.returncode == 0, first.stderr
    summary = fields(first.stdout)
    assert (summary["items"], summary["with verdict"], summary["cached samples"]) == ("3", "3", "0")
    assert int(summary["requests"]) == len(grm.requests()) - sent > 0
    assert summary["accuracy"] == expected_accuracy(items[:3], 4)
    assert {row["id"] for row in read_jsonl(output)} == {"item-0", "item-1", "item-2"}
    assert "progress: 3 items" in first.stderr

    sent = len(grm.requests())
    second = run_example("eval_batch.py", args, WITH_KEY)
    assert second.returncode == 1  # one bad line and one invalid item, reported; the rest judged
    summary = fields(second.stdout)
    counts = {name: summary[name] for name in ("items", "with verdict", "failed items", "bad lines")}
    assert counts == {"items": "7", "with verdict": "6", "failed items": "1", "bad lines": "1"}
    assert summary["cached samples"] == "12"  # the first run's three items came from the cache
    new_requests = grm.requests()[sent:]
    assert int(summary["requests"]) == len(new_requests) > 0
    prompts = [r["body"]["messages"][-1]["content"] for r in new_requests]
    assert all(any(f"Question {i}?" in p for i in (3, 4, 5)) for p in prompts)  # nothing judged twice
    assert summary["accuracy"] == expected_accuracy(items, 4)
    assert "skipped line 8: not JSON" in second.stderr

    rows = {row["id"]: row for row in read_jsonl(output)}
    assert rows["empty"]["error"]["type"] == "InvalidInputError"
    for item in items:
        assert rows[item["id"]]["scores"] == expected_scores(item["responses"], 4)
        assert rows[item["id"]]["label"] == item["label"]

    sent = len(grm.requests())
    third = run_example("eval_batch.py", args, WITH_KEY)
    assert fields(third.stdout)["requests"] == "0" and fields(third.stdout)["cached samples"] == "24"
    assert len(grm.requests()) == sent


# ---------------------------------------------------------------- hosted_judge.py

PAIRS: list[dict[str, Any]] = [
    # the stand-in's GRM scores (1 + length % 10): 2 vs 9, and 5 vs 6
    {"id": "short", "query": "What is 2 + 2?", "responses": ["4", "It is 5."], "label": 0},
    {"id": "long", "query": "Name a prime.", "responses": ["Nine is prime.", "Seven is prime."], "label": 1},
]


def hosted(provider: str, key: str | None = None) -> AbstractContextManager[LocalServer]:
    args = ["--provider", provider, "--reply", "position-biased", *(["--api-key", key] if key else [])]
    headers = {"x-api-key": key or "any", "anthropic-version": "2023-06-01"} if provider == "anthropic" else None
    return serve("tests.examples.servers", args, headers)


@pytest.mark.parametrize(("provider", "key"), [("openai", OPENAI_KEY), ("anthropic", ANTHROPIC_KEY)])
def test_hosted_judge_shuffles_away_a_position_bias(provider: str, key: str, tmp_path: Path) -> None:
    pairs = write_jsonl(tmp_path / "pairs.jsonl", PAIRS)
    variable = "OPENAI_API_KEY" if provider == "openai" else "ANTHROPIC_API_KEY"
    with hosted(provider, key) as server:
        url = server.base_url if provider == "openai" else server.root
        args = ["--provider", provider, "--base-url", url, "--model", MODEL, "--k", "4", "--pairs", str(pairs)]
        done = run_example("hosted_judge.py", args, {variable: key})

    assert done.returncode == 0, done.stderr
    out = done.stdout
    # the stand-in always names the response shown first; balanced shuffling shows each first twice: a tie
    assert "[llm-as-judge] first-shown response won 8 of 8 decisive samples" in out
    for pair in PAIRS:
        assert re.search(rf"^\[llm-as-judge\] {pair['id']}: scores \[2, 2\] best [01] .*\(tied", out, re.MULTILINE)
        grm_scores = ", ".join(f"{s:g}" for s in expected_scores(pair["responses"], 4))
        assert f"[grm] {pair['id']}: scores [{grm_scores}] best " in out
    assert "[llm-as-judge] agreement with labels (ties excluded): 0 of 2" in out
    # a judge that reads the content: the better response wins, and it is shown first in half the samples
    assert "[grm] first-shown response won 4 of 8 decisive samples" in out
    assert "[grm] agreement with labels (ties excluded): 1 of 2" in out
    requests = re.findall(r"requests: (\d+)", out)
    assert requests == (["4", "4"] if provider == "openai" else ["8", "8"])  # n per order vs one per sample


def test_hosted_judge_never_prints_a_key_a_server_echoes(tmp_path: Path) -> None:
    wrong = "sk-test-WRONG-fedcba9876543210fedcba9876543210"
    with hosted("openai", OPENAI_KEY) as server:
        args = ["--provider", "openai", "--base-url", server.base_url, "--model", MODEL, "--k", "2"]
        done = run_example("hosted_judge.py", [*args, "--template", "grm"], {"OPENAI_API_KEY": wrong})

    assert done.returncode == 1
    assert done.stdout.count("no verdict (AuthenticationError x2)") == 3  # the three built-in pairs
    assert wrong not in done.stdout + done.stderr


def test_hosted_judge_needs_a_key_in_the_environment() -> None:
    done = run_example("hosted_judge.py", ["--provider", "anthropic"])

    assert done.returncode == 2
    assert "set ANTHROPIC_API_KEY" in done.stderr


# ---------------------------------------------------------------- train_custom_judge.py


@pytest.mark.engine
def test_train_custom_judge_end_to_end(tiny_model_dir: Path, tmp_path: Path) -> None:
    for module in ("torch", "transformers", "trl", "datasets", "safetensors"):
        pytest.importorskip(module)
    from safetensors.torch import load_file

    work = tmp_path / "work"
    args = ["--student", str(tiny_model_dir), "--work-dir", str(work), "--device", "cpu", "--max-steps", "2"]
    args += ["--teacher-max-tokens", "200", "--k", "2", "--judge-max-tokens", "16"]
    # one torch thread: the tiny model's steps are so small that thread hand-offs dominate (tests/training/conftest.py)
    with serve("tests.examples.servers", ["--reply", "noisy-teacher"]) as teacher:
        done = run_example(
            "train_custom_judge.py", [*args, "--teacher-url", teacher.base_url], {"OMP_NUM_THREADS": "1"}
        )

    assert done.returncode == 0, done.stderr
    assert len((work / "examples.jsonl").read_text().splitlines()) == 6
    stats = json.loads((work / "rft" / "stats.json").read_text())
    assert stats["items"] == 6 and stats["examples"] > 0 and stats["backend_failed_ids"] == []
    assert (
        f"rejection sampling: 6 items, {stats['items_kept']} kept, {stats['too_easy']} too easy, "
        f"{stats['rejected_items']} rejected; {stats['examples']} SFT rows" in done.stdout
    )
    assert len((work / "rft" / "sft.jsonl").read_text().splitlines()) == stats["examples"]

    card = json.loads((work / "sft" / "run_card.json").read_text())
    assert card["stage"] == "sft" and card["config"]["max_steps"] == 2
    assert card["results"]["rm_rows"] == stats["examples"]
    losses = re.search(r"^losses: (.*)$", done.stdout, re.MULTILINE)
    assert losses is not None and len(losses.group(1).split(", ")) == 2
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(work / "sft" / "model.safetensors")
    assert any(not bool((before[name] == after[name]).all()) for name in before)

    verdict = re.search(r"^judge: (?:scores \[(.*)\] best \d|no verdict \((.*)\))", done.stdout, re.MULTILINE)
    assert verdict is not None, done.stdout
    scores, failures = verdict.groups()
    if scores is not None:
        assert len(scores.split(", ")) == 2
    else:  # a model trained for two steps rarely writes a box: the two judgements are counted by reason
        assert sum(int(count) for count in re.findall(r" x(\d+)", failures)) == 2


def test_train_custom_judge_reports_every_bad_row(tmp_path: Path) -> None:
    rows = [
        {"prompt": "What is 1 + 1?", "chosen": "2", "rejected": "3"},
        {"prompt": "What is 2 + 2?", "chosen": "4"},
        {"prompt": "Same?", "chosen": "yes", "rejected": "yes"},
    ]
    data = write_jsonl(tmp_path / "prefs.jsonl", rows)
    args = ["--student", "unused", "--work-dir", str(tmp_path / "work"), "--data", str(data)]
    done = run_example("train_custom_judge.py", [*args, "--teacher-url", f"http://127.0.0.1:{free_port()}/v1"])

    assert done.returncode == 2
    bad = [line for line in done.stderr.splitlines() if line.startswith("bad row: ")]
    assert len(bad) == 2 and "rejected" in bad[0] and "same text" in bad[1]
    assert not (tmp_path / "work").exists()
