"""The service on a local Ray Serve cluster (CPU): two ingress replicas, groups across them, a replica killed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from grmjudge.backends.http import RetryPolicy
from grmjudge.client import RemoteJudge
from grmjudge.judge_options import JudgeOptions
from grmjudge.results import BatchResult
from grmjudge.serve.config import RewardDefaults, ServiceConfig
from grmjudge.serve.ray_app import JudgeRecipe, application, shard_of
from tests.servers import LocalServer, free_port

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")
serve = pytest.importorskip("ray.serve")


@pytest.fixture(scope="module")
def cluster(grm: LocalServer) -> Iterator[str]:
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        options = JudgeOptions(
            judge="openai:fake-grm", base_urls=(grm.base_url,), meta=None, meta_base_url=None, k_meta=None,
            temperature=None, max_tokens=None, seed=None, rpm=None, tpm=None, max_retries_per_item=None,
        )  # fmt: skip
        config = ServiceConfig(k=2, rewards=RewardDefaults(group_wait=30))
        app = application(JudgeRecipe(options), config, replicas=2, shards=2, num_cpus=0.5)
        serve.run(app, name="grmjudge", route_prefix="/")
        yield f"http://127.0.0.1:{port}"
    finally:
        serve.shutdown()
        ray.shutdown()


def _replicas(deployment: str) -> list[str]:
    return [
        actor["name"]
        for actor in ray.util.list_named_actors(all_namespaces=True)
        if actor["name"].startswith(f"SERVE_REPLICA::grmjudge#{deployment}#")
    ]


def test_groups_are_judged_together_whichever_replica_gets_each_completion(cluster: str) -> None:
    assert len(_replicas("Ingress")) == 2
    assert {shard_of(("group", f"g{i}", "x"), 2) for i in range(16)} == {0, 1}  # keys spread over the shards

    def post(group: int, text: str) -> float:
        body = {"prompt": f"Say hi {group}", "completions": [text], "group_id": f"g{group}", "group_size": 2}
        reply = httpx.post(cluster + "/v1/rewards", json={**body, "normalisation": "rank"}, timeout=60)
        assert "rewards" in reply.json(), reply.text
        return reply.json()["rewards"][0]

    with ThreadPoolExecutor(8) as pool:
        futures = {(g, t): pool.submit(post, g, t) for g in range(4) for t in ("hi", "hello!")}
        rewards = {key: future.result() for key, future in futures.items()}
    # judged apart, each completion would rank 0.5; judged together the longer one wins every group
    assert all(rewards[(g, "hi")] == 0.0 and rewards[(g, "hello!")] == 1.0 for g in range(4))


def test_a_replica_killed_under_load_loses_no_request(cluster: str) -> None:
    items = [{"query": f"question {i}", "responses": ["ab", "abcdefg"]} for i in range(400)]
    judge = RemoteJudge(cluster, timeout=10, retry=RetryPolicy(max_retries=6, initial_backoff=0.2))
    results: list[BatchResult] = []
    worker = threading.Thread(target=lambda: results.extend(judge.score_many_sync(items, k=2, concurrency=16)))
    worker.start()
    time.sleep(1.0)
    victim = _replicas("Ingress")[0]
    assert worker.is_alive()  # the load is in flight when the replica dies
    ray.kill(ray.get_actor(victim, namespace="serve"), no_restart=True)
    worker.join(timeout=120)
    judge.close()
    assert len(results) == 400
    assert all(r.error is None and r.result is not None and r.result.best == 1 for r in results)
    deadline = time.monotonic() + 60
    while victim in _replicas("Ingress") or len(_replicas("Ingress")) < 2:  # Serve replaces the dead replica
        assert time.monotonic() < deadline, "Serve did not replace the killed replica"
        time.sleep(0.5)
