"""RL rewards on the server: the reward adapters' grouping and normalisation, with groups collected across requests.

Each (mode, normalisation) pair gets one [`GroupRewarder`][grmjudge.integrations.rewarder.GroupRewarder], and each
group size one collector over it (the one verl's adapter uses in process), so completions of a group that arrive
in different requests, from different trainer workers, are judged together in one ``Judge.score`` call. A group
is keyed by its ``group_id`` and its prompt: two prompts never share a call.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Protocol

from grmjudge.integrations.rewarder import (
    GroupCollector,
    GroupRewarder,
    Mode,
    Normalisation,
    Reward,
    RewardItem,
    RewardStats,
)
from grmjudge.judge import Judge
from grmjudge.serve.config import RewardDefaults


class GroupedRewards(Protocol):
    """Where collected groups are judged: this process (`RewardService`) or, on Ray Serve, a shard of them."""

    async def rewards(
        self, items: Sequence[RewardItem], *, mode: Mode, normalisation: Normalisation, group_size: int | None
    ) -> list[Reward]: ...


SPLIT_HINT = "send every completion of a group with the same group_id and group_size, or all of them in one request"


class RewardService:
    """Rewards for the ``/v1/rewards`` and ``/get_reward`` endpoints; one per app, shared by all requests."""

    def __init__(self, judge: Judge, *, k: int, adaptive: bool, defaults: RewardDefaults) -> None:
        self.judge = judge
        self.k = k
        self.adaptive = adaptive
        self.defaults = defaults
        self._rewarders: dict[tuple[Mode, Normalisation], GroupRewarder] = {}
        self._collectors: dict[tuple[Mode, Normalisation, int], GroupCollector] = {}
        self.rewarder(defaults.mode, defaults.normalisation)  # a judge that cannot reward fails at start

    def rewarder(self, mode: Mode, normalisation: Normalisation) -> GroupRewarder:
        """The rewarder of one mode and normalisation (made on first use; the fallback is applied by the caller)."""
        key = (mode, normalisation)
        if key not in self._rewarders:
            self._rewarders[key] = GroupRewarder(
                self.judge,
                group_size=None,
                contiguous_groups=False,
                split_hint=SPLIT_HINT,
                k=self.k,
                meta=self.judge.meta is not None,
                adaptive=self.adaptive,
                mode=mode,
                normalisation=normalisation,
                fallback=None,
                max_concurrent_calls=self.defaults.max_concurrent_calls,
                name="grmjudge-serve",
            )
        return self._rewarders[key]

    async def rewards(
        self, items: Sequence[RewardItem], *, mode: Mode, normalisation: Normalisation, group_size: int | None
    ) -> list[Reward]:
        """One reward per item (``None`` without a verdict); with ``group_size``, groups wait for their members."""
        rewarder = self.rewarder(mode, normalisation)
        if group_size is None:
            return (await rewarder.rewards(items))[0]
        key = (mode, normalisation, group_size)
        if key not in self._collectors:
            self._collectors[key] = GroupCollector(rewarder, group_size, self.defaults.group_wait)
        return await self._collectors[key].rewards(items)

    @property
    def groups_waiting(self) -> int:
        """Groups still collecting completions."""
        return sum(collector.waiting for collector in self._collectors.values())

    def stats(self) -> RewardStats:
        """Counts over every reward call so far."""
        total = RewardStats()
        for rewarder in self._rewarders.values():
            total.add(rewarder.stats)
        return total


def group_key(group_id: str | None, request_id: str, prompt: Hashable) -> Hashable:
    """A group's key: its id and prompt, or the request itself when the request carries the whole group."""
    return ("group", group_id, prompt) if group_id is not None else ("request", request_id)
