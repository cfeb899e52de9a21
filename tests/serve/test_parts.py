"""The service's parts without a process: keys, the metrics text, error mapping, and the app in memory."""

from __future__ import annotations

import base64

import httpx
import pytest

from grmjudge import Judge
from grmjudge.backends import FunctionBackend
from grmjudge.integrations.rewarder import RewardStats
from grmjudge.results import NoVerdict, Provenance, Sample, SampleError, ScoreResult
from grmjudge.serve.app import create_app
from grmjudge.serve.auth import is_loopback, key_accepted, keys_from, presented_key
from grmjudge.serve.config import ServiceConfig, ServiceLimits
from grmjudge.serve.errors import backend_failure
from grmjudge.serve.metrics import Metrics
from grmjudge.types import Usage

KEY = "k" * 20


def test_keys_come_from_options_and_the_environment_and_must_be_long() -> None:
    assert keys_from(["a" * 16], {"GRMJUDGE_API_KEY": f"{'b' * 16}, {'c' * 16},"}) == ("a" * 16, "b" * 16, "c" * 16)
    with pytest.raises(ValueError, match="shorter than 16"):
        keys_from(["short"], {})


@pytest.mark.parametrize(
    ("header", "key"),
    [
        (f"Bearer {KEY}", KEY),
        (f"bearer   {KEY} ", KEY),
        ("Basic " + base64.b64encode(f"user:{KEY}".encode()).decode(), KEY),
        ("Basic not-base64!", None),
        ("Token abc", None),
        (None, None),
        ("Bearer", None),
    ],
)
def test_presented_key(header: str | None, key: str | None) -> None:
    assert presented_key(header) == key


def test_key_comparison_and_loopback() -> None:
    assert key_accepted(KEY, ["x" * 20, KEY])
    assert not key_accepted(KEY[:-1], [KEY]) and not key_accepted(None, [KEY])
    assert all(is_loopback(h) for h in ("127.0.0.1", "::1", "[::1]", "localhost", "127.8.0.1"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "10.0.0.2", "::", "grm.example.com"))


def _result(errors: list[SampleError]) -> ScoreResult:
    provenance = Provenance(
        grmjudge_version="0", backend="openai", model="m", template_id="t", template_hash="h", k=len(errors),
        meta=False, k_meta=None, shuffle="balanced", seed=0, item_id="i", temperature=0.5, top_p=None,
        max_tokens=10, max_resample_rounds=1,
    )  # fmt: skip
    samples = [Sample(index=i, permutation=(0, 1), error=e) for i, e in enumerate(errors)]
    failures = {e.reason: sum(1 for x in errors if x.reason == e.reason) for e in errors}
    return ScoreResult(
        scores=None, best=None, n_valid=0, n_kept=0, spread=None, no_verdict=NoVerdict(failures=failures),
        samples=samples, usage=Usage(), provenance=provenance,
    )  # fmt: skip


def test_backend_failures_map_to_502_and_503_but_parse_failures_stay_results() -> None:
    down = SampleError(kind="backend", reason="ServerError", message="503 from the GRM")
    refused = SampleError(kind="backend", reason="AuthenticationError", message="401")
    unparsed = SampleError(kind="parse", reason="no_boxed", message="no box")
    failure = backend_failure(_result([down, down, refused]))
    assert failure is not None and (failure.status, failure.type) == (503, "ServerError")
    failure = backend_failure(_result([refused]))
    assert failure is not None and failure.status == 502
    assert backend_failure(_result([down, unparsed])) is None


def test_metrics_text_is_prometheus_exposition() -> None:
    metrics = Metrics()
    metrics.observe_request("/v1/score", 200, 0.02)
    metrics.observe_request("/v1/score", 200, 7.0)
    metrics.observe_result(_result([SampleError(kind="backend", reason="ServerError", message="x")] * 2))
    stats = RewardStats(samples=4, no_verdict_calls=1, fallback_rewards=2)
    stats.failures.update({"no_boxed": 1, "RateLimitError": 3})
    text = metrics.render(queue_depth=3, groups_waiting=1, rewards=stats)
    lines = text.splitlines()
    assert 'grmjudge_request_duration_seconds_bucket{route="/v1/score",status="200",le="0.025"} 1' in lines
    assert 'grmjudge_request_duration_seconds_bucket{route="/v1/score",status="200",le="+Inf"} 2' in lines
    assert 'grmjudge_request_duration_seconds_count{route="/v1/score",status="200"} 2' in lines
    assert "grmjudge_samples_total 6" in lines
    assert 'grmjudge_backend_errors_total{type="RateLimitError"} 3' in lines
    assert 'grmjudge_backend_errors_total{type="ServerError"} 2' in lines
    assert not any("no_boxed" in line and "backend" in line for line in lines)
    assert 'grmjudge_no_verdicts_total{reason="ServerError"} 1' in lines
    assert 'grmjudge_no_verdicts_total{reason="reward_call"} 1' in lines
    assert "grmjudge_queue_depth 3" in lines and "grmjudge_groups_waiting 1" in lines
    assert all(line.startswith("#") or len(line.rsplit(" ", 1)) == 2 for line in lines)


def _judge() -> Judge:
    return Judge(FunctionBackend(lambda request: ["Scores: \\boxed{3, 8}"] * request.n))


@pytest.mark.anyio
async def test_the_app_in_memory_scores_and_rewards() -> None:
    app = create_app(_judge(), ServiceConfig(k=2, limits=ServiceLimits(max_responses=2)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        result = (await client.post("/v1/score", json={"query": "q", "responses": ["a", "b"]})).json()
        assert ScoreResult.model_validate(result).provenance.k == 2
        rewards = await client.post(
            "/v1/rewards", json={"prompt": "q", "completions": ["a", "b"], "normalisation": "raw"}
        )
        assert rewards.json()["no_verdict"] == [False, False]
        too_many = await client.post("/v1/score", json={"query": "q", "responses": ["a", "b", "c"]})
        assert too_many.status_code == 422 and too_many.json()["error"]["field"] == "responses"
        unknown = await client.get("/nowhere")
        assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "HTTPError"
        wrong_method = await client.get("/v1/score")
        assert wrong_method.status_code == 405
        preflight = await client.options(
            "/v1/score", headers={"origin": "https://evil.example", "access-control-request-method": "POST"}
        )
        assert preflight.status_code == 405  # CORS is off: no preflight is granted
        assert not any(name.startswith("access-control-") for name in preflight.headers)
        metrics = (await client.get("/metrics")).text
        assert 'grmjudge_requests_total{route="other",status="404"} 1' in metrics


@pytest.mark.anyio
async def test_a_batch_of_only_refused_items_answers_each_of_them() -> None:
    app = create_app(_judge(), ServiceConfig(k=1))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://service") as client:
        reply = await client.post("/v1/score/batch", json={"items": [{"query": "q"}, {"responses": ["a"]}]})
    lines = [line for line in reply.text.splitlines() if line]
    assert reply.status_code == 200 and len(lines) == 2
    assert all('"status": 422' in line for line in lines)


def test_the_serve_command_takes_the_score_judge_options_and_ray_options() -> None:
    from grmjudge.cli import build_parser
    from grmjudge.serve.command import judge_options

    ns = build_parser().parse_args(
        ["serve", "--judge", "openai:m", "--base-url", "http://localhost:8000/v1", "--seed", "3", "--ray"]
        + ["--replicas", "3", "--max-replicas", "6", "--group-shards", "2", "--group-size", "8"]
    )
    options = judge_options(ns)
    assert (options.judge, options.base_urls, options.seed) == ("openai:m", ("http://localhost:8000/v1",), 3)
    assert (ns.ray, ns.replicas, ns.max_replicas, ns.group_shards, ns.group_size) == (True, 3, 6, 2, 8)
    assert (ns.host, ns.port, ns.k) == ("127.0.0.1", 8080, 8)
