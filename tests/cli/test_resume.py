"""`--resume` after `kill -9`: every item exactly once, and no request repeated except those in flight at the kill."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from grmjudge.cache import sample_keys
from grmjudge.journal import IdIndex, truncate_partial_line
from grmjudge.prompts import DEFAULT_TEMPLATE
from grmjudge.types import GenerationRequest, Message
from tests.cli.conftest import (
    MODEL,
    RecordingServer,
    cli_command,
    item,
    read_jsonl,
    recording_server,
    run_in_process,
    run_subprocess,
    score_args,
    write_jsonl,
)
from tests.servers import REPO_ROOT

ITEM_ID = re.compile(r"item-\d+")


@pytest.mark.slow
def test_kill_9_then_resume_repeats_only_the_requests_in_flight_at_the_kill(tmp_path: Path) -> None:
    items = [item(i) for i in range(2000)]
    all_ids = [i["id"] for i in items]
    source, output, cache = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out.jsonl", tmp_path / "c.sqlite"
    kill_after = random.Random(20240607).randint(200, 1400)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}

    with recording_server(tmp_path / "requests.jsonl", "--delay", "0.002") as server:
        args = score_args(source, output, server.base_url, "--k", "4", "--cache", str(cache), "-q")
        written_before_kill, cached_before_kill = _run_and_kill(args, env, output, cache, kill_after, tmp_path)
        sent_before_kill = len(server.requests())

        resumed = run_subprocess([*args, "--resume"], env)
        assert resumed.returncode == 0, resumed.stderr
        requests = server.requests()

        rerun = run_subprocess(args, env)  # no --resume, same cache: every sample is a cache hit
        assert rerun.returncode == 0, rerun.stderr
        assert len(server.requests()) == len(requests)

    assert 0 < len(written_before_kill) < len(items)
    final = read_jsonl(output)  # every line is whole JSON
    assert [r["id"] for r in final] == all_ids  # the rerun rewrote it, in input order
    assert all(all(s["cached"] for s in r["samples"]) and r["usage"]["requests"] == 0 for r in final)
    first, second = requests[:sent_before_kill], requests[sent_before_kill:]
    assert max(Counter(_request_key(r) for r in first).values()) == 1
    assert max(Counter(_request_key(r) for r in second).values()) == 1
    sent_first = {_request_key(r) for r in first}
    repeated = [r for r in second if _request_key(r) in sent_first]
    for request in repeated:  # in flight at the kill: its samples never reached the cache
        assert not _cache_keys(request) & cached_before_kill
    assert not {_item_of(r) for r in second} & written_before_kill  # nothing finished was asked again
    assert {_item_of(r) for r in first if _item_of(r) in written_before_kill} == written_before_kill
    for request in first:  # the cache check above is not vacuous: the written items' samples are found there
        if _item_of(request) in written_before_kill:
            assert _cache_keys(request) <= cached_before_kill


def test_resume_drops_a_partial_last_line_and_finishes_the_rest(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    items = [item(i) for i in range(30)]
    source, output = write_jsonl(tmp_path / "in.jsonl", items), tmp_path / "out.jsonl"
    args = score_args(source, output, fake.base_url, "--k", "2")
    assert run_in_process(args, capsys)[0] == 0
    lines = output.read_text().splitlines(keepends=True)
    output.write_text("".join(lines[:20]) + lines[20][: len(lines[20]) // 2])  # killed while writing line 21

    status, stderr = run_in_process([*args, "--resume"], capsys)

    assert status == 0, stderr
    assert "resuming: 20 lines already in" in stderr and "dropped a partial last line" in stderr
    assert [r["id"] for r in read_jsonl(output)] == [i["id"] for i in items]
    assert "30 lines read: 10 judged, 20 already in the output" in stderr


def test_resume_refuses_an_output_from_another_input_or_other_settings(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source, output = write_jsonl(tmp_path / "in.jsonl", [item(i) for i in range(5)]), tmp_path / "out.jsonl"
    assert run_in_process(score_args(source, output, fake.base_url, "--k", "2"), capsys)[0] == 0
    written = output.read_bytes() + b'{"id":"item-5","sco'  # and a partial last line, which refusals keep too
    output.write_bytes(written)
    other = write_jsonl(tmp_path / "other.jsonl", [item(i) for i in range(3, 9)])

    status, stderr = run_in_process(score_args(other, output, fake.base_url, "--k", "2", "--resume"), capsys)
    assert status == 2
    assert "3 id(s) in" in stderr and "are not in the input ('item-0', 'item-1', 'item-2')" in stderr

    status, stderr = run_in_process(score_args(source, output, fake.base_url, "--k", "4", "--resume"), capsys)
    assert status == 2
    assert "was written with k=2 (line 1) but this run has k=4" in stderr

    status, stderr = run_in_process(
        score_args(source, output, fake.base_url, "--k", "2", "--seed", "9", "--resume"), capsys
    )
    assert (status, "seed=0" in stderr) == (2, True)
    assert output.read_bytes() == written  # refusals touch nothing

    output.write_bytes(written.replace(b'{"id":"item-2"', b'{"id":"item-2",,', 1))
    status, stderr = run_in_process(score_args(source, output, fake.base_url, "--k", "2", "--resume"), capsys)
    assert status == 2
    assert f"line 3 of {output} is not valid JSON (column 16: Expecting property name" in stderr


def test_id_index_remembers_every_id_and_its_first_line_through_growth() -> None:
    index = IdIndex()
    for n in range(1, 30_001):
        index.add(f"item-{n}", n)
    index.add("item-7", 99)  # a second add keeps the first line

    assert len(index) == 30_000
    assert all(index.line_of(f"item-{n}") == n for n in range(1, 30_001))
    assert index.line_of("item-7") == 7
    assert not any(f"item-{n}" in index for n in range(30_001, 40_000))
    assert "" not in index and "\u2028odd" not in index
    index.add("\u2028odd", 5)
    assert index.line_of("\u2028odd") == 5


def test_truncate_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    for content, kept in [
        (b'{"a":1}\n{"b":2}\n{"c":', b'{"a":1}\n{"b":2}\n'),
        (b'{"a":1}\n', b'{"a":1}\n'),
        (b'{"no newline at all"', b""),
        (b"", b""),
        (b"x" * 200_000 + b"\n" + b"y" * 100_000, b"x" * 200_000 + b"\n"),  # longer than one backwards chunk
    ]:
        path.write_bytes(content)
        assert truncate_partial_line(path) == len(content) - len(kept)
        assert path.read_bytes() == kept


def _run_and_kill(
    args: list[str], env: dict[str, str], output: Path, cache: Path, kill_after: int, tmp_path: Path
) -> tuple[set[str], set[str]]:
    """Start the command, SIGKILL it once ``kill_after`` lines are out; the ids written and the cache's keys."""
    process = subprocess.Popen(
        cli_command(args), cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not output.exists() or output.read_bytes().count(b"\n") < kill_after:
        assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
        assert time.monotonic() < deadline, "the command wrote too slowly"
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    if process.stderr is not None:
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL
    complete = output.read_bytes().rsplit(b"\n", 1)[0].split(b"\n")
    written = {json.loads(line)["id"] for line in complete}
    return written, _cache_snapshot(cache, tmp_path / "snapshot")


def _cache_snapshot(cache: Path, folder: Path) -> set[str]:
    """The keys in the cache as the killed process left it (copied with its WAL, then read)."""
    folder.mkdir()
    for suffix in ("", "-wal", "-shm"):
        side = cache.with_name(cache.name + suffix)
        if side.exists():
            shutil.copy(side, folder / side.name)
    connection = sqlite3.connect(folder / cache.name)
    try:
        return {key for (key,) in connection.execute("SELECT key FROM samples")}
    finally:
        connection.close()


def _request_key(request: dict[str, Any]) -> tuple[str, int, int]:
    body = request["body"]
    return json.dumps(body["messages"]), body["seed"], body["n"]


def _cache_keys(request: dict[str, Any]) -> set[str]:
    body = request["body"]
    generation = GenerationRequest(
        messages=tuple(Message(**m) for m in body["messages"]),
        n=body["n"],
        temperature=body["temperature"],
        top_p=body.get("top_p"),
        max_tokens=body["max_tokens"],
        seed=body["seed"],
    )
    return set(sample_keys("openai", MODEL, DEFAULT_TEMPLATE.hash, generation))


def _item_of(request: dict[str, Any]) -> str:
    (found,) = set(ITEM_ID.findall("\n".join(m["content"] for m in request["body"]["messages"])))
    return found
