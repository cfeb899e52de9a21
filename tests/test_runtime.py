"""grmjudge's one event loop: blocking calls anywhere, async calls from any loop, cancellation, clean shutdown."""

from __future__ import annotations

import gc
import multiprocessing
import multiprocessing.queues
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import anyio
import pytest

from grmjudge import Completion, Generation, GenerationRequest, Judge
from grmjudge._runtime import runtime
from grmjudge.backends import FunctionBackend, OpenAIBackend
from grmjudge.exceptions import ConfigurationError
from tests.servers import LocalServer, serve

QUERY = "Which is the better answer to 2 + 2?"
RESPONSES = ["4", "It is 4 because two and two make four."]
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    with serve() as local:
        yield local


def open_sessions(server: LocalServer) -> list[str]:
    """This process's open aiohttp sessions and its established TCP connections to ``server``."""
    gc.collect()
    sessions = [repr(o) for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed]
    return sessions + connections_to(int(server.root.rsplit(":", 1)[1]))


def connections_to(port: int) -> list[str]:
    """This process's established TCP connections to 127.0.0.1:``port`` (from /proc: any client's sockets)."""
    own = {_link(fd) for fd in os.listdir("/proc/self/fd")}
    found: list[str] = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "01" and int(remote.split(":")[1], 16) == port and f"socket:[{inode}]" in own:
            found.append(f"connection {fields[1]} -> {remote}")
    return found


def _link(fd: str) -> str | None:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # closed since the listing
        return None


def test_one_connection_pool_serves_blocking_calls_and_every_loop(server: LocalServer) -> None:
    judge = Judge(OpenAIBackend(base_url=server.base_url, model="fake-grm"))
    outside = judge.score_sync(QUERY, RESPONSES, k=2)
    transport = judge.backend.http.transport()  # type: ignore[attr-defined]

    async def in_a_notebook_cell() -> list[float] | None:
        return judge.score_sync(QUERY, RESPONSES, k=2).scores  # blocks this running loop's thread, and works

    async def awaited_on_another_loop() -> list[float] | None:
        return (await judge.score(QUERY, RESPONSES, k=2)).scores

    assert anyio.run(in_a_notebook_cell) == outside.scores
    assert anyio.run(awaited_on_another_loop) == outside.scores
    assert judge.backend.http.transport() is transport and not transport.closed  # type: ignore[attr-defined]
    judge.close()
    assert transport.closed and judge.closed


def test_async_callers_on_several_threads_share_one_judge(server: LocalServer) -> None:
    judge = Judge(OpenAIBackend(base_url=server.base_url, model="fake-grm"))
    scores: list[list[float] | None] = []

    async def call() -> None:
        scores.append((await judge.score(QUERY, RESPONSES, k=4)).scores)

    threads = [threading.Thread(target=anyio.run, args=(call,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    judge.close()
    assert len(scores) == 4 and scores[0] is not None and all(s == scores[0] for s in scores)


@pytest.mark.anyio
async def test_a_timeout_in_the_caller_cancels_the_work_on_the_runtime() -> None:
    started, cancelled = threading.Event(), threading.Event()

    async def stuck(request: GenerationRequest) -> Generation:
        started.set()
        try:
            await anyio.sleep(60)
        finally:
            cancelled.set()
        raise AssertionError("not reached")

    judge = Judge(FunctionBackend(stuck))
    begun = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.5):
            await judge.score(QUERY, RESPONSES, k=1)
    assert started.is_set() and time.monotonic() - begun < 5
    assert cancelled.wait(5), "the backend call on the runtime's loop was not cancelled"
    await judge.aclose()


@pytest.mark.anyio
async def test_an_error_on_the_runtime_reaches_the_awaiting_loop_typed() -> None:
    async def broken(request: GenerationRequest) -> Generation:
        raise ValueError("the scorer broke")

    judge = Judge(FunctionBackend(broken))
    with pytest.raises(ValueError, match="the scorer broke"):
        await judge.score(QUERY, RESPONSES, k=1)


def test_a_stream_read_from_another_loop_gives_every_result_and_raises_what_failed() -> None:
    def echo(request: GenerationRequest) -> Generation:
        return Generation(completions=[Completion(text=r"\boxed{5, 6}", finish_reason="stop")] * request.n)

    judge = Judge(FunctionBackend(echo))
    items = [{"query": QUERY, "responses": RESPONSES, "id": str(i)} for i in range(20)]

    async def read_all() -> list[str]:
        async with judge.stream(items, k=2, concurrency=4) as results:
            return sorted([r.item_id async for r in results], key=int)

    assert anyio.run(read_all) == [str(i) for i in range(20)]

    def broken_items() -> Iterator[dict[str, object]]:
        yield items[0]
        raise OSError("the input file vanished")

    async def read_broken() -> None:
        async with judge.stream(broken_items(), k=2) as results:
            async for _ in results:
                pass

    with pytest.raises(OSError, match="the input file vanished"):
        anyio.run(read_broken)


@pytest.mark.anyio
async def test_aclose_leaves_no_open_session_and_no_new_thread(server: LocalServer) -> None:
    runtime()  # the runtime's own thread is there for the life of the process
    threads_before = set(threading.enumerate())
    judge = Judge(OpenAIBackend(base_url=server.base_url, model="fake-grm"))
    assert (await judge.score(QUERY, RESPONSES, k=4)).scores is not None
    assert open_sessions(server) != []
    await judge.aclose()
    assert open_sessions(server) == []
    assert set(threading.enumerate()) == threads_before


def test_a_judge_dropped_without_closing_leaves_no_open_session(server: LocalServer) -> None:
    judge = Judge(OpenAIBackend(base_url=server.base_url, model="fake-grm"))
    assert judge.score_sync(QUERY, RESPONSES, k=2).scores is not None
    del judge
    deadline = time.monotonic() + 5
    while open_sessions(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert open_sessions(server) == []


def _score_in_child(judge: Judge, results: multiprocessing.queues.Queue[object]) -> None:
    results.put(judge.score_sync(QUERY, RESPONSES, k=2).scores)


def test_a_forked_child_judges_on_a_runtime_and_connections_of_its_own(server: LocalServer) -> None:
    judge = Judge(OpenAIBackend(base_url=server.base_url, model="fake-grm"))
    in_parent = judge.score_sync(QUERY, RESPONSES, k=2).scores  # the parent's pool holds a kept-alive connection
    fork = multiprocessing.get_context("fork")
    results: multiprocessing.queues.Queue[object] = fork.Queue()
    child = fork.Process(target=_score_in_child, args=(judge, results), daemon=True)
    child.start()
    child.join(timeout=60)
    if child.is_alive():  # hung on the parent's sockets or loop
        child.kill()
    assert child.exitcode == 0
    assert results.get(timeout=5) == in_parent
    assert judge.score_sync(QUERY, RESPONSES, k=2).scores == in_parent  # the parent's connections still answer
    judge.close()


SCRIPT = """
import sys, threading, warnings
warnings.simplefilter("error")
from grmjudge import Judge
from grmjudge.backends import OpenAIBackend
from grmjudge import _runtime

judge = Judge(OpenAIBackend(base_url=sys.argv[1], model="fake-grm"))
print(judge.score_sync("Which is better?", ["4", "four"], k=2).scores)
if sys.argv[2] == "shutdown":
    judge.close()
    _runtime.shutdown()
    names = sorted(t.name for t in threading.enumerate())
    with open(f"/proc/self/task/{threading.get_native_id()}/children") as listing:
        children = listing.read().split()
    print("threads", names, "children", children)
"""


@pytest.mark.parametrize("ending", ["exit", "shutdown"])
def test_a_script_ends_cleanly_without_warnings_threads_or_processes(server: LocalServer, ending: str) -> None:
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", textwrap.dedent(SCRIPT), server.base_url, ending],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("[")
    assert "Unclosed" not in done.stderr and "Warning" not in done.stderr and "Task was destroyed" not in done.stderr
    if ending == "shutdown":
        assert done.stdout.splitlines()[1] == "threads ['MainThread'] children []"


def test_a_blocking_call_made_on_the_runtime_itself_is_refused_not_deadlocked() -> None:
    inner = Judge(FunctionBackend(lambda request: [r"\boxed{5, 6}"] * request.n))

    async def calls_back(request: GenerationRequest) -> list[str]:
        inner.score_sync(QUERY, RESPONSES)  # runs on grmjudge's loop: it would wait for itself
        return [r"\boxed{5, 6}"] * request.n

    outer = Judge(FunctionBackend(calls_back))
    with pytest.raises(ConfigurationError, match="would wait for itself"):
        outer.score_sync(QUERY, RESPONSES)
