"""A GRM as a reward function for TRL's ``GRPOTrainer``: one listwise judge call per group of completions.

How TRL (1.16) calls a reward function: once per *generation batch* of a process, with keyword arguments
``prompts`` and ``completions`` flattened to one entry per completion, ``completion_ids``, every dataset column
except ``prompt`` as a list of the same length, and ``trainer_state``, ``log_extra`` and ``log_metric``. Its
``RepeatSampler`` lays the batch out as runs of ``num_generations`` completions of one prompt; with
``steps_per_generation`` > 1 (e.g. gradient accumulation) the batch spans all those steps and the reward sees
it whole, before TRL shuffles and splits it. A run can be cut in two only where a prompt's completions are
split across processes (a per-process batch that is not a multiple of ``num_generations``). ``async def``
rewards run concurrently on a background event loop TRL starts for them; a ``None`` reward is "no reward":
TRL turns it into NaN, and a completion with no reward from any function gets no advantage.

[`GRMReward`][grmjudge.integrations.trl.GRMReward] groups completions by runs of the same prompt (the text or the
whole conversation), cut into pieces of ``num_generations``: a new run always starts a new group, so two dataset
rows with the same prompt stay two groups, as they are for TRL's advantages. It judges each group listwise:
``Judge.score(prompt, completions_of_the_group, k=k)``, each of the k samples seeing all of them in its own
shuffled order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Unpack

from grmjudge.exceptions import InvalidInputError
from grmjudge.integrations.rewarder import (
    GroupRewarder,
    Reward,
    RewardAdapter,
    RewardItem,
    RewardOptions,
    RewardStats,
    batch_list,
    query_of,
    reference_of,
    response_of,
)
from grmjudge.judge import Judge

__all__ = ["GRMReward"]

RewardFunction = Callable[..., list[Reward]]
"""TRL's reward-function shape: keyword arguments in, one reward (or ``None``) per completion out."""


class GRMReward(RewardAdapter):
    """A GRM-backed reward for ``GRPOTrainer(reward_funcs=[GRMReward(judge, num_generations=G)])``.

    Args:
        judge: The GRM judge; its settings (template, temperature, ``max_tokens``, seed) apply to every call.
        num_generations: The trainer's ``num_generations``; runs of a prompt are cut to this size. ``None``
            makes each run of a prompt one group.
        reference_column: The dataset column holding reference answers (``mode="reference"``).
        **options: The shared [`RewardOptions`][grmjudge.integrations.RewardOptions] (``k``, ``meta``,
            ``adaptive``, ``mode``, ``normalisation``, ``fallback``, ``max_concurrent_calls``, ``name``).
            Here ``fallback`` defaults to ``None``, which tells TRL "no reward": the completion gets no
            advantage; ``name`` is what TRL logs the reward under (``rewards/NAME/mean``) and the prefix of
            its metrics.
    """

    def __init__(
        self,
        judge: Judge,
        *,
        num_generations: int | None = None,
        reference_column: str = "reference",
        **options: Unpack[RewardOptions],
    ) -> None:
        self._rewarder = GroupRewarder(
            judge,
            group_size=num_generations,
            contiguous_groups=True,
            split_hint=(
                "TRL split a prompt's completions across processes; keep each process's batch "
                "(per_device_train_batch_size x steps_per_generation) a multiple of num_generations"
            ),
            **options,
        )
        self.reference_column = reference_column
        self.__name__ = self._rewarder.name

    async def __call__(
        self,
        prompts: Sequence[Any],
        completions: Sequence[Any],
        completion_ids: Sequence[Sequence[int]] | None = None,
        *,
        log_metric: Callable[[str, float], None] | None = None,
        **columns: Any,
    ) -> list[Reward]:
        """One reward per completion; TRL passes the dataset columns (and its helpers) as keyword arguments.

        Through ``log_metric`` it logs ``NAME/fallback_rate`` and ``NAME/valid_sample_rate`` (and
        ``NAME/win_rate`` in reference mode) for the batch.
        """
        items = self._items(prompts, completions, columns)
        return self._logged(*await self._rewarder.rewards(items), log_metric)

    def as_sync(self) -> RewardFunction:
        """The same reward as a blocking function, for code that calls reward functions synchronously.

        Each call runs on grmjudge's event loop, so it may come from any thread, even one that runs a loop of
        its own; calls from several threads are judged concurrently.
        """

        def reward(
            prompts: Sequence[Any],
            completions: Sequence[Any],
            completion_ids: Sequence[Sequence[int]] | None = None,
            **kwargs: Any,
        ) -> list[Reward]:
            log_metric: Callable[[str, float], None] | None = kwargs.pop("log_metric", None)
            items = self._items(prompts, completions, kwargs)
            return self._logged(*self._rewarder.rewards_blocking(items), log_metric)

        reward.__name__ = reward.__qualname__ = self.__name__
        return reward

    def _items(
        self, prompts: Sequence[Any], completions: Sequence[Any], columns: Mapping[str, Any]
    ) -> list[RewardItem]:
        prompt_list = batch_list(prompts, "prompts")
        completion_list = batch_list(completions, "completions")
        if len(prompt_list) != len(completion_list):
            raise InvalidInputError(f"got {len(prompt_list)} prompts for {len(completion_list)} completions")
        references = self._references(columns, len(completion_list))
        items: list[RewardItem] = []
        for i, (prompt, completion) in enumerate(zip(prompt_list, completion_list, strict=True)):
            query = query_of(prompt, f"prompts[{i}]")
            reference = None if references is None else reference_of(references[i], f"{self.reference_column}[{i}]")
            items.append(RewardItem(query, response_of(completion, f"completions[{i}]"), query, reference))
        return items

    def _references(self, columns: Mapping[str, Any], count: int) -> list[Any] | None:
        if self._rewarder.mode != "reference":
            return None
        if self.reference_column not in columns:
            available = ", ".join(sorted(columns)) or "none"
            raise InvalidInputError(
                f"reference mode needs the dataset column {self.reference_column!r}; columns passed: {available}"
            )
        references = batch_list(columns[self.reference_column], self.reference_column)
        if len(references) != count:
            raise InvalidInputError(f"got {len(references)} {self.reference_column!r} values for {count} completions")
        return references

    def _logged(
        self, rewards: list[Reward], batch: RewardStats, log_metric: Callable[[str, float], None] | None
    ) -> list[Reward]:
        """The rewards, after logging the batch's rates through TRL's ``log_metric`` (if given)."""
        if log_metric is None or not batch.completions:
            return rewards
        log_metric(f"{self.__name__}/fallback_rate", batch.fallback_rate)
        log_metric(f"{self.__name__}/valid_sample_rate", batch.valid_sample_rate)
        if self._rewarder.mode == "reference":
            log_metric(f"{self.__name__}/win_rate", batch.reference_wins / batch.completions)
        return rewards
