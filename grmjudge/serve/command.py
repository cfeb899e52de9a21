"""``grmjudge serve``: build the judge ``grmjudge score`` would build, and serve it with uvicorn until SIGTERM.

On SIGTERM or Ctrl-C it stops accepting connections, answers every request it accepted, closes the judge, and
then ends by that signal (as uvicorn does). Exit status 2: bad arguments (a non-loopback bind without an API key
among them), before anything listens.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TextIO, get_args

from grmjudge import argtypes as arg_types
from grmjudge.integrations.rewarder import Mode, Normalisation
from grmjudge.judge_options import add_judge_options, judge_options
from grmjudge.serve.config import RewardDefaults, ServiceConfig, ServiceLimits
from grmjudge.serve.logs import log_to

EXIT_OK, EXIT_USAGE = 0, 2
_LIMITS = ServiceLimits()
_REWARDS = RewardDefaults()


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:  # pyright: ignore[reportPrivateUsage]
    """Register ``serve`` and its options."""
    parser = commands.add_parser(
        "serve",
        help="serve a judge over HTTP (extra 'serve')",
        description="Serve one judge to RL trainers and applications: /v1/score, /v1/score/batch, /v1/rewards, "
        "/get_reward (OpenRLHF), /healthz, /readyz, /metrics, /openapi.json.",
        epilog="Keys: --api-key or GRMJUDGE_API_KEY (comma-separated); backend keys from OPENAI_API_KEY / "
        "ANTHROPIC_API_KEY. Guide: docs/serving.md.",
    )
    add_judge_options(parser)
    net = parser.add_argument_group("service")
    net.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a key)")
    net.add_argument("--port", type=arg_types.positive_int, default=8080, metavar="N", help="default 8080")
    net.add_argument(
        "--api-key", action="append", default=[], metavar="KEY", help="accepted bearer token (repeat to rotate)"
    )
    net.add_argument("--cache", type=Path, metavar="PATH", help="SQLite sample cache shared by all requests")
    net.add_argument(
        "--max-concurrent-requests", type=arg_types.positive_int, default=64, metavar="N", help="backend requests"
    )
    limits = parser.add_argument_group("limits")
    for flag, kind, default, text in (
        ("--max-body-bytes", arg_types.positive_int, _LIMITS.max_body_bytes, "request body size"),
        ("--max-responses", arg_types.positive_int, _LIMITS.max_responses, "responses per item or reward request"),
        ("--max-k", arg_types.positive_int, _LIMITS.max_k, "samples per item a request may ask"),
        ("--max-text-chars", arg_types.positive_int, _LIMITS.max_text_chars, "characters per text"),
        ("--max-batch-items", arg_types.positive_int, _LIMITS.max_batch_items, "items per batch request"),
        ("--max-queue", arg_types.positive_int, _LIMITS.max_queue, "judging requests admitted at once (then 429)"),
        ("--deadline", arg_types.positive_float, _LIMITS.deadline, "seconds per request (then 504)"),
        ("--batch-concurrency", arg_types.positive_int, _LIMITS.batch_concurrency, "items of a batch at once"),
    ):
        limits.add_argument(flag, type=kind, default=default, metavar="N", help=f"{text} (default {default:,})")
    rewards = parser.add_argument_group("rewards (/v1/rewards, /get_reward)")
    rewards.add_argument("--reward-mode", choices=get_args(Mode), default=_REWARDS.mode, help="default listwise")
    rewards.add_argument(
        "--normalisation", choices=get_args(Normalisation), default=_REWARDS.normalisation, help="default mean"
    )
    rewards.add_argument(
        "--fallback", type=float, metavar="R", help="reward without a verdict (default null; 0.0 for /get_reward)"
    )
    rewards.add_argument(
        "--group-size", type=arg_types.positive_int, metavar="N", help="completions per group (rollout n)"
    )
    rewards.add_argument(
        "--group-wait",
        type=arg_types.non_negative_float,
        default=_REWARDS.group_wait,
        metavar="S",
        help=f"seconds a group waits for its missing completions (default {_REWARDS.group_wait:g})",
    )
    ray = parser.add_argument_group("Ray Serve (extra 'ray')")
    ray.add_argument("--ray", action="store_true", help="serve on Ray Serve replicas (RAY_ADDRESS picks the cluster)")
    ray.add_argument("--replicas", type=arg_types.positive_int, default=2, metavar="N", help="service replicas")
    ray.add_argument("--max-replicas", type=arg_types.positive_int, metavar="N", help="autoscale up to N replicas")
    ray.add_argument(
        "--group-shards", type=arg_types.positive_int, default=1, metavar="N", help="replicas collecting groups"
    )
    ray.add_argument("--replica-cpus", type=arg_types.positive_float, default=1.0, metavar="N", help="CPUs each")
    parser.set_defaults(handler=_handle)


def _handle(ns: argparse.Namespace) -> int:
    return run(ns, sys.stderr)


def run(ns: argparse.Namespace, stderr: TextIO) -> int:
    """Check the options, build the judge, serve until a signal; returns the exit status."""
    from grmjudge._optional import require
    from grmjudge._redact import Redactor
    from grmjudge.exceptions import GRMJudgeError
    from grmjudge.serve.auth import is_loopback, keys_from

    redact = Redactor.from_environment()
    try:
        uvicorn = require("uvicorn", extra="serve")
        require("starlette", extra="serve")
        keys = keys_from(ns.api_key)
        if not keys and not is_loopback(ns.host):
            raise ValueError(
                f"binding {ns.host} opens the service to the network: give --api-key or GRMJUDGE_API_KEY, "
                "or bind 127.0.0.1"
            )
        if ns.k_meta is not None and ns.meta is None:
            raise ValueError("--k-meta needs --meta")
        config = _config(ns, keys)
        if ns.ray:
            return _serve_on_ray(ns, config, stderr)
        app = _app(ns, config)
    except (GRMJudgeError, ValueError) as exc:
        stderr.write(f"grmjudge serve: error: {redact(str(exc))}\n")
        return EXIT_USAGE
    log_to(stderr)
    stderr.write(
        f"grmjudge serve: {ns.judge} on http://{ns.host}:{ns.port} (k={config.k}, "
        f"{len(keys) or 'no'} API key(s)); SIGTERM drains and stops\n"
    )
    stderr.flush()
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=ns.host,
            port=ns.port,
            log_level="warning",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=int(config.limits.deadline) + 1,
        )
    )
    server.run()
    return EXIT_OK


def _config(ns: argparse.Namespace, keys: tuple[str, ...]) -> ServiceConfig:
    limits = ServiceLimits(
        max_body_bytes=ns.max_body_bytes,
        max_responses=ns.max_responses,
        max_k=ns.max_k,
        max_text_chars=ns.max_text_chars,
        max_batch_items=ns.max_batch_items,
        max_queue=ns.max_queue,
        deadline=ns.deadline,
        batch_concurrency=ns.batch_concurrency,
    )
    rewards = RewardDefaults(
        mode=ns.reward_mode,
        normalisation=ns.normalisation,
        fallback=ns.fallback,
        group_size=ns.group_size,
        group_wait=ns.group_wait,
    )
    return ServiceConfig(k=ns.k, adaptive=ns.adaptive, api_keys=keys, limits=limits, rewards=rewards)


def _app(ns: argparse.Namespace, config: ServiceConfig) -> object:
    from grmjudge.cache import SQLiteCache
    from grmjudge.judge import Judge
    from grmjudge.judge_options import build_backend, build_meta, build_settings
    from grmjudge.serve.app import create_app

    options = judge_options(ns)
    judge = Judge(
        build_backend(options),
        meta=build_meta(options),
        settings=build_settings(options),
        max_concurrent_requests=ns.max_concurrent_requests,
        cache=SQLiteCache(ns.cache) if ns.cache is not None else None,
    )
    return create_app(judge, config, close_judge=True)


def _serve_on_ray(ns: argparse.Namespace, config: ServiceConfig, stderr: TextIO) -> int:
    """Run the app on Ray Serve until SIGTERM or Ctrl-C, then shut Serve down (each replica drains first)."""
    import signal
    import threading

    from grmjudge._optional import require
    from grmjudge.serve.ray_app import JudgeRecipe, application

    ray = require("ray", extra="ray")
    serve = require("ray.serve", extra="ray")
    recipe = JudgeRecipe(judge_options(ns), ns.max_concurrent_requests, str(ns.cache) if ns.cache else None)
    ray.init()
    serve.start(http_options={"host": ns.host, "port": ns.port})
    app = application(
        recipe,
        config,
        replicas=ns.replicas,
        max_replicas=ns.max_replicas,
        shards=ns.group_shards,
        num_cpus=ns.replica_cpus,
    )
    serve.run(app, name="grmjudge", route_prefix="/")
    stderr.write(f"grmjudge serve: {ns.judge} on Ray Serve at http://{ns.host}:{ns.port}; SIGTERM shuts it down\n")
    stderr.flush()
    received: list[int] = []
    stop = threading.Event()

    def on_signal(number: int, _: object) -> None:
        received.append(number)
        stop.set()

    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, on_signal)
    stop.wait()
    serve.shutdown()
    ray.shutdown()
    return 128 + received[0]
