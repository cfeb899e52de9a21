"""Files that cannot be read or written: a clear message and a documented exit status, never a traceback,
and nothing touched before every file of the run is known to be usable.

The tests run as root in CI, where ``chmod`` stops nobody: there a file or directory is made read-only with
``chattr +i`` (immutable, which stops root too), and a file root cannot read is a write-only sysctl.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

from grmjudge import InvalidInputError, Judge
from tests.cli.conftest import RecordingServer, item, run_in_process, score_args, write_jsonl

WRITE_ONLY_SYSCTLS = ("/proc/sys/vm/drop_caches", "/proc/sys/vm/compact_memory")
"""Mode 0200: procfs applies the owner's bits to root, so not even root may open them for reading."""


@contextmanager
def read_only(path: Path) -> Generator[None]:
    """``path`` (a file or a directory) made unwritable for this process, whoever runs the tests."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("running as root without chattr: no way to make a file read-only for root")
        done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False)
        if done.returncode != 0:
            pytest.skip(f"chattr +i does not work here: {done.stderr.strip()}")
        undo = lambda: subprocess.run(["chattr", "-i", str(path)], check=True)  # noqa: E731
    else:
        mode = path.stat().st_mode
        path.chmod(mode & ~0o222)
        undo = lambda: path.chmod(mode)  # noqa: E731
    try:
        _require_unwritable(path)
        yield
    finally:
        undo()


def _require_unwritable(path: Path) -> None:
    probe = path / ".probe" if path.is_dir() else path
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    except PermissionError:
        return
    os.close(fd)
    if probe != path:
        probe.unlink()
    pytest.fail(f"{path} is still writable")


def unreadable_file(tmp_path: Path) -> Path:
    """A regular file this process may not open for reading."""
    if os.geteuid() != 0:
        path = write_jsonl(tmp_path / "secret.jsonl", [item(0)])
        path.chmod(0)
        return path
    for candidate in WRITE_ONLY_SYSCTLS:
        try:
            os.close(os.open(candidate, os.O_RDONLY))
        except PermissionError:
            return Path(candidate)
        except OSError:
            continue
    pytest.skip("no file here that root may not read")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != "requests.jsonl"}


@pytest.fixture
def finished(tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]) -> list[str]:
    """A finished run of 5 items into ``out.jsonl`` (and a partial last line, as a kill leaves): its arguments."""
    source = write_jsonl(tmp_path / "in.jsonl", [item(i) for i in range(5)])
    args = score_args(source, tmp_path / "out.jsonl", fake.base_url, "--k", "2")
    assert run_in_process(args, capsys)[0] == 0
    with (tmp_path / "out.jsonl").open("ab") as output:
        output.write(b'{"id":"item-4","sco')
    (tmp_path / "out.errors.jsonl").write_text('{"line": 9, "note": "from an earlier run"}\n')
    return args


@pytest.mark.parametrize("resume", [False, True])
def test_a_read_only_output_is_refused_with_nothing_touched(
    tmp_path: Path, finished: list[str], resume: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(tmp_path)

    with read_only(tmp_path / "out.jsonl"):
        status, stderr = run_in_process([*finished, *(["--resume"] if resume else [])], capsys)

    assert status == 2
    assert f"grmjudge score: error: cannot write to the output {tmp_path / 'out.jsonl'}: " in stderr
    assert "Traceback" not in stderr
    assert _files(tmp_path) == before  # the partial last line too: --resume cuts it only once it can write


def test_a_read_only_errors_file_leaves_the_output_as_it_was(
    tmp_path: Path, finished: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(tmp_path)
    assert (tmp_path / "out.jsonl").read_bytes().count(b"\n") == 5

    with read_only(tmp_path / "out.errors.jsonl"):
        status, stderr = run_in_process(finished, capsys)

    assert status == 2
    assert f"cannot write to the errors file {tmp_path / 'out.errors.jsonl'}: " in stderr
    assert _files(tmp_path) == before  # the output was not truncated first


def test_an_errors_file_in_a_read_only_directory_is_refused_before_the_output_is_touched(
    tmp_path: Path, finished: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    before = _files(tmp_path)

    with read_only(locked):
        status, stderr = run_in_process([*finished, "--errors", str(locked / "errors.jsonl")], capsys)

    assert status == 2
    assert f"cannot create the errors file {locked / 'errors.jsonl'}: " in stderr
    assert _files(tmp_path) == before
    assert list(locked.iterdir()) == []


def test_an_unreadable_input_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = unreadable_file(tmp_path)
    output = tmp_path / "out.jsonl"

    status, stderr = run_in_process(score_args(source, output, "http://127.0.0.1:9/v1"), capsys)

    assert status == 2
    assert f"cannot read the input {source}: " in stderr
    assert not output.exists() and not (tmp_path / "out.errors.jsonl").exists()


def test_a_full_disk_stops_the_run_with_a_message(
    tmp_path: Path, fake: RecordingServer, capsys: pytest.CaptureFixture[str]
) -> None:
    full = Path("/dev/full")  # every write fails with ENOSPC, for root too
    if not full.exists():
        pytest.skip("no /dev/full here")
    source = write_jsonl(tmp_path / "in.jsonl", [item(i) for i in range(5)])
    errors = tmp_path / "errors.jsonl"

    status, stderr = run_in_process(
        score_args(source, full, fake.base_url, "--k", "2", "--errors", str(errors)), capsys
    )

    assert status == 3
    assert "grmjudge score: aborted: cannot write to the output /dev/full: No space left on device" in stderr
    assert "Traceback" not in stderr


def test_a_path_the_system_cannot_look_up_is_a_usage_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [item(0)])
    too_long = tmp_path / ("x" * 300)  # over NAME_MAX: stat fails with ENAMETOOLONG, for root too
    url = "http://127.0.0.1:9/v1"

    status, stderr = run_in_process(score_args(too_long, tmp_path / "out.jsonl", url), capsys)
    assert (status, f"cannot use the input {too_long}: File name too long" in stderr) == (2, True)

    status, stderr = run_in_process(score_args(source, too_long / "out.jsonl", url), capsys)
    assert (status, f"cannot use the output {too_long / 'out.jsonl'}: File name too long" in stderr) == (2, True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


@contextmanager
def append_only(path: Path) -> Generator[None]:
    """``path`` made append-only (``chattr +a``): it opens for appending, but cannot be truncated."""
    done = subprocess.run(["chattr", "+a", str(path)], capture_output=True, text=True, check=False)
    if shutil.which("chattr") is None or done.returncode != 0:
        pytest.skip(f"chattr +a does not work here: {done.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-a", str(path)], check=True)


@pytest.mark.parametrize("resume", [False, True])
def test_an_append_only_output_is_refused_before_the_errors_file_is_emptied(
    tmp_path: Path, finished: list[str], resume: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "new" / "cache.sqlite"
    before = _files(tmp_path)

    with append_only(tmp_path / "out.jsonl"):
        status, stderr = run_in_process([*finished, "--cache", str(cache), *(["--resume"] if resume else [])], capsys)

    assert status == 2, stderr
    assert f"cannot empty the output {tmp_path / 'out.jsonl'}: " in stderr
    assert _files(tmp_path) == before  # the errors file of the earlier run too
    assert not (tmp_path / "new").exists()  # the cache the refused run created is gone, its folder too


def test_a_k_over_the_cap_is_a_usage_error_with_nothing_touched(
    tmp_path: Path, finished: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    before = _files(tmp_path)

    status, stderr = run_in_process([*finished, "--k", "1025"], capsys)

    assert status == 2
    assert "grmjudge score: error: --k: k=1025 is above max_k=1024" in stderr
    assert _files(tmp_path) == before


def test_a_library_error_during_the_run_aborts_with_a_message(
    tmp_path: Path, finished: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def refuse(*_: object, **__: object) -> NoReturn:
        raise InvalidInputError("the judge refused the batch")

    monkeypatch.setattr(Judge, "stream", refuse)

    status, stderr = run_in_process(finished, capsys)

    assert status == 3
    assert "grmjudge score: aborted: the judge refused the batch" in stderr
    assert "Traceback" not in stderr
