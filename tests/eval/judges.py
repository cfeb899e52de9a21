"""Scripted judges for the eval tests: small real implementations that read the scores written into the data.

A response carries its score as ``(score N)``; the judge writes a well-formed judgement giving each shown response
its own score, so every sample agrees and greedy, Voting@k and MetaRM@k all see the same ranking. Two markers
script failures: ``(unparseable)`` makes the judgement carry no ``\\boxed{}`` (a parse failure, hence no verdict),
and ``(fail if first)`` does the same only when that response is shown first (a one-game failure in JudgeBench).
``(first wins)`` makes a position-biased judge: the first shown response gets 8, the second 2.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from grmjudge.classifier import ChatClassifier, ChatScores
from grmjudge.types import GenerationRequest, Message, Usage
from tests.judges import judgement, shown_responses

SCORE = re.compile(r"\(score (\d+)\)")


def marked_score(text: str) -> int:
    """The score written into a response."""
    match = SCORE.search(text)
    assert match is not None, f"fixture response without a (score N) marker: {text!r}"
    return int(match.group(1))


def scripted_judgement(shown: Sequence[str]) -> str:
    """The judgement for responses in the order shown."""
    if any("(unparseable)" in text for text in shown) or "(fail if first)" in shown[0]:
        return "Specific Criteria: none.\nAnalysis: I cannot decide.\nScores: none"
    if any("(first wins)" in text for text in shown):
        return judgement([8, 2])
    return judgement([marked_score(text) for text in shown])


def scripted(request: GenerationRequest) -> list[str]:
    """A FunctionBackend function: ``n`` identical scripted judgements."""
    return [scripted_judgement(shown_responses(request))] * request.n


class MarkedScoreClassifier(ChatClassifier):
    """A scalar RM that rates the last turn by its ``(score N)`` marker (a real classifier, minus the model)."""

    name = "marked-score"
    model = "marked-score"

    async def classify(self, chats: Sequence[Sequence[Message]]) -> ChatScores:
        self._check_open()
        return ChatScores(
            scores=tuple(float(marked_score(chat[-1].content)) for chat in chats), usage=Usage(requests=1)
        )
