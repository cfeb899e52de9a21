"""A scripted GRM for the reward tests: it scores each response it is shown by the number the response ends with.

A response ``"... =7"`` scores 7 and one without a trailing number scores ``1 + len(text) % 10``, wherever it is
shown, so rewards are known in advance and shuffled orders must map back. Every request is recorded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from grmjudge import Judge, JudgeSettings
from grmjudge.backends import FunctionBackend
from grmjudge.types import GenerationRequest

BLOCK = re.compile(r"^\[The Begin of Response (\d+)\]\n(.*?)\n\[The End of Response \1\]$", re.MULTILINE | re.DOTALL)
TRAILING_NUMBER = re.compile(r"=(\d+)$")


def shown(request: GenerationRequest) -> list[str]:
    """The responses a request showed, in prompt order."""
    return [body for _, body in BLOCK.findall(request.messages[-1].content)]


def score_of(text: str) -> int:
    match = TRAILING_NUMBER.search(text)
    return int(match.group(1)) if match else 1 + len(text) % 10


def judgement(scores: Sequence[int]) -> str:
    return f"Specific Criteria: length.\nAnalysis: scripted.\nScores: \\boxed{{{', '.join(map(str, scores))}}}"


@dataclass
class ScriptedGRM:
    """A FunctionBackend function; ``fails(shown_responses)`` makes a request answer without a score box."""

    fails: Callable[[list[str]], bool] = lambda responses: False
    requests: list[GenerationRequest] = field(default_factory=list[GenerationRequest])

    def __call__(self, request: GenerationRequest) -> list[str]:
        self.requests.append(request)
        responses = shown(request)
        text = "I cannot decide." if self.fails(responses) else judgement([score_of(r) for r in responses])
        return [text] * request.n

    def judge(self, **settings: object) -> Judge:
        """A judge on this GRM that never re-asks, so request counts are exact."""
        return Judge(
            FunctionBackend(self), settings=JudgeSettings.model_validate({"max_resample_rounds": 0, **settings})
        )
