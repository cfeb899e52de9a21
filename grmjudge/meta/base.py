"""The interfaces of meta RMs and of the one-label classifiers they run on, and the adapter between them.

Meta RMs (METHOD.md §8) and scalar reward models are the same kind of model: a transformer with a scalar
head that reads a chat, rendered with the model's own chat template, and returns one unbounded logit.
[`MetaScorer`][grmjudge.meta.MetaScorer] rates judgements, [`ChatClassifier`][grmjudge.classifier.ChatClassifier]
scores chats, and [`ClassifierMetaScorer`][grmjudge.classifier.ClassifierMetaScorer] turns any classifier into a
meta scorer. The model-backed implementations live in ``grmjudge.meta.http`` and ``grmjudge.meta.transformers``.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from grmjudge._lifecycle import Closable
from grmjudge.exceptions import InputTooLongError, InvalidInputError
from grmjudge.prompts import meta_messages
from grmjudge.types import Message, Usage

__all__ = [
    "ChatClassifier",
    "ChatScores",
    "ClassifierMetaScorer",
    "FunctionMetaScorer",
    "InputTooLongError",
    "MetaFunction",
    "MetaInput",
    "MetaScorer",
    "check_chats",
]


class MetaInput(BaseModel):
    """One judgement to rate, with the query and the responses **in the order that judgement saw them**."""

    model_config = ConfigDict(frozen=True)

    query: tuple[Message, ...]
    responses: tuple[str, ...]
    judgement: str

    @property
    def messages(self) -> tuple[Message, ...]:
        """The meta-RM chat: the meta template as the user turn, the judgement as the assistant turn."""
        return meta_messages(self.query, self.responses, self.judgement)


class MetaScorer(Closable, ABC):
    """Rates sampled judgements; a higher score means the judgement is more likely correct.

    ``aclose`` releases what the scorer holds (a model, connections).
    """

    @abstractmethod
    async def score(self, inputs: Sequence[MetaInput]) -> list[float]:
        """One score per input, in order."""


MetaFunction = Callable[[Sequence[MetaInput]], Sequence[float] | Awaitable[Sequence[float]]]


class FunctionMetaScorer(MetaScorer):
    """Wrap a sync or async ``fn(inputs) -> scores``; for tests and custom meta RMs."""

    def __init__(self, fn: MetaFunction) -> None:
        self._fn = fn

    async def score(self, inputs: Sequence[MetaInput]) -> list[float]:
        scores = self._fn(inputs)
        if inspect.isawaitable(scores):
            scores = await scores
        return [float(s) for s in scores]


class ChatScores(BaseModel):
    """One raw logit per chat, in call order, and what producing them cost.

    ``usage.requests`` counts model calls (HTTP requests, or local forward batches) and ``prompt_tokens``
    the tokens read; a classifier generates nothing, so ``completion_tokens`` is 0.
    """

    model_config = ConfigDict(frozen=True)

    scores: tuple[float, ...]
    usage: Usage


class ChatClassifier(Closable, ABC):
    """Scores chats with a one-label sequence classifier: one unbounded logit per chat, higher is better.

    The chat is rendered with the model's own chat template, without a generation prompt (the last turn is
    the one being rated). Classifiers are async context managers; :meth:`aclose` releases what they created.
    """

    name: ClassVar[str] = "classifier"
    model: str = "unknown"

    @abstractmethod
    async def classify(self, chats: Sequence[Sequence[Message]]) -> ChatScores:
        """Score every chat; raises :class:`InputTooLongError` for a chat longer than the context."""

    async def score_chats(self, chats: Sequence[Sequence[Message]]) -> list[float]:
        """One raw logit (no sigmoid) per chat, in order."""
        return list((await self.classify(chats)).scores)


def check_chats(chats: Sequence[Sequence[Message]]) -> list[tuple[Message, ...]]:
    """The chats as tuples, or :class:`InvalidInputError` naming the first empty or malformed one."""
    if isinstance(chats, str) or not isinstance(chats, Sequence):  # pyright: ignore[reportUnnecessaryIsInstance]
        raise InvalidInputError("chats must be a list of chats (each a list of messages)")
    checked: list[tuple[Message, ...]] = []
    for index, chat in enumerate(chats):
        messages = tuple(chat)
        if not messages:
            raise InvalidInputError(f"chats[{index}] is empty: a classifier needs at least one message")
        for message in messages:
            if not isinstance(message, Message):  # pyright: ignore[reportUnnecessaryIsInstance]
                raise InvalidInputError(f"chats[{index}] holds a {type(message).__name__}, not a Message")
        checked.append(messages)
    return checked


class ClassifierMetaScorer(MetaScorer):
    """Any :class:`ChatClassifier` as a meta RM: each judgement is rated as the chat ``MetaInput.messages``.

    That chat is the meta template as the user turn and the judgement as the assistant turn (METHOD.md §8).
    The classifier is closed with the scorer.
    """

    def __init__(self, classifier: ChatClassifier) -> None:
        self.classifier = classifier

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.classifier!r})"

    async def score(self, inputs: Sequence[MetaInput]) -> list[float]:
        return await self.classifier.score_chats([item.messages for item in inputs])

    async def aclose(self) -> None:
        await self.classifier.aclose()
        await super().aclose()
