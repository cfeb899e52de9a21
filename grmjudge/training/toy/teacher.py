r"""A noisy rule-based teacher: writes principle, critique and ``\boxed{}`` scores in the Default format.

The teacher knows every right answer, but on a set fraction of items (``error_rate``) it works the question
out wrongly: its principle names a near miss as the answer, and its critique and scores follow from that
mistake, so the transcript reads as confidently as a right one and is wrong under the strict rule. Cold-start
training on these transcripts teaches the model the format *and* the mistakes; rejection sampling then keeps
only the judgements that agree with the labels, which is what makes the filter matter.

Which items the teacher gets wrong, and the scores it gives, are seeded by the item id.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from grmjudge.training.data import SPCTExample
from grmjudge.training.toy.tasks import solve

__all__ = ["Teacher", "transcript"]

_WEIGHTS = {
    "sum": "Correctness of the sum (80%), a single number (20%).",
    "largest": "Correctness of the largest number (80%), a single number (20%).",
    "sort": "Correct increasing order (80%), every number kept (20%).",
    "count": "Correctness of the count (80%), a single number (20%).",
}


def transcript(example: SPCTExample, believed: str, rng: random.Random) -> str:
    """The three-line judgement of a judge who believes the answer is ``believed``.

    Responses appear as shown (``example.responses`` in prompt order). A response equal to ``believed`` gets
    8-10, any other 1-4; a single response gets 1 or 0.
    """
    single = example.n == 1
    criteria = f"Specific Criteria: The answer must be {believed}. {_WEIGHTS[example.source]}"
    verdicts: list[str] = []
    scores: list[int] = []
    for index, response in enumerate(example.responses):
        right = response == believed
        name = "The response" if single else f"Response {index + 1}"
        verdicts.append(f"{name} says {response}, which is {'correct' if right else 'wrong'}.")
        scores.append(int(right) if single else (rng.randint(8, 10) if right else rng.randint(1, 4)))
    analysis = "Analysis: " + " ".join(verdicts)
    boxed = "Scores: \\boxed{" + ", ".join(map(str, scores)) + "}"
    return "\n".join((criteria, analysis, boxed))


@dataclass(frozen=True)
class Teacher:
    """Writes a transcript per item, wrong on ``error_rate`` of the items (seeded by ``seed`` and the item id)."""

    error_rate: float = 0.3
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.error_rate < 1.0:
            raise ValueError(f"error_rate must be in [0, 1), got {self.error_rate}")

    def mistaken(self, example: SPCTExample) -> bool:
        """Whether the teacher gets this item wrong."""
        return random.Random(f"teacher:{self.seed}:{example.id}:err").random() < self.error_rate

    def judge(self, example: SPCTExample) -> str:
        """The teacher's transcript for ``example``, responses in the order given."""
        rng = random.Random(f"teacher:{self.seed}:{example.id}")
        answer = solve(example.source, example.query[-1].content)
        believed = answer
        if self.mistaken(example):
            shown_wrong = [r for r in example.responses if r != answer]
            # a right single response: the mistaken teacher believes some other value
            believed = rng.choice(shown_wrong) if shown_wrong else str(int(answer.split()[0]) + 1)
        return transcript(example, believed, rng)
