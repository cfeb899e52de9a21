"""``grmjudge serve --ray``: the same app on Ray Serve replicas, with listwise groups routed to one shard each.

Every ``Ingress`` replica (autoscaled between ``replicas`` and ``max_replicas``) builds its own judge over the
backend (HTTP replicas of a GRM server, or an in-process engine on the replica's GPU) and answers every route.
Groups collected across requests need one place that sees all of a group's completions, so they are **routed
by key**: a completion of group ``(group_id, prompt)`` goes to the ``GroupShard`` deployment its key hashes
to (one replica each, ``shards`` of them), which collects and judges the group as a single service would.
Routing rather than shared state keeps a group's judgement in one process, with no store to consult per
completion; a shard that dies is restarted by Serve, and the completions it held are sent again (their group
is then judged with whoever re-sent), so no accepted request goes unanswered.
"""

from __future__ import annotations

import hashlib
import logging
import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio

from grmjudge._optional import require
from grmjudge._tasks import task_group
from grmjudge.integrations.rewarder import Mode, Normalisation, Reward, RewardItem
from grmjudge.judge import Judge
from grmjudge.judge_options import JudgeOptions, build_backend, build_meta, build_settings
from grmjudge.serve.config import ServiceConfig
from grmjudge.serve.rewards import RewardService

logger = logging.getLogger("grmjudge.serve")

SHARD_ATTEMPTS = 3
"""Tries of a shard call: the first, and two more while Serve restarts a shard that died."""


@dataclass(frozen=True)
class JudgeRecipe:
    """What each replica builds its judge from (a judge itself does not travel between processes)."""

    options: JudgeOptions
    max_concurrent_requests: int = 64
    cache: str | None = None

    def build(self) -> Judge:
        """A judge on this replica."""
        from grmjudge.cache import SQLiteCache

        return Judge(
            build_backend(self.options),
            meta=build_meta(self.options),
            settings=build_settings(self.options),
            max_concurrent_requests=self.max_concurrent_requests,
            cache=SQLiteCache(self.cache) if self.cache is not None else None,
        )


def shard_of(key: Hashable, shards: int) -> int:
    """The shard of a group key, the same in every process (``hash()`` of a string is not)."""
    return int(hashlib.sha256(repr(key).encode()).hexdigest()[:12], 16) % shards


class GroupShard:
    """A deployment of one replica: collects and judges the groups whose keys hash to it."""

    def __init__(self, recipe: JudgeRecipe, config: ServiceConfig) -> None:
        judge = recipe.build()
        self.service = RewardService(judge, k=config.k, adaptive=config.adaptive, defaults=config.rewards)

    async def rewards(
        self, items: list[RewardItem], mode: Mode, normalisation: Normalisation, group_size: int | None
    ) -> list[Reward]:
        return await self.service.rewards(items, mode=mode, normalisation=normalisation, group_size=group_size)


class ShardedGroups:
    """The ingress side: each item to the shard of its group, results back in order."""

    def __init__(self, shards: Sequence[Any]) -> None:
        self.shards = list(shards)

    async def rewards(
        self, items: Sequence[RewardItem], *, mode: Mode, normalisation: Normalisation, group_size: int | None
    ) -> list[Reward]:
        by_shard: dict[int, list[int]] = {}
        for position, item in enumerate(items):
            by_shard.setdefault(shard_of(item.group, len(self.shards)), []).append(position)
        rewards: list[Reward] = [None] * len(items)

        async def ask(shard: int, positions: list[int]) -> None:
            part = [items[p] for p in positions]
            answer: list[Reward] = []
            for attempt in range(SHARD_ATTEMPTS):
                try:
                    answer = await self.shards[shard].rewards.remote(part, mode, normalisation, group_size)
                    break
                except Exception as exc:  # the shard's replica died: Serve starts another
                    if attempt == SHARD_ATTEMPTS - 1:
                        raise
                    logger.warning("group shard %d failed (%s); sending again", shard, type(exc).__name__)
                    await anyio.sleep(1.0 + attempt)
            for position, reward in zip(positions, answer, strict=True):
                rewards[position] = reward

        async with task_group() as tg:
            for shard, positions in by_shard.items():
                tg.start_soon(ask, shard, positions)
        return rewards


class Ingress:
    """A replica of the service: the app of `grmjudge.serve.app`, with groups sent to their shards."""

    def __init__(self, recipe: JudgeRecipe, config: ServiceConfig, *shards: Any) -> None:
        from grmjudge.serve.logs import log_to

        log_to(sys.stderr)
        self.judge = recipe.build()
        self.config = config
        self.shards = shards

    def __serve_build_asgi_app__(self) -> Any:
        from grmjudge.serve.app import create_app

        return create_app(self.judge, self.config, close_judge=True, groups=ShardedGroups(self.shards))


def application(
    recipe: JudgeRecipe,
    config: ServiceConfig,
    *,
    replicas: int = 2,
    max_replicas: int | None = None,
    shards: int = 1,
    num_cpus: float = 1.0,
) -> Any:
    """The Ray Serve application: ``Ingress`` (autoscaled when ``max_replicas`` > ``replicas``) and the shards."""
    serve = require("ray.serve", extra="ray")
    actor = {"num_cpus": num_cpus}
    shard_apps = [
        serve.deployment(GroupShard, name=f"GroupShard{i}", num_replicas=1, ray_actor_options=actor).bind(
            recipe, config
        )
        for i in range(shards)
    ]
    scaling: dict[str, Any] = {"num_replicas": replicas}
    if max_replicas is not None and max_replicas > replicas:
        scaling = {"autoscaling_config": {"min_replicas": replicas, "max_replicas": max_replicas}}
    ingress = serve.deployment(
        serve.ingress()(Ingress),
        name="Ingress",
        ray_actor_options=actor,
        max_ongoing_requests=config.limits.max_queue,
        **scaling,
    )
    return ingress.bind(recipe, config, *shard_apps)
