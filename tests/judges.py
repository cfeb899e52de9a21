"""Scripted judge functions shared by the tests: small real implementations, not mocks."""

from __future__ import annotations

import re

from grmjudge.types import GenerationRequest

BLOCK = re.compile(r"\[The Begin of Response (\d+)\]\n(.*?)\n\[The End of Response \1\]", re.DOTALL)


def shown_responses(request: GenerationRequest) -> list[str]:
    """The response texts in the order the prompt shows them."""
    return [text for _, text in BLOCK.findall(request.messages[-1].content)]


def length_score(text: str) -> int:
    """A content-dependent score in 1..10, so un-shuffling mistakes change the totals."""
    return len(text) % 10 + 1


def judgement(scores: list[int]) -> str:
    return (
        "Specific Criteria: Accuracy (Weight: 60%), Clarity (Weight: 40%).\n"
        "Analysis: Response 1 is compared with the others.\n"
        f"Scores: \\boxed{{{', '.join(map(str, scores))}}}"
    )


def by_length(request: GenerationRequest) -> list[str]:
    """Score each shown response by its length; n identical judgements."""
    return [judgement([length_score(t) for t in shown_responses(request)])] * request.n
