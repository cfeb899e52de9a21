"""The API key reaches the server as a header and nothing else: no output, error, cache, log or repr holds it."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grmjudge._redact import Redactor
from grmjudge.judge import Judge
from grmjudge.judge_options import JudgeOptions, build_backend, build_settings
from tests.cli.conftest import (
    cli_command,
    item,
    read_jsonl,
    recording_server,
    run_subprocess,
    score_args,
    write_jsonl,
)
from tests.echo_server import leaked
from tests.servers import REPO_ROOT, LocalServer, serve

PLANTED = "sk-test-PLANTED-7f3a9c1e5b2d4068a1b2c3d4e5f60718"


@pytest.fixture(scope="module")
def echo() -> Iterator[LocalServer]:
    """``tests.echo_server``: echoes the key it receives in headers, error bodies and judgement texts."""
    with serve("tests.echo_server") as server:
        yield server


def _artefacts(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def _run(folder: Path, base_url: str, *extra: str) -> tuple[int, dict[str, bytes]]:
    items = [item(i) for i in range(40)]
    items[7]["responses"][1] = "long " * 400  # refused by the server's context limit: an HTTP 400 error body
    source = write_jsonl(folder / "in.jsonl", items)
    args = score_args(source, folder / "out.jsonl", base_url, "--k", "2", "--max-tokens", "100")
    args += ["--cache", str(folder / "cache.sqlite"), "--progress-every", "0.01", *extra]
    env = {**os.environ, "OPENAI_API_KEY": PLANTED}
    done = run_subprocess(args, env)
    (folder / "stdout.txt").write_text(done.stdout)
    (folder / "stderr.txt").write_text(done.stderr)
    return done.returncode, _artefacts(folder)


@pytest.mark.slow
def test_the_key_is_in_no_artefact_of_a_run_with_failures(tmp_path: Path) -> None:
    log = tmp_path / "server" / "requests.jsonl"
    log.parent.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    with recording_server(log, "--max-model-len", "800", "--require-key", PLANTED, "--delay", "0.01") as server:
        status, artefacts = _run(run, server.base_url)

    assert status == 1  # one item refused, the rest judged: the run really used the key
    assert len(read_jsonl(run / "out.jsonl")) == 39
    (error,) = read_jsonl(run / "out.errors.jsonl")
    assert error["type"] == "backend_failed" and "HTTP 400" in error["message"]
    assert b"lines " in artefacts["stderr.txt"]  # progress lines were drawn
    assert {"out.jsonl", "out.errors.jsonl", "cache.sqlite", "stdout.txt", "stderr.txt"} <= set(artefacts)
    for name, content in artefacts.items():
        assert PLANTED.encode() not in content, name
    assert PLANTED.encode() not in log.read_bytes()  # not in any request body either


def test_a_server_that_echoes_a_refused_key_does_not_leak_it(tmp_path: Path) -> None:
    log = tmp_path / "server" / "requests.jsonl"
    log.parent.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    with recording_server(log, "--require-key", "sk-the-right-one-0000") as server:
        status, artefacts = _run(run, server.base_url)

    assert status == 3  # credentials refused: the run stops at once
    stderr = artefacts["stderr.txt"].decode()
    assert "refused the credentials" in stderr and "[REDACTED]" in stderr
    errors = read_jsonl(run / "out.errors.jsonl")
    assert errors and all(e["type"] == "backend_failed" and "[REDACTED]" in e["message"] for e in errors)
    for name, content in artefacts.items():
        assert PLANTED.encode() not in content, name


def test_a_killed_run_leaves_no_key_in_the_cache_wal(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [item(i) for i in range(400)])
    output = tmp_path / "out.jsonl"
    log = tmp_path / "server" / "requests.jsonl"
    log.parent.mkdir()
    env = {**os.environ, "OPENAI_API_KEY": PLANTED}
    with recording_server(log, "--require-key", PLANTED, "--delay", "0.02") as server:
        args = score_args(source, output, server.base_url, "--k", "2", "--cache", str(tmp_path / "c.sqlite"))
        process = subprocess.Popen(
            cli_command(args), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while not output.exists() or output.read_bytes().count(b"\n") < 50:
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        process.kill()
        process.wait()

    artefacts = _artefacts(tmp_path)
    assert {"c.sqlite-wal", "c.sqlite-shm"} <= set(artefacts)  # left behind by the kill
    for name, content in artefacts.items():
        assert PLANTED.encode() not in content, name


def test_reprs_and_settings_hold_no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", PLANTED)
    options = JudgeOptions(
        judge="openai:m",
        base_urls=("http://127.0.0.1:9/v1", "http://127.0.0.1:10/v1"),
        meta=None,
        meta_base_url=None,
        k_meta=None,
        temperature=None,
        max_tokens=None,
        seed=None,
        rpm=60.0,
        tpm=None,
        max_retries_per_item=None,
    )
    backend = build_backend(options)
    judge = Judge(backend, settings=build_settings(options))

    for text in (repr(judge), repr(backend), str(backend), repr(judge.settings), repr(options), repr(vars(judge))):
        assert PLANTED not in text
    assert PLANTED not in repr(Redactor.from_environment())
    assert Redactor.from_environment()(f"echo {PLANTED}!") == "echo [REDACTED]!"


def _echo_items(*markers: str) -> list[dict[str, Any]]:
    """Nine plain items, then one per marker, whose query asks the echo server for that failure."""
    items = [item(i) for i in range(9 + len(markers))]
    for record, marker in zip(items[9:], markers, strict=True):
        record["query"] = f"{marker} {record['query']}"
    return items


def _score_as(folder: Path, source: Path, base_url: str, key: str | None, *extra: str) -> tuple[int, dict[str, bytes]]:
    """Run ``grmjudge score`` with ``OPENAI_API_KEY=key`` (unset if None): exit status and every file it left."""
    folder.mkdir()
    env = {name: value for name, value in os.environ.items() if name != "OPENAI_API_KEY"}
    env.update({"OPENAI_API_KEY": key} if key else {})
    args = score_args(source, folder / "out.jsonl", base_url, "--k", "2", "--progress-every", "0.01", *extra)
    done = run_subprocess([*args, "--max-retries-per-item", "0"], env)
    (folder / "stdout.txt").write_text(done.stdout)
    (folder / "stderr.txt").write_text(done.stderr)
    return done.returncode, _artefacts(folder)


@pytest.mark.slow
def test_an_echoed_key_reaches_no_file_of_a_run_nor_of_a_rerun_without_the_key(
    echo: LocalServer, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", _echo_items("echo-429", "echo-500", "echo-not-json"))
    cache = tmp_path / "cache.sqlite"
    first, run = _score_as(tmp_path / "run", source, echo.base_url, PLANTED, "--cache", str(cache))
    again, rerun = _score_as(tmp_path / "rerun", source, echo.base_url, None, "--cache", str(cache))

    assert first == again == 1  # three items fail at the server each time
    assert {e["id"] for e in read_jsonl(tmp_path / "run" / "out.errors.jsonl")} == {"item-9", "item-10", "item-11"}
    samples = [s for record in read_jsonl(tmp_path / "rerun" / "out.jsonl") for s in record["samples"]]
    assert len(samples) == 18 and all(s["cached"] and s["text"].endswith("Bearer [REDACTED].") for s in samples)
    files = {f"run/{n}": c for n, c in run.items()} | {f"rerun/{n}": c for n, c in rerun.items()}
    files |= {p.name: p.read_bytes() for p in tmp_path.glob("cache.sqlite*")}
    for name, content in files.items():
        assert not leaked(PLANTED, content), name


def test_a_refused_key_echoed_across_the_excerpt_cut_leaves_no_prefix(echo: LocalServer, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", _echo_items("echo-401")[9:])
    status, artefacts = _score_as(tmp_path / "run", source, echo.base_url, PLANTED)

    assert status == 3  # credentials refused: the run stops
    (error,) = read_jsonl(tmp_path / "run" / "out.errors.jsonl")
    assert "HTTP 401" in error["message"] and error["message"].endswith('Bearer [REDACTED]"}}')
    assert "[REDACTED]" in artefacts["stderr.txt"].decode()
    for name, content in artefacts.items():
        assert not leaked(PLANTED, content), name
