"""TransformersMetaScorer: a meta RM run locally with transformers (extra ``hf``)."""

from __future__ import annotations

import os
from typing import Any

from grmjudge._classifier_hf import TransformersChatClassifier
from grmjudge.classifier import ClassifierMetaScorer


class TransformersMetaScorer(ClassifierMetaScorer):
    """A one-label sequence classifier that rates each judgement by the meta-RM chat (METHOD.md §8).

    The arguments are those of :class:`~grmjudge.classifier.TransformersChatClassifier`: the chat template of
    ``model``'s tokenizer renders the chat, batches of ``batch_size`` run in a worker thread, and a chat
    longer than the model's context raises :class:`~grmjudge.classifier.InputTooLongError`.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | Any,
        *,
        tokenizer: str | os.PathLike[str] | Any | None = None,
        batch_size: int = 16,
        dtype: str | Any | None = None,
        device: str | Any | None = None,
        max_length: int | None = None,
    ) -> None:
        super().__init__(
            TransformersChatClassifier(
                model, tokenizer=tokenizer, batch_size=batch_size, dtype=dtype, device=device, max_length=max_length
            )
        )
