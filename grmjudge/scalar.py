"""ScalarJudge: a scalar reward model with the Judge's call shape, to compare it with a GRM on the same data.

A scalar RM reads ``[*query, {"role": "assistant", "content": response}]`` and returns one logit per
response. It is deterministic and rates each response on its own, so there is nothing to sample, shuffle or
meta-filter: ``k`` must be 1 and ``meta`` false. The result is a :class:`~grmjudge.results.ScoreResult`
with one float per response in the caller's order, ``best`` their argmax (ties broken by the Judge's seeded
draw) and no samples.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from grmjudge._batch import BatchItem, JudgeItem, run_batch
from grmjudge._facade import JudgeFacade
from grmjudge._inputs import check_item_id, check_k, content_id, validate_input
from grmjudge._runtime import runs_on_runtime
from grmjudge._version import __version__
from grmjudge.classifier import ChatClassifier
from grmjudge.exceptions import InvalidInputError
from grmjudge.prompts import Query
from grmjudge.results import BatchResult, Provenance, ScoreResult
from grmjudge.settings import ShuffleMode
from grmjudge.types import Message
from grmjudge.voting import derive_seed, pick_best

T = TypeVar("T")

SCALAR_TEMPLATE_ID = "scalar-rm"
"""``provenance.template_id`` of a scalar RM: no judge template, the model's own chat template renders."""


class ScalarJudge(JudgeFacade):
    """A scalar reward model as a judge: ``await ScalarJudge(classifier).score(query, responses)``.

    ``seed`` seeds the tie-break between equal top scores, with the same derivation as
    :class:`~grmjudge.Judge` (``derive_seed(seed, item_id, "tie")``). The classifier is closed with the judge.
    """

    def __init__(self, classifier: ChatClassifier, *, seed: int = 0) -> None:
        self.classifier = classifier
        self.seed = seed

    def __repr__(self) -> str:
        return f"ScalarJudge({self.classifier!r})"

    @classmethod
    def from_transformers(cls, model: str | os.PathLike[str] | Any, *, seed: int = 0, **kw: Any) -> ScalarJudge:
        """A judge over a local one-label classifier; ``kw`` goes to ``TransformersChatClassifier``."""
        from grmjudge.meta.transformers import TransformersChatClassifier

        return cls(TransformersChatClassifier(model, **kw), seed=seed)

    @classmethod
    def from_http(
        cls, base_url: str, model: str, api_key: str | None = None, *, seed: int = 0, **kw: Any
    ) -> ScalarJudge:
        """A judge over a classifier served by vLLM; ``kw`` goes to ``HTTPChatClassifier``."""
        from grmjudge.meta.http import HTTPChatClassifier

        return cls(HTTPChatClassifier(base_url, model, api_key, **kw), seed=seed)

    @runs_on_runtime
    async def score(
        self, query: Query, responses: Sequence[str], k: int = 1, meta: bool = False, *, item_id: str | None = None
    ) -> ScoreResult:
        """One raw reward per response, in the caller's order; ``best`` is the argmax.

        Raises:
            InvalidInputError: Bad input, ``k`` other than 1, ``meta=True``, or a chat longer than the
                model's context (:class:`~grmjudge.classifier.InputTooLongError`).
        """
        _check_call(k, meta)
        messages, texts = validate_input(query, responses)
        given_id = check_item_id(item_id)
        item = given_id if given_id is not None else content_id(messages, texts)
        chats = [(*messages, Message(role="assistant", content=text)) for text in texts]
        rated = await self.classifier.classify(chats)
        scores = list(rated.scores)
        return ScoreResult(
            scores=scores,
            best=pick_best(scores, random.Random(derive_seed(self.seed, item, "tie"))),
            n_valid=1,
            n_kept=1,
            spread=None,
            no_verdict=None,
            samples=[],
            usage=rated.usage,
            provenance=self._provenance(item),
        )

    @runs_on_runtime
    async def score_many(
        self, items: Iterable[BatchItem], k: int = 1, meta: bool = False, *, concurrency: int = 16
    ) -> list[BatchResult]:
        """Score many items, at most ``concurrency`` at a time, in input order; as :meth:`grmjudge.Judge.score_many`.

        An item that is malformed or raises (bad input, a chat too long) is recorded as that item's ``error``;
        the rest goes on. Items without an id get their position as id. A ``k`` other than 1 or ``meta=True``
        raises once, up front.
        """
        _check_call(k, meta)

        async def score_item(item: JudgeItem, item_id: str) -> ScoreResult:
            return await self.score(item.query, item.responses, k, meta, item_id=item_id)

        return await run_batch(items, score_item, concurrency=concurrency)

    async def aclose(self) -> None:
        """Close the classifier."""
        await self.classifier.aclose()
        await super().aclose()

    def _provenance(self, item_id: str) -> Provenance:
        return Provenance(
            grmjudge_version=__version__,
            backend=self.classifier.name,
            model=self.classifier.model,
            template_id=SCALAR_TEMPLATE_ID,
            template_hash="",
            k=1,
            meta=False,
            k_meta=None,
            shuffle=ShuffleMode.NONE.value,
            seed=self.seed,
            item_id=item_id,
            temperature=0.0,
            top_p=None,
            max_tokens=0,
            max_resample_rounds=0,
        )


def _check_call(k: int, meta: bool) -> None:
    check_k(k)
    if k != 1:
        raise InvalidInputError(f"scalar reward models are deterministic: k must be 1, got {k}")
    if meta:
        raise InvalidInputError("meta=True needs sampled judgements to rank; a scalar reward model has none")
