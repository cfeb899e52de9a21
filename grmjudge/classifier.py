"""ChatClassifier: score whole chats with a one-label sequence classifier (a scalar reward model).

Meta RMs (METHOD.md §8) and scalar reward models are the same kind of model, so the classifiers live with
the meta RMs in ``grmjudge.meta``; this module gathers the classifier names in one place. The
implementations are loaded on first use, so importing this module stays light:

- ``TransformersChatClassifier``: a local ``AutoModelForSequenceClassification`` (extra ``hf``);
- ``HTTPChatClassifier``: a classifier served by vLLM, over its ``/classify`` endpoint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grmjudge.meta.base import ChatClassifier, ChatScores, ClassifierMetaScorer, InputTooLongError, check_chats

if TYPE_CHECKING:
    from grmjudge.meta.http import HTTPChatClassifier
    from grmjudge.meta.transformers import TransformersChatClassifier

__all__ = [
    "ChatClassifier",
    "ChatScores",
    "ClassifierMetaScorer",
    "HTTPChatClassifier",
    "InputTooLongError",
    "TransformersChatClassifier",
    "check_chats",
]


def __getattr__(name: str) -> Any:
    """Load the implementations on first use: the local one needs torch and transformers."""
    if name == "TransformersChatClassifier":
        from grmjudge.meta.transformers import TransformersChatClassifier

        return TransformersChatClassifier
    if name == "HTTPChatClassifier":
        from grmjudge.meta.http import HTTPChatClassifier

        return HTTPChatClassifier
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
