"""The strict correctness rule (METHOD.md §6) and the SPCT reward in TRL's reward-function form (§11).

A sampled judgement is **correct** when it parses and, for n >= 2, gives the labelled-best response a score
strictly higher than every other response (a tie at the top is wrong), or, for n = 1, gives exactly the 0/1
label. Parse failures (no box, wrong count, out of range, truncated) are wrong. The same rule decides RFT
rejection, the RL reward (+1 / -1, no partial credit, no format reward) and the meta-RM label.

This is **not** the evaluation rule: evaluation breaks ties at random (`grmjudge.voting.pick_best`).
Parsing is `grmjudge.parsing`; there is no second parser here. Importing this module needs no extra.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from grmjudge.exceptions import ConfigurationError, InvalidInputError
from grmjudge.parsing import Parsed, ParseFailure, ParseOutcome, parse_judgement
from grmjudge.prompts import BUILTIN_TEMPLATES, PromptTemplate
from grmjudge.types import FinishReason
from grmjudge.voting import Permutation, to_caller_order

__all__ = [
    "Label",
    "Verdict",
    "completion_text",
    "is_correct",
    "is_correct_shown",
    "judge_text",
    "make_spct_reward",
    "shown_label",
    "spct_reward",
    "verdict",
]


@dataclass(frozen=True)
class Label:
    """The ground truth of one item: the index of the unique best of ``n >= 2`` responses, or a 0/1 rating.

    ``best`` is an index into the responses **in the order the label refers to** (the caller's order, unless
    the label was mapped with [`shown_label`][grmjudge.training.rewards.shown_label]).
    """

    n: int
    best: int | None = None
    rating: int | None = None

    def __post_init__(self) -> None:
        if self.n < 1:
            raise InvalidInputError(f"a label needs at least one response, got n={self.n}")
        if self.n == 1:
            if self.best is not None or self.rating not in (0, 1):
                raise InvalidInputError(
                    f"a single-response label is a 0/1 rating, got best={self.best} rating={self.rating}"
                )
        elif self.rating is not None or self.best is None or not 0 <= self.best < self.n:
            raise InvalidInputError(
                f"a label for {self.n} responses is a best index in [0, {self.n - 1}], got best={self.best} "
                f"rating={self.rating}"
            )


@dataclass(frozen=True)
class Verdict:
    """One judgement checked against its label.

    ``scores`` are in the caller's order (``None`` for a parse failure); ``failure`` is the
    [`ParseFailureReason`][grmjudge.parsing.ParseFailureReason] value; ``tie`` says the labelled best shares
    the top score (n >= 2), which makes the judgement wrong.
    """

    correct: bool
    scores: tuple[int, ...] | None
    failure: str | None
    tie: bool


def is_correct(scores: Sequence[int] | ParseOutcome | None, label: Label) -> bool:
    """Whether ``scores`` (in the label's order) satisfy the strict rule; parse failures and ties are wrong."""
    if scores is None or isinstance(scores, ParseFailure):
        return False
    values = scores.scores if isinstance(scores, Parsed) else tuple(scores)
    if len(values) != label.n:
        return False
    if label.n == 1:
        return values[0] == label.rating
    assert label.best is not None  # guaranteed by Label
    top = values[label.best]
    return all(top > value for index, value in enumerate(values) if index != label.best)


def shown_label(label: Label, permutation: Permutation) -> Label:
    """The label in prompt order: the position where ``permutation`` shows the labelled-best response."""
    _check_permutation(permutation, label.n)
    if label.best is None:
        return label
    return Label(n=label.n, best=permutation.index(label.best))


def is_correct_shown(
    prompt_scores: Sequence[int] | ParseOutcome | None, label: Label, permutation: Permutation
) -> bool:
    """Correctness of scores given in prompt order, checked against the permuted label (no un-shuffling)."""
    return is_correct(prompt_scores, shown_label(label, permutation))


def judge_text(
    text: str,
    label: Label,
    permutation: Permutation,
    template: PromptTemplate,
    *,
    finish_reason: FinishReason = "stop",
) -> Verdict:
    """Parse one generated judgement with the template's parser and check it against the label.

    ``permutation[m]`` is the caller's index of the response shown as "Response m+1"; the scores are mapped
    back to the caller's order before the check.
    """
    _check_permutation(permutation, label.n)
    outcome = parse_judgement(text, finish_reason, label.n, template.score_range, template.parser)
    if isinstance(outcome, ParseFailure):
        return verdict(None, label, failure=outcome.reason.value)
    return verdict(to_caller_order(outcome.scores, permutation), label)


def verdict(scores: Sequence[int] | None, label: Label, *, failure: str | None = None) -> Verdict:
    """The verdict on scores already parsed and in the label's order (``None`` with the failure reason)."""
    if scores is None:
        return Verdict(correct=False, scores=None, failure=failure, tie=False)
    values = tuple(scores)
    return Verdict(correct=is_correct(values, label), scores=values, failure=None, tie=_is_tie(values, label))


RewardFunction = Callable[..., list[float]]
"""TRL's reward-function shape: keyword arguments in, one float per completion out."""


def make_spct_reward(
    templates: Iterable[PromptTemplate] = (),
    *,
    eos_token_ids: Iterable[int] | None = None,
    metric_prefix: str = "spct",
) -> RewardFunction:
    """Build the SPCT reward for TRL's ``GRPOTrainer`` (Eq. 11): +1 for a correct judgement, -1 otherwise.

    The dataset rows carry ``permutation`` (caller index shown at each prompt position), ``best`` (the
    labelled-best caller index, or null for one response), ``rating`` (0/1 for one response, else null) and
    ``template_id`` (which template rendered the prompt; the built-in templates and ``templates`` are known).
    An optional ``source`` column gets per-source accuracy in the logs.

    ``eos_token_ids`` lets the reward see truncation: a completion whose last token id is not one of them hit
    the length limit and is a parse failure (-1), even if an intermediate box happens to parse. Without
    them a truncated text is parsed as it stands. Through TRL's ``log_metric`` it logs the accuracy, the
    parse-failure rate, the tie rate and the accuracy per source.
    """
    known = dict(BUILTIN_TEMPLATES)
    known.update({template.id: template for template in templates})
    eos = frozenset(eos_token_ids) if eos_token_ids is not None else None

    def spct_reward(
        prompts: Sequence[Any],
        completions: Sequence[Any],
        *,
        permutation: Sequence[Sequence[int]],
        best: Sequence[int | None],
        rating: Sequence[int | None],
        template_id: Sequence[str],
        completion_ids: Sequence[Sequence[int]] | None = None,
        source: Sequence[str] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: Any,
    ) -> list[float]:
        """+1 / -1 per completion; TRL passes every dataset column as a keyword argument."""
        verdicts: list[Verdict] = []
        for index, completion in enumerate(completions):
            perm = tuple(permutation[index])
            label = Label(n=len(perm), best=best[index], rating=rating[index])
            truncated = eos is not None and completion_ids is not None and _truncated(completion_ids[index], eos)
            verdicts.append(
                judge_text(
                    completion_text(completion),
                    label,
                    perm,
                    _template(known, template_id[index]),
                    finish_reason="length" if truncated else "stop",
                )
            )
        if log_metric is not None and verdicts:
            _log(log_metric, metric_prefix, verdicts, source)
        return [1.0 if verdict.correct else -1.0 for verdict in verdicts]

    return spct_reward


spct_reward: RewardFunction = make_spct_reward()
"""The SPCT reward over the built-in templates, without truncation detection (see `make_spct_reward`).

Usable as ``trl grpo --reward_funcs grmjudge.training.rewards.spct_reward``.
"""


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a conversational list whose last message is the reply."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion:
        last: Any = completion[-1]  # pyright: ignore[reportUnknownVariableType]
        if isinstance(last, Mapping) and isinstance(last.get("content"), str):  # pyright: ignore[reportUnknownMemberType]
            return str(last["content"])  # pyright: ignore[reportUnknownArgumentType]
    kind: str = type(completion).__name__  # pyright: ignore[reportUnknownMemberType, reportUnknownArgumentType]
    raise InvalidInputError(f"a completion must be a string or a list of messages, got {kind}")


def _is_tie(scores: Sequence[int], label: Label) -> bool:
    if label.best is None or len(scores) != label.n:
        return False
    top = scores[label.best]
    return top == max(scores) and sum(1 for value in scores if value == top) > 1


def _truncated(ids: Sequence[int], eos: frozenset[int]) -> bool:
    return not ids or ids[-1] not in eos


def _template(known: Mapping[str, PromptTemplate], template_id: str) -> PromptTemplate:
    try:
        return known[template_id]
    except KeyError:
        raise ConfigurationError(
            f"unknown template_id {template_id!r} in the dataset; pass the template to make_spct_reward(templates=...)"
        ) from None


def _check_permutation(permutation: Permutation, n: int) -> None:
    if sorted(permutation) != list(range(n)):
        raise InvalidInputError(f"permutation {tuple(permutation)} is not a permutation of {n} responses")


def _log(
    log_metric: Callable[[str, float], None], prefix: str, verdicts: Sequence[Verdict], source: Sequence[str] | None
) -> None:
    total = len(verdicts)
    log_metric(f"{prefix}/accuracy", sum(v.correct for v in verdicts) / total)
    log_metric(f"{prefix}/parse_failure_rate", sum(v.failure is not None for v in verdicts) / total)
    log_metric(f"{prefix}/tie_rate", sum(v.tie for v in verdicts) / total)
    if source is None:
        return
    by_source: dict[str, list[bool]] = defaultdict(list)
    for verdict, name in zip(verdicts, source, strict=True):
        by_source[name].append(verdict.correct)
    for name, outcomes in sorted(by_source.items()):
        log_metric(f"{prefix}/accuracy/{name}", sum(outcomes) / len(outcomes))
