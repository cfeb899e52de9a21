"""The service under pressure: a full queue, deadlines, client disconnects, a dead backend, SIGTERM under load."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.serve.conftest import Service, run_service
from tests.servers import LocalServer, free_port, serve

pytestmark = pytest.mark.slow

BODY = {"query": "Which is better?", "responses": ["ab", "abcdefg"], "k": 2}
SLOW_SECONDS = 2.0


@pytest.fixture(scope="module")
def slow_grm() -> Iterator[LocalServer]:
    with serve("grmjudge.testing.faults", ["--rate-slow", "1", "--slow-delay", str(SLOW_SECONDS)]) as server:
        yield server


@pytest.fixture(scope="module")
def tight(slow_grm: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """Two requests at most, one second each: every judged request overruns its deadline."""
    log = tmp_path_factory.mktemp("tight") / "service.log"
    with run_service(slow_grm, ["--max-queue", "2", "--deadline", "1", "--max-retries-per-item", "0"], log) as s:
        yield s


def _post(root: str, path: str = "/v1/score", body: object = BODY, timeout: float = 30) -> httpx.Response:
    return httpx.post(root + path, json=body, timeout=timeout)


def test_a_full_queue_answers_429_with_retry_after_and_the_deadline_504(tight: Service) -> None:
    with ThreadPoolExecutor(2) as pool:
        admitted = [pool.submit(_post, tight.root) for _ in range(2)]
        time.sleep(0.4)
        refused = _post(tight.root)
        assert refused.status_code == 429
        assert refused.headers["retry-after"] == "1"
        assert refused.json()["error"]["type"] == "QueueFull"
        for future in admitted:
            reply = future.result()
            assert reply.status_code == 504
            assert reply.json()["error"]["type"] == "DeadlineExceeded"


def test_a_batch_past_its_deadline_answers_every_item(tight: Service) -> None:
    items = [{"query": "q", "responses": ["a", "bb"]}, {"query": "q2", "responses": ["a", "bb"]}]
    reply = _post(tight.root, "/v1/score/batch", {"items": items, "k": 1})
    lines = [json.loads(line) for line in reply.text.splitlines()]
    assert sorted(line["index"] for line in lines) == [0, 1]
    assert all(line["error"]["type"] == "DeadlineExceeded" and line["status"] == 504 for line in lines)


def test_a_client_disconnect_cancels_its_call(tight: Service) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(tight.root + "/v1/score", json=BODY, timeout=0.3, headers={"x-request-id": "gone-1"})
    time.sleep(0.5)
    records = [json.loads(line) for line in tight.log_text().splitlines() if line.startswith("{")]
    gone = next(r for r in records if r["request_id"] == "gone-1")
    assert gone["status"] == 499
    assert gone["duration_ms"] < 1000  # cancelled at the disconnect, not at the deadline or the slow reply


def test_a_dead_backend_is_a_503_with_the_sdk_error_name(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with run_service(dead, ["--max-retries-per-item", "0"], tmp_path / "service.log") as service:
        reply = _post(service.root)
        assert reply.status_code == 503
        assert reply.json()["error"]["type"] == "BackendConnectionError"
        assert httpx.get(service.root + "/readyz").status_code == 503
        metrics = httpx.get(service.root + "/metrics").text
        assert 'grmjudge_backend_errors_total{type="BackendConnectionError"} 2' in metrics


def test_sigterm_under_load_answers_every_accepted_request(slow_grm: LocalServer, tmp_path: Path) -> None:
    with run_service(slow_grm, ["--deadline", "30"], tmp_path / "service.log") as service:
        with ThreadPoolExecutor(8) as pool:
            accepted = [pool.submit(_post, service.root) for _ in range(8)]
            _wait_for_depth(service.root, 8)
            service.process.send_signal(signal.SIGTERM)
            time.sleep(0.3)
            with pytest.raises(httpx.ConnectError):
                httpx.post(service.root + "/v1/score", json=BODY, timeout=5)
            replies = [future.result() for future in accepted]
        assert [r.status_code for r in replies] == [200] * 8
        assert all(r.json()["n_valid"] == 2 for r in replies)
        assert service.process.wait(timeout=20) == -signal.SIGTERM  # drained, then ended by the signal it got
        assert "Traceback" not in service.log_text()


def _wait_for_depth(root: str, depth: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        text = httpx.get(root + "/metrics").text
        if f"grmjudge_queue_depth {depth}" in text:
            return
        time.sleep(0.05)
    raise AssertionError(f"the service never held {depth} requests")
