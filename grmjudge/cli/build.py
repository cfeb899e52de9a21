"""Build the judge a ``grmjudge score`` command asks for; only the backend named by the spec gets imported."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
