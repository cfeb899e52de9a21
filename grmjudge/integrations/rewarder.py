"""What the TRL and verl adapters share: grouping, judging, turning votes into rewards, fallbacks and counters.

A batch of completions is cut into **groups** (completions of the same prompt, at most ``group_size`` each; see
`plan_groups`). ``listwise`` judges each group in one [`Judge.score`][grmjudge.judge.Judge.score] call: every
one of the k samples sees all the group's completions, shuffled per sample. ``reference`` judges each
completion against a reference answer, one call per completion. A call without a verdict gives each completion
it covers the ``fallback`` reward; it is logged (logger ``grmjudge.integrations``) and counted in
[`RewardStats`][grmjudge.integrations.RewardStats].
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Literal, TypedDict, get_args

import anyio

from grmjudge._runtime import run_blocking, runs_on_runtime
from grmjudge._tasks import task_group
from grmjudge.adaptive import AdaptivePolicy
from grmjudge.exceptions import ConfigurationError, InvalidInputError, NoVerdictError
from grmjudge.judge import Judge, adaptive_policy
from grmjudge.prompts import normalise_query
from grmjudge.training.rewards import completion_text
from grmjudge.types import Message

logger = logging.getLogger("grmjudge.integrations")

Mode = Literal["listwise", "reference"]
"""``listwise``: one call per group, all its completions in one prompt. ``reference``: one call per completion,
judged as a pair with its reference answer."""

Normalisation = Literal["mean", "unit", "zscore", "rank", "raw"]
"""How summed votes become rewards (see `normalise`)."""

Reward = float | None


@dataclass(frozen=True)
class RewardItem:
    """One completion to reward: its prompt as messages, its text, its group key, and its reference (if any)."""

    query: tuple[Message, ...]
    response: str
    group: Hashable
    reference: str | None = None


@dataclass
class RewardStats:
    """Counters over the batches a reward has scored, so GRM failures are visible, never silent numbers.

    Attributes:
        batches: Calls of the reward (verl's collected groups count one each).
        completions: Completions rewarded.
        groups: Groups formed.
        partial_groups: Groups smaller than the group size (a prompt's completions split across processes or
            calls), judged on their own. Counted only where the group size is known.
        singleton_groups: Listwise groups of one completion: the GRM compared it with nothing, so its reward says
            nothing about the rest of the group. Counted whether or not the group size is known.
        judge_calls: ``Judge.score`` calls: one per group (listwise) or per completion (reference).
        no_verdict_calls: Calls without a verdict.
        fallback_rewards: Completions that got the fallback reward because their call had no verdict.
        samples: GRM samples drawn.
        valid_samples: GRM samples that parsed into scores.
        reference_wins: Completions scored strictly above their reference (reference mode).
        failures: Failed GRM samples by reason (``no_boxed``, ``truncated``, a backend error class, ...).
    """

    batches: int = 0
    completions: int = 0
    groups: int = 0
    partial_groups: int = 0
    singleton_groups: int = 0
    judge_calls: int = 0
    no_verdict_calls: int = 0
    fallback_rewards: int = 0
    samples: int = 0
    valid_samples: int = 0
    reference_wins: int = 0
    failures: Counter[str] = field(default_factory=Counter[str])

    def add(self, other: RewardStats) -> None:
        """Add another batch's counts to these."""
        for counter in fields(self):
            if counter.name == "failures":
                self.failures.update(other.failures)
            else:
                setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))

    @property
    def fallback_rate(self) -> float:
        """The share of completions that got the fallback reward (0.0 before any completion)."""
        return self.fallback_rewards / self.completions if self.completions else 0.0

    @property
    def valid_sample_rate(self) -> float:
        """The share of GRM samples that parsed into scores (0.0 before any sample)."""
        return self.valid_samples / self.samples if self.samples else 0.0


@dataclass(frozen=True)
class Vote:
    """The summed votes one completion got in its call, and how many samples were summed."""

    total: float
    kept: int

    @property
    def mean(self) -> float:
        """The average score per kept sample, in the template's score range."""
        return self.total / self.kept


def normalise(votes: Sequence[Vote | None], method: Normalisation, score_range: tuple[int, int]) -> list[Reward]:
    """Rewards for one group's votes; ``None`` stays ``None`` (no verdict) and is left out of the group statistics.

    ``raw``: the summed votes (they grow with the number of valid samples). ``mean``: votes per kept sample, in
    the template's range (1-10 for the default template). ``unit``: ``mean`` mapped onto [0, 1]. ``zscore``:
    ``mean`` centred on the group's average and divided by its population std (all 0.0 when the group is
    level). ``rank``: the rank within the group on [0, 1], 1 the best, ties sharing their average rank, 0.5 for
    a group of one.
    """
    means = [vote.mean for vote in votes if vote is not None]
    if method == "raw":
        return [None if vote is None else vote.total for vote in votes]
    if method == "mean":
        return [None if vote is None else vote.mean for vote in votes]
    if method == "unit":
        low, high = score_range
        return [None if vote is None else (vote.mean - low) / (high - low) for vote in votes]
    if method == "zscore":
        centre = sum(means) / len(means) if means else 0.0
        spread = math.sqrt(sum((m - centre) ** 2 for m in means) / len(means)) if means else 0.0
        return [None if vote is None else (vote.mean - centre) / spread if spread else 0.0 for vote in votes]
    return [None if vote is None else _rank(vote.mean, means) for vote in votes]


def _rank(value: float, values: Sequence[float]) -> float:
    if len(values) == 1:
        return 0.5
    below = sum(1 for v in values if v < value)
    ties = sum(1 for v in values if v == value)
    return (below + (ties - 1) / 2) / (len(values) - 1)


def plan_groups(keys: Sequence[Hashable], size: int | None, *, contiguous: bool) -> list[list[int]]:
    """Positions grouped by key, cut into pieces of at most ``size`` (``None``: uncut).

    ``contiguous=True`` (TRL) follows the layout: a group is part of a run of neighbouring equal keys, so a new
    run always starts a new group, and a prompt that appears in two separate places of the batch makes separate
    groups. TRL lays a batch out as runs of ``size`` completions per dataset row, and a process's batch may begin
    inside a row; so the first run, when another run follows it, is cut from its end and its short piece is
    the row's tail it begins with. Every other run starts on a row boundary and is cut from its start.

    ``contiguous=False`` (verl, whose batch balancing reorders completions) gathers every position of a key into
    one group, in order of first appearance, then cuts it.
    """
    if contiguous:
        runs: list[list[int]] = []
        for position, key in enumerate(keys):
            if runs and keys[runs[-1][0]] == key:
                runs[-1].append(position)
            else:
                runs.append([position])
    else:
        by_key: dict[Hashable, list[int]] = {}
        for position, key in enumerate(keys):
            by_key.setdefault(key, []).append(position)
        runs = list(by_key.values())
    groups: list[list[int]] = []
    for index, run in enumerate(runs):
        step = size or len(run)
        head = len(run) % step if contiguous and index == 0 and len(runs) > 1 else 0
        if head:
            groups.append(run[:head])
        groups.extend(run[start : start + step] for start in range(head, len(run), step))
    return groups


def batch_list(values: object, name: str) -> list[Any]:
    """A batch argument as a list: any sized iterable (a list, a numpy array), but not a string or a mapping."""
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        kind: str = type(values).__name__  # pyright: ignore[reportUnknownArgumentType]
        raise InvalidInputError(f"{name} must be a list with one entry per completion, got {kind}")
    return list(values)  # pyright: ignore[reportUnknownArgumentType]


def query_of(prompt: object, where: str) -> tuple[Message, ...]:
    """A prompt (a string or a list of chat messages) as the judge's query, or an error naming ``where``."""
    if not isinstance(prompt, str) and (isinstance(prompt, Mapping) or not isinstance(prompt, Iterable)):
        kind: str = type(prompt).__name__  # pyright: ignore[reportUnknownArgumentType]
        raise InvalidInputError(f"{where} must be a string or a list of messages, got {kind}")
    try:
        return normalise_query(prompt if isinstance(prompt, str) else list(prompt))  # pyright: ignore[reportUnknownArgumentType]
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc


def response_of(completion: object, where: str) -> str:
    """A completion's text (a string, or the last message of a conversational completion)."""
    try:
        return completion_text(completion)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {exc}") from exc


def reference_of(value: object, where: str) -> str:
    """A reference answer, which must be a string."""
    if not isinstance(value, str):
        raise InvalidInputError(f"{where} must be a string reference answer, got {type(value).__name__}")
    return value


class RewardOptions(TypedDict, total=False):
    """The options both reward adapters take as keywords (each adapter adds its own).

    Attributes:
        k: Samples per judge call (default 4), voted; each sees the responses in its own shuffled order.
        meta: Keep only the best ``k_meta`` samples by the judge's meta scorer (``Judge(backend, meta=...)``).
        adaptive: ``True`` or an [`AdaptivePolicy`][grmjudge.adaptive.AdaptivePolicy]: ``k`` becomes a maximum,
            and each call stops drawing samples once its best completion is settled (a GRPO run pays for
            reward samples every step). Needs a normalisation other than ``raw``.
        mode: ``"listwise"`` (default: one call per group of a prompt's completions) or ``"reference"`` (one
            pairwise call per completion against its reference answer).
        normalisation: ``"mean"`` (default: votes per kept sample, on the template's range), ``"unit"``
            ([0, 1]), ``"zscore"`` or ``"rank"`` (within the group), or ``"raw"`` (summed votes).
        fallback: The reward of a completion whose call gave no verdict (every sample unparsable or failed);
            logged and counted. Each adapter documents its default.
        max_concurrent_calls: Judge calls in flight at once across all of the reward's batches (default 16).
        name: The reward's name in logs and metrics (default ``"grm_reward"``).
    """

    k: int
    meta: bool
    adaptive: bool | AdaptivePolicy
    mode: Mode
    normalisation: Normalisation
    fallback: float | None
    max_concurrent_calls: int
    name: str


class GroupRewarder:
    """Turns batches of completions into rewards with a judge; see the module docstring for the rules.

    Every batch is judged on grmjudge's event loop, whichever loop or thread the trainer calls from, so one
    bound on judge calls (``max_concurrent_calls``) covers all of this reward's batches in flight.
    """

    def __init__(
        self,
        judge: Judge,
        *,
        group_size: int | None,
        contiguous_groups: bool,
        split_hint: str,
        k: int = 4,
        meta: bool = False,
        adaptive: bool | AdaptivePolicy = False,
        mode: Mode = "listwise",
        normalisation: Normalisation = "mean",
        fallback: float | None = None,
        max_concurrent_calls: int = 16,
        name: str = "grm_reward",
    ) -> None:
        """Check the options; see `rewards` for what they do.

        ``contiguous_groups`` and ``group_size`` go to `plan_groups`; ``split_hint`` ends the warnings about
        partial and single-completion groups with the adapter's remedy.
        """
        _check_options(judge, k, meta, mode, normalisation, fallback, group_size, max_concurrent_calls)
        if adaptive_policy(adaptive) is not None and normalisation == "raw":
            raise ConfigurationError(
                "adaptive k draws a different number of samples per call, so raw sums are not comparable: "
                "use normalisation='mean' (or unit, zscore, rank)"
            )
        self.judge = judge
        self.k = k
        self.meta = meta
        self.adaptive = adaptive
        self.mode: Mode = mode
        self.normalisation: Normalisation = normalisation
        self.fallback = fallback
        self.group_size = group_size
        self.contiguous_groups = contiguous_groups
        self.split_hint = split_hint
        self.max_concurrent_calls = max_concurrent_calls
        self.name = name
        self.stats = RewardStats()
        """Counts over every batch so far."""
        self._warned: set[str] = set()
        self._limiter: anyio.CapacityLimiter | None = None

    @runs_on_runtime
    async def rewards(self, items: Sequence[RewardItem]) -> tuple[list[Reward], RewardStats]:
        """One reward per item, in order, and this batch's counts (also added to `stats`)."""
        batch = RewardStats(batches=1, completions=len(items))
        groups = plan_groups([item.group for item in items], self.group_size, contiguous=self.contiguous_groups)
        batch.groups = len(groups)
        if self.group_size is not None:
            batch.partial_groups = sum(1 for g in groups if len(g) < self.group_size)
        if self.mode == "listwise":
            batch.singleton_groups = sum(1 for g in groups if len(g) == 1)
        rewards: list[Reward] = [None] * len(items)
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.max_concurrent_calls)
        limiter = self._limiter
        async with task_group() as tg:
            for group in groups:
                tg.start_soon(self._reward_group, group, items, rewards, batch, limiter)
        self.stats.add(batch)
        self._warn_small_groups(batch)
        return rewards, batch

    def _warn_small_groups(self, batch: RewardStats) -> None:
        """Warn, once per kind and reward, about groups judged without all of their prompt's completions."""
        if batch.singleton_groups and "singleton" not in self._warned:
            self._warned.add("singleton")
            logger.warning(
                "%s: %d listwise group(s) held a single completion, so the GRM compared it with nothing: %s. "
                "Counted in stats.singleton_groups; not repeated.",
                self.name,
                batch.singleton_groups,
                self.split_hint,
            )
        if batch.partial_groups and "partial" not in self._warned:
            self._warned.add("partial")
            logger.warning(
                "%s: %d group(s) had fewer than %s completions, and each part is judged on its own: %s. "
                "Counted in stats.partial_groups; not repeated.",
                self.name,
                batch.partial_groups,
                self.group_size,
                self.split_hint,
            )

    def rewards_blocking(self, items: Sequence[RewardItem]) -> tuple[list[Reward], RewardStats]:
        """`rewards` from synchronous code (any thread, even one running an event loop of its own)."""
        return run_blocking(lambda: self.rewards(items))

    async def _reward_group(
        self,
        positions: list[int],
        items: Sequence[RewardItem],
        rewards: list[Reward],
        batch: RewardStats,
        limiter: anyio.CapacityLimiter,
    ) -> None:
        members = [items[p] for p in positions]
        votes: list[Vote | None] = [None] * len(members)
        if self.mode == "listwise":
            async with limiter:
                totals = await self._score(members[0].query, [m.response for m in members], positions, batch)
            if totals is not None:
                votes = [Vote(total, totals[1]) for total in totals[0]]
        else:
            async with task_group() as tg:
                for slot, (position, member) in enumerate(zip(positions, members, strict=True)):
                    tg.start_soon(self._against_reference, member, position, slot, votes, batch, limiter)
        values = normalise(votes, self.normalisation, self.judge.settings.template.score_range)
        for position, vote, value in zip(positions, votes, values, strict=True):
            rewards[position] = self.fallback if vote is None else value
            batch.fallback_rewards += vote is None

    async def _against_reference(
        self,
        member: RewardItem,
        position: int,
        slot: int,
        votes: list[Vote | None],
        batch: RewardStats,
        limiter: anyio.CapacityLimiter,
    ) -> None:
        assert member.reference is not None  # the adapters check it
        async with limiter:
            totals = await self._score(member.query, [member.response, member.reference], [position], batch)
        if totals is not None:
            (own, reference), kept = totals
            votes[slot] = Vote(own, kept)
            batch.reference_wins += own > reference

    async def _score(
        self, query: tuple[Message, ...], responses: list[str], positions: list[int], batch: RewardStats
    ) -> tuple[list[float], int] | None:
        """The summed votes and the number of kept samples, or ``None`` (logged) without a verdict."""
        batch.judge_calls += 1
        try:
            result = await self.judge.score(query, responses, k=self.k, meta=self.meta, adaptive=self.adaptive)
        except NoVerdictError as exc:  # a judge with raise_on_no_verdict=True
            batch.samples += sum(exc.no_verdict.failures.values())
            batch.failures.update(exc.no_verdict.failures)
            return self._no_verdict(positions, exc.no_verdict.message, batch)
        batch.samples += len(result.samples)
        batch.valid_samples += result.n_valid
        batch.failures.update(s.error.reason for s in result.samples if s.error is not None)
        if result.scores is None:
            message = result.no_verdict.message if result.no_verdict is not None else "no valid judgement"
            return self._no_verdict(positions, message, batch)
        return result.scores, result.n_kept

    def _no_verdict(self, positions: list[int], message: str, batch: RewardStats) -> None:
        batch.no_verdict_calls += 1
        logger.warning(
            "%s: the GRM gave no verdict for the completion(s) at batch position(s) %s: %s; reward %s",
            self.name,
            ", ".join(map(str, positions)),
            message,
            self.fallback,
        )


def _check_options(
    judge: Judge,
    k: int,
    meta: bool,
    mode: str,
    normalisation: str,
    fallback: float | None,
    group_size: int | None,
    max_concurrent_calls: int,
) -> None:
    if not isinstance(judge, Judge):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ConfigurationError(f"the reward needs a grmjudge.Judge, got {type(judge).__name__}")
    for label, value, low in (("k", k, 1), ("max_concurrent_calls", max_concurrent_calls, 1)):
        if not _is_int(value) or value < low:
            raise ConfigurationError(f"{label} must be a positive integer, got {value!r}")
    if group_size is not None and (not _is_int(group_size) or group_size < 1):
        raise ConfigurationError(f"group_size must be a positive integer or None, got {group_size!r}")
    if mode not in get_args(Mode):
        raise ConfigurationError(f"mode must be one of {get_args(Mode)}, got {mode!r}")
    if normalisation not in get_args(Normalisation):
        raise ConfigurationError(f"normalisation must be one of {get_args(Normalisation)}, got {normalisation!r}")
    if fallback is not None and (not isinstance(fallback, int | float) or not math.isfinite(fallback)):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise ConfigurationError(f"fallback must be a finite number or None, got {fallback!r}")
    if meta and judge.meta is None:
        raise ConfigurationError("meta=True needs a judge with a meta scorer: Judge(backend, meta=...)")
    template = judge.settings.template
    if not template.numbered:
        raise ConfigurationError(
            f"template {template.id!r} takes exactly one response; listwise and reference judging show several"
        )
    low, high = template.score_range
    if normalisation == "unit" and low == high:
        raise ConfigurationError(f"normalisation='unit' needs a score range wider than {template.score_range}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class RewardAdapter:
    """What the TRL and verl rewards share around their `GroupRewarder`: the repr and the counters."""

    _rewarder: GroupRewarder

    def __repr__(self) -> str:
        r = self._rewarder
        return f"{type(self).__name__}(judge={r.judge!r}, k={r.k}, mode={r.mode!r}, normalisation={r.normalisation!r})"

    @property
    def stats(self) -> RewardStats:
        """Counts over every call so far: judge calls, samples, no-verdict calls, fallback rewards, failures."""
        return self._rewarder.stats


@dataclass(eq=False)
class OpenGroup:
    """A group being collected: its completions so far, and what its callers wait on."""

    deadline: float
    items: list[RewardItem] = field(default_factory=list[RewardItem])
    full: anyio.Event = field(default_factory=anyio.Event)
    done: anyio.Event = field(default_factory=anyio.Event)
    claimed: bool = False
    rewards: list[Reward] | None = None
    error: BaseException | None = None


class GroupCollector:
    """Collects a prompt's completions from concurrent calls in one process until the group is complete.

    A group is judged once it holds ``size`` completions or ``max_wait`` seconds after its first arrived; the
    first of its callers to wake judges it (shielded, so that caller's cancellation cannot strand the others)
    and every caller reads its own reward. Calls from every loop and thread of the process meet on grmjudge's
    event loop, so their completions join the same open groups.
    """

    def __init__(self, rewarder: GroupRewarder, size: int, max_wait: float) -> None:
        self._rewarder = rewarder
        self._size = size
        self._max_wait = max_wait
        self._open: dict[Hashable, OpenGroup] = {}

    @property
    def waiting(self) -> int:
        """Groups still collecting completions."""
        return len(self._open)

    @runs_on_runtime
    async def rewards(self, items: Sequence[RewardItem]) -> list[Reward]:
        memberships = [self._join(self._open, item) for item in items]
        async with task_group() as tg:
            for group in dict.fromkeys(group for group, _ in memberships):
                tg.start_soon(self._settle, self._open, group)
        return [settled_rewards(group)[slot] for group, slot in memberships]

    def _join(self, open_groups: dict[Hashable, OpenGroup], item: RewardItem) -> tuple[OpenGroup, int]:
        group = open_groups.get(item.group)
        if group is None:
            group = open_groups[item.group] = OpenGroup(deadline=anyio.current_time() + self._max_wait)
        group.items.append(item)
        if len(group.items) == self._size:
            del open_groups[item.group]
            group.full.set()
        return group, len(group.items) - 1

    async def _settle(self, open_groups: dict[Hashable, OpenGroup], group: OpenGroup) -> None:
        with anyio.move_on_after(group.deadline - anyio.current_time()):
            await group.full.wait()
        if group.claimed:
            await group.done.wait()
            return
        group.claimed = True
        key = group.items[0].group
        if open_groups.get(key) is group:  # timed out before it filled: later arrivals start a new group
            del open_groups[key]
        try:
            with anyio.CancelScope(shield=True):
                group.rewards = (await self._rewarder.rewards(group.items))[0]
        except BaseException as exc:
            group.error = exc
            raise
        finally:
            group.done.set()


def settled_rewards(group: OpenGroup) -> list[Reward]:
    """The rewards of a judged group, or the error its judging raised."""
    if group.error is not None:
        raise group.error
    assert group.rewards is not None  # set before done
    return group.rewards
