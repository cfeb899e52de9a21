"""Meta reward models: score each sampled judgement so meta-guided voting keeps the best ones (METHOD.md §8)."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from grmjudge._lifecycle import Closable
from grmjudge.exceptions import ConfigurationError
from grmjudge.prompts import meta_messages
from grmjudge.types import Message

if TYPE_CHECKING:
    from grmjudge.meta.http import HTTPMetaScorer
    from grmjudge.meta.transformers import TransformersMetaScorer


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


def __getattr__(name: str) -> Any:
    """Load the model-backed scorers on first use: the local one needs torch and transformers."""
    if name == "TransformersMetaScorer":
        from grmjudge.meta.transformers import TransformersMetaScorer

        return TransformersMetaScorer
    if name == "HTTPMetaScorer":
        from grmjudge.meta.http import HTTPMetaScorer

        return HTTPMetaScorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def meta_from_spec(spec: str, base_url: str | None = None) -> MetaScorer:
    """The meta RM a command line names: ``http:MODEL`` (a vLLM classifier at ``base_url``) or ``hf:PATH``."""
    kind, sep, model = spec.partition(":")
    if not sep or not model or kind not in ("http", "hf"):
        raise ConfigurationError(
            f"--meta must look like 'http:MODEL' (with --meta-base-url) or 'hf:PATH', got {spec!r}"
        )
    if kind == "http":
        if base_url is None:
            raise ConfigurationError("--meta http:MODEL needs --meta-base-url, the vLLM server that serves it")
        from grmjudge.meta.http import HTTPMetaScorer

        return HTTPMetaScorer(base_url, model)
    from grmjudge.meta.transformers import TransformersMetaScorer

    return TransformersMetaScorer(model)


__all__ = ["FunctionMetaScorer", "HTTPMetaScorer", "MetaInput", "MetaScorer", "TransformersMetaScorer"]
