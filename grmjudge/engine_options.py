"""The ``--engine`` flags that ``grmjudge score`` and ``grmjudge eval`` share, and joining a Ray cluster.

Like [`judge_options`][grmjudge.judge_options], below the applications, so ``eval`` can take these flags
without importing ``grmjudge.integrations``; Ray itself loads only in ``connect``.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any, Literal

from grmjudge import argtypes as arg_types
from grmjudge._optional import require
from grmjudge.exceptions import ConfigurationError


@dataclass(frozen=True)
class RayOptions:
    """Where and how ``--engine ray`` runs."""

    address: str | None
    output_format: Literal["jsonl", "parquet"]
    actors: int
    max_actors: int
    cpus_per_actor: float
    gpus_per_actor: float
    meta_actors: int
    batch_size: int


def add_engine_options(parser: argparse.ArgumentParser, *, shards: bool = True) -> None:
    """``--engine`` and the options of the Ray engine (``--output-format`` where the command writes shards)."""
    group = parser.add_argument_group("engine")
    group.add_argument(
        "--engine", choices=("local", "ray"), default="local", help="local (default) or ray: a Ray Data job"
    )
    group.add_argument("--ray-address", metavar="ADDR", help="Ray cluster to join (default: start a local one)")
    if shards:
        group.add_argument("--output-format", choices=("jsonl", "parquet"), default="jsonl", help="ray: shards")
    group.add_argument("--actors", type=arg_types.positive_int, default=1, metavar="N", help="ray: GRM actors")
    group.add_argument(
        "--max-actors", type=arg_types.positive_int, metavar="N", help="ray: autoscale GRM actors up to N"
    )
    group.add_argument(
        "--cpus-per-actor", type=arg_types.positive_float, default=1.0, metavar="C", help="ray: CPUs per actor"
    )
    group.add_argument(
        "--gpus-per-actor", type=arg_types.non_negative_float, default=0.0, metavar="G", help="ray: GPUs per actor"
    )
    group.add_argument("--meta-actors", type=arg_types.positive_int, default=1, metavar="N", help="ray: meta actors")
    group.add_argument(
        "--batch-size", type=arg_types.positive_int, default=64, metavar="N", help="ray: items per actor call"
    )


def engine_options(ns: argparse.Namespace) -> RayOptions | None:
    """The Ray engine's options, or None for the local engine (``--ray-address`` alone is a ConfigurationError)."""
    if ns.engine != "ray":
        if ns.ray_address is not None:
            raise ConfigurationError("--ray-address needs --engine ray")
        return None
    return RayOptions(
        address=ns.ray_address,
        output_format=getattr(ns, "output_format", "jsonl"),
        actors=ns.actors,
        max_actors=max(ns.max_actors or ns.actors, ns.actors),
        cpus_per_actor=ns.cpus_per_actor,
        gpus_per_actor=ns.gpus_per_actor,
        meta_actors=ns.meta_actors,
        batch_size=ns.batch_size,
    )


def connect(address: str | None, *, progress: bool) -> Any:
    """Join the cluster at ``address`` (or start a local one) unless already joined; the ``ray`` module.

    A failing job raises the error its code raised (refused credentials), not Ray's wrapper around it.
    """
    ray = require("ray", extra="ray")
    if not ray.is_initialized():
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    context = require("ray.data", extra="ray").DataContext.get_current()
    context.enable_progress_bars = progress
    context.raise_original_map_exception = True
    return ray
