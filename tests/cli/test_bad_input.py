"""Bad input lines get typed errors while good lines are judged; bad arguments stop before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from grmjudge import InvalidInputError, Judge, JudgeItem, JudgeSettings
from grmjudge.backends.function import FunctionBackend
from grmjudge.backends.limits import RateLimits
from grmjudge.exceptions import ConfigurationError
from grmjudge.types import GenerationRequest
from tests.cli.conftest import RecordingServer, item, read_jsonl, run_in_process, score_args, write_jsonl

DATA = Path(__file__).parent / "data"
URL = "an http:// or https:// URL such as http://127.0.0.1:8000/v1"


def test_every_bad_line_gets_a_typed_error_and_every_good_line_a_verdict(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = json.loads((DATA / "bad_inputs.expected.json").read_text())
    source_lines: list[bytes] = (DATA / "bad_inputs.jsonl").read_bytes().split(b"\n")
    output = tmp_path / "out.jsonl"
    args = score_args(DATA / "bad_inputs.jsonl", output, fake.base_url, "--k", "2", "--max-input-chars", "2000")

    status, stderr = run_in_process([*args, "--errors", str(tmp_path / "errors.jsonl")], capsys)

    assert status == 1  # finished, with errors
    errors = read_jsonl(tmp_path / "errors.jsonl")
    assert len(expected["errors"]) >= 50
    assert {str(e["line"]) for e in errors} == set(expected["errors"])
    for error in errors:
        kind, fragment = expected["errors"][str(error["line"])]
        assert (error["type"], fragment in error["message"]) == (kind, True), error
        raw = source_lines[int(error["line"]) - 1]
        given = json.loads(raw).get("id") if error["type"] not in ("invalid_json", "not_an_object") else None
        assert error["id"] == (given if isinstance(given, str) else None)
        if error["type"] == "invalid_json":  # the message says where, as an editor counts
            assert f"at line {error['line']}, " in error["message"], error
    detailed = next(e for e in errors if e["line"] == 79)
    assert [d["field"] for d in detailed["details"]] == ["query", "responses[0]", "label", "foo"]
    assert [d["problem"] for d in detailed["details"]] == ["string_type", "string_type", "int_type", "extra_forbidden"]
    (surrogate,) = next(e for e in errors if e["line"] == 96)["details"]
    assert surrogate == {
        "field": "responses[1]",
        "problem": "lone_surrogate",
        "message": "holds a lone surrogate \\ude00 at character 1 (half of a UTF-16 pair, such as a split emoji); "
        "text must be valid Unicode",
    }
    records = read_jsonl(output)
    valid_lines: list[int] = expected["valid_lines"]
    wanted_ids = [json.loads(source_lines[n - 1]).get("id") or str(n) for n in valid_lines]
    assert [r["id"] for r in records] == wanted_ids
    assert all(r["scores"] is not None for r in records)
    assert f"{len(expected['blank_lines'])} blank" in stderr
    assert f"{len(errors)} lines in" in stderr


def test_a_huge_line_is_refused_without_being_read(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    huge = json.dumps({"id": "huge", "query": "q", "responses": ["x" * 200_000]})
    source.write_text("\n".join([json.dumps(item(0)), huge, json.dumps(item(2))]) + "\n")
    output = tmp_path / "out.jsonl"

    status, _ = run_in_process(
        score_args(source, output, fake.base_url, "--k", "2", "--max-input-chars", "1000"), capsys
    )

    assert status == 1
    (error,) = read_jsonl(tmp_path / "out.errors.jsonl")
    assert (error["line"], error["type"]) == (2, "input_too_long")
    assert "it was not read" in error["message"]
    assert [r["id"] for r in read_jsonl(output)] == ["item-0", "item-2"]


def test_an_item_the_judge_refuses_is_reported_with_its_exception(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [item(0), item(1)])
    output = tmp_path / "out.jsonl"
    meta = ("--meta", "http:meta-rm", "--meta-base-url", "http://127.0.0.1:9/")  # nothing listens on port 9

    status, _ = run_in_process(score_args(source, output, fake.base_url, "--k", "2", *meta), capsys)

    assert status == 1
    errors = read_jsonl(tmp_path / "out.errors.jsonl")
    assert sorted((e["line"], e["type"]) for e in errors) == [
        (1, "item_failed"),
        (2, "item_failed"),
    ]  # in finishing order
    assert all(e["details"][0]["type"] == "BackendConnectionError" for e in errors)
    assert output.read_text() == ""


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--k", "0"], "argument --k: must be at least 1, got 0"),
        (["--concurrency", "0"], "argument --concurrency: must be at least 1, got 0"),
        (["--k", "two"], "argument --k: must be an integer, got 'two'"),
        (["--temperature", "-1"], "argument --temperature: must be 0 or more"),
        (["--rpm", "0"], "argument --rpm: must be above 0"),
        (["--order", "random"], "argument --order: invalid choice: 'random'"),
        (["--judge", "opanai:m"], "unknown backend kind 'opanai'"),
        (["--judge", "no-colon"], "backend spec must look like 'kind:model'"),
        (["--k-meta", "2"], "--k-meta needs --meta"),
        (["--meta", "mystery:m"], "--meta must look like 'http:MODEL'"),
        (["--meta", "http:m"], "--meta http:MODEL needs --meta-base-url"),
        (["--resume"], "--resume needs an existing output file"),
        (["--base-url", "notaurl"], f"argument --base-url: must be {URL}, got 'notaurl'\n"),
        (["--base-url", "ftp://x"], f"argument --base-url: must be {URL}, got 'ftp://x'\n"),
        (["--base-url", "http://"], f"argument --base-url: must be {URL}, got 'http://' (no host)"),
        (
            ["--base-url", "http://h:port/v1"],
            f"argument --base-url: must be {URL}, got 'http://h:port/v1' (a bad port)",
        ),
        (["--base-url", "http://u:sk-pw@h:p/?key=sk-k"], "got 'http://[REDACTED]@h:p/?[REDACTED]' (a bad port)"),
        (["--meta", "http:m", "--meta-base-url", "localhost:8000"], "argument --meta-base-url: must be an http://"),
    ],
)
def test_bad_arguments_exit_2_before_any_work(
    tmp_path: Path, extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [item(0)])
    judge = [] if "--judge" in extra else ["--judge", "openai:fake-grm"]
    cache = ["--cache", str(tmp_path / "c.sqlite")]
    args = [
        "score",
        str(source),
        "-o",
        str(tmp_path / "out.jsonl"),
        "--base-url",
        "http://127.0.0.1:9/v1",
        *judge,
        *cache,
    ]

    status, stderr = run_in_process([*args, *extra], capsys)

    assert status == 2
    assert message in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]  # no output, errors file or cache


def test_a_missing_input_or_clashing_paths_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [item(0)])
    url = "http://127.0.0.1:9/v1"

    status, stderr = run_in_process(score_args(tmp_path / "missing.jsonl", tmp_path / "o.jsonl", url), capsys)
    assert (status, "input file" in stderr and "does not exist" in stderr) == (2, True)

    status, stderr = run_in_process(score_args(source, source, url), capsys)
    assert (status, "the input and the output are the same file" in stderr) == (2, True)

    status, stderr = run_in_process(score_args(source, tmp_path / "no-dir" / "o.jsonl", url), capsys)
    assert (status, "does not exist" in stderr) == (2, True)

    status, stderr = run_in_process(score_args(tmp_path, tmp_path / "o.jsonl", url), capsys)
    assert (status, f"the input {tmp_path} is a directory, not a file" in stderr) == (2, True)

    status, stderr = run_in_process(score_args(source, source / "o.jsonl", url), capsys)
    assert status == 2
    assert f"cannot create the output {source / 'o.jsonl'}: {source} is a file, not a directory" in stderr

    status, stderr = run_in_process(
        ["score", str(source), "-o", str(tmp_path / "o.jsonl"), "--judge", "openai:m"], capsys
    )
    assert (status, "needs base_url" in stderr) == (2, True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def _backend() -> FunctionBackend:
    def reply(request: GenerationRequest) -> list[str]:
        return ["Analysis: fine.\nScores: \\boxed{5, 6}"] * request.n

    return FunctionBackend(reply)


@pytest.mark.anyio
async def test_python_api_rejects_bad_calls_with_readable_errors() -> None:
    judge = Judge(_backend())

    with pytest.raises(InvalidInputError, match="responses is empty"):
        await judge.score("q", [], k=1)
    with pytest.raises(InvalidInputError, match="k must be a positive integer, got 0"):
        await judge.score("q", ["a", "b"], k=0)
    with pytest.raises(InvalidInputError, match=r"responses\[1\] is int, not a string"):
        await judge.score("q", ["a", 3], k=1)  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="last turn of the query must be the user's"):
        await judge.score([{"role": "assistant", "content": "hi"}], ["a", "b"])
    with pytest.raises(InvalidInputError, match="concurrency must be at least 1"):
        await judge.score_many([{"query": "q", "responses": ["a", "b"]}], concurrency=0)
    with pytest.raises(ConfigurationError, match="meta=True needs a meta scorer"):
        await judge.score("q", ["a", "b"], meta=True)


def test_python_settings_and_items_reject_bad_values_with_pydantic_errors() -> None:
    with pytest.raises(ValidationError, match="temperature\n  Input should be greater than or equal to 0"):
        JudgeSettings(temperature=-1)
    with pytest.raises(ValidationError, match="max_tokens\n  Input should be greater than or equal to 1"):
        JudgeSettings(max_tokens=0)
    with pytest.raises(ValidationError, match="responses\n  Tuple should have at least 1 item"):
        JudgeItem(query="q", responses=())
    with pytest.raises(ValidationError, match="requests_per_minute\n  Input should be greater than 0"):
        RateLimits(requests_per_minute=0)
    with pytest.raises(ConfigurationError, match="max_concurrent_requests must be at least 1"):
        Judge(_backend(), max_concurrent_requests=0)
