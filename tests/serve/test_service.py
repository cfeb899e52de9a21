"""Every endpoint of one real ``grmjudge serve`` process (with API keys) over a fake GRM server."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anyio
import httpx
import pytest

from grmjudge import Judge
from grmjudge.client import RemoteJudge
from grmjudge.exceptions import AuthenticationError, InvalidInputError
from grmjudge.results import ScoreResult
from tests.serve.conftest import KEY, SECOND_KEY, Service, run_service
from tests.servers import REPO_ROOT, LocalServer

pytestmark = pytest.mark.slow  # a service and a fake GRM process for the module

QUERY = "Which answer is better?"
RESPONSES = ["ab", "abcdefg"]  # the fake GRM scores a response 1 + its length % 10


@pytest.fixture(scope="module")
def service(grm: LocalServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    log = tmp_path_factory.mktemp("serve") / "service.log"
    args = ["--k", "4", "--api-key", KEY, "--max-responses", "4", "--max-k", "16", "--max-text-chars", "2000"]
    args += ["--max-body-bytes", "20000", "--group-wait", "20", "--fallback", "-1"]
    with run_service(grm, args, log, env={"GRMJUDGE_API_KEY": SECOND_KEY}) as running:
        yield running


@pytest.fixture
def client(service: Service) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=service.root, headers={"authorization": f"Bearer {KEY}"}, timeout=30) as c:
        yield c


def test_score_gives_the_sdk_result_of_the_same_judge_in_process(client: httpx.Client, grm: LocalServer) -> None:
    reply = client.post("/v1/score", json={"query": QUERY, "responses": RESPONSES})
    assert reply.status_code == 200
    assert reply.headers["x-request-id"]
    served = ScoreResult.model_validate(reply.json())
    local = Judge.from_spec("openai:fake-grm", base_url=grm.base_url).score_sync(QUERY, RESPONSES, k=4)
    assert served.provenance.k == 4
    assert served.scores == local.scores
    assert served.best == local.best == 1
    assert [s.seed for s in served.samples] == [s.seed for s in local.samples]


def test_messages_and_item_id_reach_the_judge(client: httpx.Client) -> None:
    messages = [{"role": "system", "content": "Be terse."}, {"role": "user", "content": QUERY}]
    body = {"messages": messages, "responses": RESPONSES, "k": 2, "item_id": "item-7"}
    result = ScoreResult.model_validate(client.post("/v1/score", json=body).json())
    assert result.provenance.item_id == "item-7"
    assert len(result.samples) == 2


def test_batch_streams_ndjson_with_indexes_and_per_item_errors(client: httpx.Client) -> None:
    items = [
        {"query": QUERY, "responses": RESPONSES},
        {"query": 5, "responses": ["a"]},
        {"query": QUERY, "responses": ["x"] * 5},
        {"query": "another", "responses": RESPONSES, "id": "mine"},
    ]
    reply = client.post("/v1/score/batch", json={"items": items, "k": 2})
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in reply.text.splitlines()]
    by_index = {line["index"]: line for line in lines}
    assert sorted(by_index) == [0, 1, 2, 3]
    assert ScoreResult.model_validate(by_index[0]["result"]).best == 1
    assert by_index[1]["error"]["field"].startswith("items.1.query")
    assert by_index[2]["error"]["field"] == "items.2.responses"
    assert by_index[3]["item_id"] == "mine" and "result" in by_index[3]


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"query": QUERY, "responses": ["a"] * 5}, 422, "responses"),
        ({"query": QUERY, "responses": RESPONSES, "k": 17}, 422, "k"),
        ({"query": QUERY, "responses": ["a", "b" * 2001]}, 422, "responses.1"),
        ({"query": QUERY, "responses": RESPONSES, "meta": True}, 422, "meta"),
        ({"query": QUERY, "responses": []}, 422, "responses"),
        ({"responses": RESPONSES}, 422, None),
        ({"query": QUERY, "responses": RESPONSES, "surprise": 1}, 422, "surprise"),
    ],
)
def test_refusals_name_the_field(client: httpx.Client, body: dict[str, object], status: int, field: str | None) -> None:
    reply = client.post("/v1/score", json=body)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["type"] == "InvalidInputError"
    assert error["field"] == field
    assert error["message"]


def test_body_limit_and_broken_json(client: httpx.Client) -> None:
    big = client.post("/v1/score", json={"query": QUERY, "responses": ["a" * 1500] * 15})
    assert big.status_code == 413 and big.json()["error"]["type"] == "BodyTooLarge"
    broken = client.post("/v1/score", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["type"] == "InvalidJSON"


def test_keys_are_required_and_any_configured_key_works(service: Service) -> None:
    body = {"query": QUERY, "responses": RESPONSES, "k": 1}
    missing = httpx.post(service.root + "/v1/score", json=body)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert missing.json()["error"]["type"] == "Unauthorized"
    wrong = httpx.post(service.root + "/v1/score", json=body, headers={"authorization": f"Bearer {KEY[:-1]}x"})
    assert wrong.status_code == 401
    assert httpx.get(service.root + "/metrics").status_code == 401
    rotated = httpx.post(service.root + "/v1/score", json=body, headers={"authorization": f"Bearer {SECOND_KEY}"})
    assert rotated.status_code == 200
    basic = httpx.post(service.root + "/v1/score", json=body, auth=("trainer", KEY))  # a URL's user info
    assert basic.status_code == 200
    assert httpx.get(service.root + "/healthz").json() == {"status": "ok"}


def test_rewards_of_one_request_are_judged_as_a_group(client: httpx.Client) -> None:
    body = {"prompt": QUERY, "completions": ["a", "abcdefgh", "abcd"], "normalisation": "rank"}
    reply = client.post("/v1/rewards", json=body).json()
    assert reply == {"rewards": [0.0, 1.0, 0.5], "no_verdict": [False, False, False]}


def test_a_group_is_assembled_from_requests_of_different_processes(service: Service) -> None:
    script = (
        "import httpx, json, sys;"
        "body = {'prompt': 'Say hi', 'completions': [sys.argv[1]], 'group_id': 'step-3/uid-9', 'group_size': 2,"
        " 'normalisation': 'rank'};"
        f"auth = {{'authorization': 'Bearer {KEY}'}};"
        f"r = httpx.post('{service.root}/v1/rewards', json=body, headers=auth, timeout=30);"
        "print(json.dumps(r.json()))"
    )
    workers = [
        subprocess.Popen([sys.executable, "-c", script, text], cwd=REPO_ROOT, stdout=subprocess.PIPE)
        for text in ("hi", "hello there, friend")
    ]
    outputs = [json.loads(worker.communicate(timeout=60)[0]) for worker in workers]
    # judged apart, each would be a group of one (rank 0.5); judged together the longer one wins
    assert [out["rewards"] for out in outputs] == [[0.0], [1.0]]


def test_reference_mode_needs_a_reference_and_group_id_needs_a_size(client: httpx.Client) -> None:
    no_ref = client.post("/v1/rewards", json={"prompt": QUERY, "completions": ["a"], "mode": "reference"})
    assert no_ref.status_code == 422 and no_ref.json()["error"]["field"] == "reference"
    no_size = client.post("/v1/rewards", json={"prompt": QUERY, "completions": ["a"], "group_id": "g"})
    assert no_size.status_code == 422 and no_size.json()["error"]["field"] == "group_size"
    judged = client.post(
        "/v1/rewards", json={"prompt": QUERY, "completions": ["a", "abcdef"], "mode": "reference", "reference": "abc"}
    ).json()
    assert judged["no_verdict"] == [False, False]
    assert judged["rewards"][0] < judged["rewards"][1]


def test_openrlhf_get_reward(client: httpx.Client) -> None:
    prompt = "<|im_start|>user\nSay hi<|im_end|>\n<|im_start|>assistant\n"
    body = {"query": [prompt + "hi", prompt + "hello there, friend"], "prompts": [prompt, prompt], "labels": ["", ""]}
    reply = client.post("/get_reward", json=body)
    assert reply.status_code == 200
    data = reply.json()
    assert set(data) == {"rewards", "scores", "extra_logs"}
    assert data["rewards"] == data["scores"]
    assert data["rewards"][0] < data["rewards"][1]
    assert data["extra_logs"] == {"grm_no_verdict": [0.0, 0.0]}
    mismatch = client.post("/get_reward", json={"query": ["other text"], "prompts": [prompt]})
    assert mismatch.status_code == 422 and mismatch.json()["error"]["field"] == "query.0"


def test_remote_judge_has_the_judge_call_shape(service: Service, grm: LocalServer) -> None:
    local = Judge.from_spec("openai:fake-grm", base_url=grm.base_url)
    remote = RemoteJudge(service.root, api_key=KEY)
    try:
        assert KEY not in repr(remote)
        served = remote.score_sync(QUERY, RESPONSES)
        assert served.provenance.k == 4  # the service's --k
        assert served.scores == local.score_sync(QUERY, RESPONSES, k=4).scores
        items = [{"query": QUERY, "responses": RESPONSES, "id": "a"}, {"query": QUERY, "responses": ["x"] * 5}]
        batch = remote.score_many_sync(items, k=2)
        assert [r.index for r in batch] == [0, 1]
        assert batch[0].result is not None and batch[0].result.provenance.item_id == "a"
        assert batch[1].error is not None and batch[1].error.type == "InvalidInputError"
        assert "responses" in batch[1].error.message
        with pytest.raises(InvalidInputError, match="^k: "):
            remote.score_sync(QUERY, RESPONSES, k=17)
    finally:
        remote.close()
    stranger = RemoteJudge(service.root, api_key="not-the-key-0123456789")
    with pytest.raises(AuthenticationError):
        stranger.score_sync(QUERY, RESPONSES)
    stranger.close()


@pytest.mark.anyio
async def test_remote_judge_streams_in_completion_order(service: Service) -> None:
    async with RemoteJudge(service.root, api_key=KEY) as remote:
        items = [(QUERY, ["a" * n, "b"]) for n in range(1, 6)]
        async with remote.stream(items, k=2, concurrency=3) as results:
            seen = [r.index async for r in results]
    assert sorted(seen) == [0, 1, 2, 3, 4]


def test_probes_schema_and_metrics(client: httpx.Client) -> None:
    assert client.get("/readyz").json() == {"status": "ready"}
    schema = client.get("/openapi.json").json()
    assert {"/v1/score", "/v1/score/batch", "/v1/rewards", "/get_reward"} <= set(schema["paths"])
    assert "responses" in schema["components"]["schemas"]["ScoreRequest"]["properties"]
    client.post("/v1/score", json={"query": QUERY, "responses": RESPONSES, "k": 3})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert 'grmjudge_requests_total{route="/v1/score",status="200"}' in text
    assert 'grmjudge_request_duration_seconds_bucket{route="/v1/score",status="200",le="+Inf"}' in text
    samples = next(line for line in text.splitlines() if line.startswith("grmjudge_samples_total "))
    assert int(samples.split()[1]) >= 3
    for family in ("grmjudge_queue_depth", "grmjudge_groups_waiting", "grmjudge_backend_errors_total"):
        assert f"# TYPE {family}" in text


def test_access_log_is_json_with_request_ids_and_no_key(client: httpx.Client, service: Service) -> None:
    client.post(
        "/v1/score", json={"query": QUERY, "responses": RESPONSES, "k": 1}, headers={"x-request-id": "trace-42"}
    )
    httpx.post(service.root + "/v1/score", json={}, headers={"authorization": f"Bearer {KEY}-wrong"})
    records = [json.loads(line) for line in service.log_text().splitlines() if line.startswith("{")]
    mine = [r for r in records if r["request_id"] == "trace-42"]
    assert mine and mine[0]["path"] == "/v1/score" and mine[0]["status"] == 200
    assert any(r["status"] == 401 for r in records)
    outputs = service.log_text() + client.get("/metrics").text
    assert KEY not in outputs and SECOND_KEY not in outputs and KEY[:16] not in outputs


def test_a_key_echoed_in_input_is_redacted_from_results(client: httpx.Client) -> None:
    result = client.post("/v1/score", json={"query": QUERY, "responses": RESPONSES, "item_id": f"id-{KEY}"}).json()
    assert KEY not in json.dumps(result)
    assert "[REDACTED]" in result["provenance"]["item_id"]


def test_a_non_loopback_bind_without_a_key_is_refused(grm: LocalServer, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "grmjudge.cli", "serve", "--judge", "openai:m", "--base-url", grm.base_url]
    done = subprocess.run([*command, "--host", "0.0.0.0"], cwd=REPO_ROOT, capture_output=True, timeout=60, env={})
    assert done.returncode == 2
    assert b"--api-key" in done.stderr


def test_verl_reward_loop_workers_share_groups_through_the_service(service: Service) -> None:
    from grmjudge.integrations.verl import VerlServiceReward

    reward = VerlServiceReward(service.root, api_key=KEY, group_size=2, normalisation="rank")
    info = {"question": [{"role": "user", "content": "Say hi"}], "index": 17}

    def worker(text: str) -> float:  # each Reward Loop worker awaits on its own event loop
        return anyio.run(lambda: reward.compute_score("chat", text, None, info, reward_router_address="ignored:1"))

    with ThreadPoolExecutor(2) as pool:
        rewards = list(pool.map(worker, ["hi", "hello!"]))
    assert rewards == [0.0, 1.0]
    assert KEY not in repr(reward)
    router = VerlServiceReward(api_key=KEY, group_size=1, normalisation="rank")  # no url: verl's router address
    address = service.root.removeprefix("http://")
    single = anyio.run(lambda: router.compute_score("chat", "hi", None, info, reward_router_address=address))
    assert single == 0.5  # a group of one ranks in the middle
