"""A GRM as a verl custom reward function; verl itself is never imported.

verl loads a function from a file (``reward.custom_reward_function.path`` / ``.name`` in verl 0.9 and 0.10,
``custom_reward_function.path`` / ``.name`` up to 0.8; the name defaults to ``compute_score``) and calls it
either per completion, ``compute_score(data_source, solution_str, ground_truth, extra_info, **kwargs) -> float``
(``naive``, ``dapo`` and the other per-completion reward managers), or per batch, ``compute_score(data_sources,
solution_strs, ground_truths, extra_infos, **kwargs) -> list[float]`` (the ``batch`` reward manager).

verl 0.9+ scores in its Reward Loop: ``reward.num_workers`` Ray actors (8 by default), each running every call
as an asyncio task on its one event loop. Each completion is scored on its own, whatever the reward manager: a
``RewardLoopWorker`` scores a sample per task, and the ``batch`` manager hands over lists of one. Samples reach
the workers at random as their rollouts finish (``random.choice`` of a worker per sample, the default), or in
contiguous chunks of the length-balanced batch (a reward model on the training GPUs). The Reward Loop awaits
``async def`` functions and runs blocking ones in executor threads. Up to 0.8 the trainer calls the function
blocking: once per completion, or once per batch with the ``batch`` manager, after batch balancing has
reordered the batch.

``extra_info`` is the dataset row's ``extra_info``, to which verl adds ``rollout_reward_scores`` (and, in the
Reward Loop, ``num_turns`` and any tool fields); verl's own group id (``uid``, which its GRPO advantages use) is
not passed. Nor is the prompt: the data must carry it (``extra_info["question"]`` by default, a string or a list
of chat messages). Extra keywords (``reward_router_address``, ``reward_model_tokenizer``, the config's
``reward_kwargs``) are accepted and ignored.

[`VerlGRMReward`][grmjudge.integrations.verl.VerlGRMReward] groups completions by the prompt and the dataset row
(``extra_info["index"]``, which verl's data preparation writes and its dataset reads as the row's index), and
judges each group listwise, or each completion against ``ground_truth`` as the reference answer. With
``group_size`` set, completions of one row arriving in concurrent calls of one process (from any event loop or
thread) are collected until the group is complete or ``max_wait`` seconds have passed, then judged together; a
group fills only if all its completions reach the same process (``reward.num_workers=1``).

[`VerlServiceReward`][grmjudge.integrations.verl.VerlServiceReward] asks a ``grmjudge serve`` service instead:
each completion is posted to its ``/v1/rewards`` with the group's id and size, and the service collects the
group from every worker, so the Reward Loop keeps its many workers.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Unpack

from grmjudge.backends.http import HTTPClient
from grmjudge.backends.urls import check_base_urls
from grmjudge.exceptions import ConfigurationError, InvalidInputError
from grmjudge.integrations.rewarder import (
    GroupCollector,
    GroupRewarder,
    Mode,
    Normalisation,
    Reward,
    RewardAdapter,
    RewardItem,
    RewardOptions,
    batch_list,
    query_of,
    reference_of,
)
from grmjudge.judge import Judge

__all__ = ["VerlGRMReward", "VerlServiceReward"]


class VerlGRMReward(RewardAdapter):
    """A GRM-backed verl reward. Expose its methods under the names verl's config points at.

    Args:
        judge: The GRM judge; its settings (template, temperature, ``max_tokens``, seed) apply to every call.
        query_key: The ``extra_info`` key holding the prompt the policy answered.
        row_key: The ``extra_info`` key identifying the dataset row (``"index"`` in verl's data preparation),
            so two rows with the same prompt stay two groups; a row without it is grouped by its prompt alone.
            ``None`` groups by the prompt alone.
        group_size: The rollout ``n`` (``actor_rollout_ref.rollout.n``). Set, it caps groups at that size and
            lets single-completion calls be collected into groups; ``None`` judges what one call brings. In
            verl's Reward Loop every call brings one completion, and a group fills only if all of a prompt's
            completions reach one process: ``reward.num_workers=1``.
        max_wait: Seconds a collected group waits for its missing completions before it is judged as it is.
            Count from a group's first finished rollout to its last.
        **options: The shared [`RewardOptions`][grmjudge.integrations.RewardOptions] (``k``, ``meta``,
            ``adaptive``, ``mode``, ``normalisation``, ``fallback``, ``max_concurrent_calls``, ``name``);
            ``mode="reference"`` judges each completion against its ``ground_truth``. Here ``fallback``
            defaults to ``0.0`` and must be a number (verl needs one): in listwise mode the whole group gets
            it, so GRPO gives the group no advantage whatever the value; in reference mode choose it on the
            normalisation's scale.
    """

    def __init__(
        self,
        judge: Judge,
        *,
        query_key: str = "question",
        row_key: str | None = "index",
        group_size: int | None = None,
        max_wait: float = 10.0,
        **options: Unpack[RewardOptions],
    ) -> None:
        if options.setdefault("fallback", 0.0) is None:
            raise ConfigurationError("verl needs a number for every completion: give fallback a float")
        if not max_wait >= 0:
            raise ConfigurationError(f"max_wait must be a number of seconds >= 0, got {max_wait!r}")
        self._rewarder = GroupRewarder(
            judge,
            group_size=group_size,
            contiguous_groups=False,
            split_hint=(
                "set group_size to the rollout n, and reward.num_workers=1 (verl 0.9+) so that all of a prompt's "
                "completions reach one process, with max_wait covering a group's spread of rollout times"
            ),
            **options,
        )
        self.query_key = query_key
        self.row_key = row_key
        self._collector = None if group_size is None else GroupCollector(self._rewarder, group_size, max_wait)

    async def compute_score(
        self,
        data_source: Any,
        solution_str: str,
        ground_truth: Any,
        extra_info: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> float:
        """The per-completion reward for verl (``async``). Listwise mode needs ``group_size`` to collect groups."""
        self._check_single_listwise(blocking=False)
        item = self._item(solution_str, ground_truth, extra_info, "")
        return (await self._rewards([item]))[0]

    async def compute_score_batch(
        self,
        data_sources: Sequence[Any],
        solution_strs: Sequence[str],
        ground_truths: Sequence[Any],
        extra_infos: Sequence[Mapping[str, Any] | None],
        **kwargs: Any,
    ) -> list[float]:
        """The batched reward for verl (``reward_manager.name=batch``, ``async``): one reward per completion."""
        return await self._rewards(self._items(solution_strs, ground_truths, extra_infos))

    def compute_score_sync(
        self,
        data_source: Any,
        solution_str: str,
        ground_truth: Any,
        extra_info: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> float:
        """Blocking `compute_score`, for verl up to 0.8; reference mode only (one blocking call sees one completion)."""
        self._check_single_listwise(blocking=True)
        item = self._item(solution_str, ground_truth, extra_info, "")
        return _numbers(self._rewarder.rewards_blocking([item])[0])[0]

    def compute_score_batch_sync(
        self,
        data_sources: Sequence[Any],
        solution_strs: Sequence[str],
        ground_truths: Sequence[Any],
        extra_infos: Sequence[Mapping[str, Any] | None],
        **kwargs: Any,
    ) -> list[float]:
        """Blocking `compute_score_batch`, for verl up to 0.8; groups are formed within each call."""
        items = self._items(solution_strs, ground_truths, extra_infos)
        return _numbers(self._rewarder.rewards_blocking(items)[0])

    async def _rewards(self, items: list[RewardItem]) -> list[float]:
        if self._collector is None:
            return _numbers((await self._rewarder.rewards(items))[0])
        return _numbers(await self._collector.rewards(items))

    def _check_single_listwise(self, *, blocking: bool) -> None:
        if self._rewarder.mode != "listwise":
            return
        if blocking:
            raise ConfigurationError(
                "a blocking per-completion call sees one completion, so it cannot judge a group listwise: use the "
                "async compute_score with group_size, compute_score_batch_sync with the batch reward manager, or "
                "mode='reference'"
            )
        if self._collector is None:
            raise ConfigurationError(
                "compute_score sees one completion per call: set group_size to the rollout n "
                "(actor_rollout_ref.rollout.n) to collect a prompt's completions, use compute_score_batch with the "
                "batch reward manager, or mode='reference'"
            )

    def _items(
        self, solution_strs: Sequence[str], ground_truths: Sequence[Any], extra_infos: Sequence[Any]
    ) -> list[RewardItem]:
        texts = batch_list(solution_strs, "solution_strs")
        truths = batch_list(ground_truths, "ground_truths")
        infos = batch_list(extra_infos, "extra_infos")
        if not len(texts) == len(truths) == len(infos):
            raise InvalidInputError(
                f"got {len(texts)} solution_strs, {len(truths)} ground_truths and {len(infos)} extra_infos"
            )
        return [self._item(t, g, e, f"[{i}]") for i, (t, g, e) in enumerate(zip(texts, truths, infos, strict=True))]

    def _item(self, solution: object, ground_truth: object, extra_info: object, index: str) -> RewardItem:
        if not isinstance(solution, str):
            raise InvalidInputError(f"solution_str{index} must be a string, got {type(solution).__name__}")
        if not isinstance(extra_info, Mapping) or self.query_key not in extra_info:
            keys = ", ".join(map(str, extra_info)) if isinstance(extra_info, Mapping) else "no extra_info"  # pyright: ignore[reportUnknownArgumentType]
            raise InvalidInputError(
                f"extra_info{index} has no {self.query_key!r}: put the prompt the policy answered into extra_info "
                f"when preparing the data (found: {keys})"
            )
        info: Mapping[str, Any] = extra_info  # pyright: ignore[reportUnknownVariableType]
        query = query_of(info[self.query_key], f"extra_info{index}[{self.query_key!r}]")
        reference = None
        if self._rewarder.mode == "reference":
            reference = reference_of(ground_truth, f"ground_truth{index}")
        row = str(info[self.row_key]) if self.row_key is not None and self.row_key in info else None
        group: Hashable = (row, query)
        return RewardItem(query, solution, group, reference)


def _numbers(rewards: Sequence[Reward]) -> list[float]:
    """Rewards as numbers, as verl needs them; the fallback is a number, so ``None`` cannot occur here."""
    assert all(reward is not None for reward in rewards)
    return [float(reward) for reward in rewards if reward is not None]


class VerlServiceReward:
    """A verl reward that asks a ``grmjudge serve`` service, which groups a prompt's completions across workers.

    Expose ``compute_score`` under the name verl's ``reward.custom_reward_function.name`` points at. Each call
    posts one completion to ``/v1/rewards`` with a group id made of the dataset row and the prompt (as
    `VerlGRMReward` groups), so the service judges a group once ``group_size`` completions have arrived from any
    workers, or after its group wait.

    Args:
        url: The service's base URL (``http://host:8080``), or a list of replicas. ``None`` uses verl's
            ``reward_router_address`` keyword (``host:port``), for setups where that router fronts the service.
        api_key: The service's key.
        group_size: The rollout ``n`` (``actor_rollout_ref.rollout.n``).
        query_key: The ``extra_info`` key holding the prompt the policy answered.
        row_key: The ``extra_info`` key identifying the dataset row (``None``: the prompt alone).
        mode: ``"listwise"`` or ``"reference"`` (against ``ground_truth``); ``None`` keeps the service's.
        normalisation: As `VerlGRMReward`'s; ``None`` keeps the service's.
        fallback: The reward of a completion without a verdict (verl needs a number).
        timeout: Seconds per request, the group wait included.
    """

    def __init__(
        self,
        url: str | Sequence[str] | None = None,
        *,
        api_key: str | None = None,
        group_size: int,
        query_key: str = "question",
        row_key: str | None = "index",
        mode: Mode | None = None,
        normalisation: Normalisation | None = None,
        fallback: float = 0.0,
        timeout: float = 600.0,
    ) -> None:
        if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:  # pyright: ignore[reportUnnecessaryIsInstance]
            raise ConfigurationError(f"group_size must be the rollout n, a positive integer; got {group_size!r}")
        self.urls = check_base_urls(url) if url is not None else None
        self.api_key = api_key
        self.group_size = group_size
        self.query_key = query_key
        self.row_key = row_key
        self.mode: Mode | None = mode
        self.normalisation: Normalisation | None = normalisation
        self.fallback = fallback
        self.timeout = timeout
        self._clients: dict[tuple[str, ...], HTTPClient] = {}

    def __repr__(self) -> str:
        return f"VerlServiceReward(urls={self.urls!r}, group_size={self.group_size})"

    async def compute_score(
        self,
        data_source: Any,
        solution_str: str,
        ground_truth: Any,
        extra_info: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> float:
        """The per-completion reward for verl's Reward Loop (``async``)."""
        if not isinstance(solution_str, str):  # pyright: ignore[reportUnnecessaryIsInstance]
            raise InvalidInputError(f"solution_str must be a string, got {type(solution_str).__name__}")
        if not isinstance(extra_info, Mapping) or self.query_key not in extra_info:
            raise InvalidInputError(f"extra_info has no {self.query_key!r}: put the prompt into extra_info")
        info: Mapping[str, Any] = extra_info  # pyright: ignore[reportUnknownVariableType]
        query = query_of(info[self.query_key], f"extra_info[{self.query_key!r}]")
        prompt = [message.model_dump() for message in query]
        row = str(info[self.row_key]) if self.row_key is not None and self.row_key in info else None
        group_id = hashlib.sha256(json.dumps([row, prompt]).encode()).hexdigest()[:32]
        body: dict[str, Any] = {
            "prompt": prompt,
            "completions": [solution_str],
            "group_id": group_id,
            "group_size": self.group_size,
            "fallback": self.fallback,
        }
        if self.mode == "reference":
            body["reference"] = reference_of(ground_truth, "ground_truth")
        body |= {key: value for key, value in (("mode", self.mode), ("normalisation", self.normalisation)) if value}
        reply = await self._client(kwargs.get("reward_router_address")).post_json("/v1/rewards", body)
        return float(reply["rewards"][0])

    def _client(self, router_address: object) -> HTTPClient:
        urls = self.urls
        if urls is None:
            if not isinstance(router_address, str) or not router_address:
                raise ConfigurationError("give the service's url, or run under verl with a reward_router_address")
            urls = (router_address if "://" in router_address else f"http://{router_address}",)
        if urls not in self._clients:
            self._clients[urls] = HTTPClient(
                backend="grmjudge-serve",
                base_urls=urls,
                timeout=self.timeout,
                max_connections=64,
                retry=None,
                headers={"authorization": f"Bearer {self.api_key}"} if self.api_key else {},
                http_client=None,
            )
        return self._clients[urls]
