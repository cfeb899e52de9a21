"""The judge a command line asks for: its options, parsed and typed, and the judge built from them.

``grmjudge score`` and ``grmjudge serve`` share these; only the backend named by the spec gets imported.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grmjudge import argtypes as arg_types
from grmjudge.backends import backend_from_spec
from grmjudge.backends.base import Backend
from grmjudge.backends.limits import RateLimits
from grmjudge.meta import MetaScorer, meta_from_spec
from grmjudge.settings import JudgeSettings


@dataclass(frozen=True)
class JudgeOptions:
    """The command's backend, meta and sampling options, as parsed."""

    judge: str
    base_urls: Sequence[str]
    meta: str | None
    meta_base_url: str | None
    k_meta: int | None
    temperature: float | None
    max_tokens: int | None
    seed: int | None
    rpm: float | None
    tpm: float | None
    max_retries_per_item: int | None


def build_backend(options: JudgeOptions) -> Backend:
    """The backend ``--judge`` names; ``--base-url`` (one or several replicas) and rate limits go to it."""
    backend_options: dict[str, Any] = {}
    if options.base_urls:
        urls = options.base_urls
        backend_options["base_url"] = urls[0] if len(urls) == 1 else list(urls)
    if options.rpm is not None or options.tpm is not None:
        backend_options["rate_limits"] = RateLimits(requests_per_minute=options.rpm, tokens_per_minute=options.tpm)
    return backend_from_spec(options.judge, **backend_options)


def build_meta(options: JudgeOptions) -> MetaScorer | None:
    """The meta RM ``--meta`` names, if any (see [`meta_from_spec`][grmjudge.meta.meta_from_spec])."""
    return meta_from_spec(options.meta, options.meta_base_url) if options.meta is not None else None


def build_settings(options: JudgeOptions) -> JudgeSettings:
    """The judge settings the sampling flags ask for; flags left out keep the library's defaults."""
    given: dict[str, object] = {
        "temperature": options.temperature,
        "max_tokens": options.max_tokens,
        "seed": options.seed,
        "k_meta": options.k_meta,
        "retry_budget_per_item": options.max_retries_per_item,
    }
    return JudgeSettings.model_validate({name: value for name, value in given.items() if value is not None})


def add_judge_options(parser: argparse.ArgumentParser) -> None:
    """The options that name and tune the judge, as ``grmjudge score`` and ``grmjudge serve`` take them."""
    group = parser.add_argument_group("judge")
    group.add_argument(
        "--judge", required=True, metavar="SPEC", help="backend spec, e.g. openai:MODEL, anthropic:MODEL"
    )
    group.add_argument(
        "--base-url",
        action="append",
        default=[],
        type=arg_types.http_url,
        metavar="URL",
        help="server URL (repeat for replicas)",
    )
    group.add_argument("--meta", metavar="SPEC", help="meta RM: http:MODEL (with --meta-base-url) or hf:PATH")
    group.add_argument("--meta-base-url", type=arg_types.http_url, metavar="URL", help="server of an http: meta RM")
    group.add_argument("--k-meta", type=arg_types.positive_int, metavar="N", help="samples kept by the meta RM")
    group.add_argument("--k", type=arg_types.positive_int, default=8, metavar="N", help="samples per item (default 8)")
    group.add_argument(
        "--adaptive",
        action="store_true",
        help="draw samples in rounds and stop once the best response is settled; --k is then the maximum",
    )
    group.add_argument("--temperature", type=arg_types.non_negative_float, metavar="T", help="default 0.5 (0 if k=1)")
    group.add_argument("--max-tokens", type=arg_types.positive_int, metavar="N", help="per judgement (default 2048)")
    group.add_argument("--seed", type=int, metavar="S", help="seed of orders and samples (default 0)")
    group.add_argument("--rpm", type=arg_types.positive_float, metavar="N", help="requests per minute cap")
    group.add_argument("--tpm", type=arg_types.positive_float, metavar="N", help="tokens per minute cap")
    group.add_argument(
        "--max-retries-per-item", type=arg_types.non_negative_int, metavar="N", help="transport retries per item"
    )


def judge_options(ns: argparse.Namespace) -> JudgeOptions:
    """The judge options of ``grmjudge score`` from the parsed command line."""
    return JudgeOptions(
        judge=ns.judge,
        base_urls=tuple(ns.base_url),
        meta=ns.meta,
        meta_base_url=ns.meta_base_url,
        k_meta=ns.k_meta,
        temperature=ns.temperature,
        max_tokens=ns.max_tokens,
        seed=ns.seed,
        rpm=ns.rpm,
        tpm=ns.tpm,
        max_retries_per_item=ns.max_retries_per_item,
    )
