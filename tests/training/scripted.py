"""A scripted sampler for the training tests: a FunctionBackend whose judgements follow a per-item script.

Items are built by `pair_item` / `single_item` / `list_item`: the labelled-best response contains ``GOOD``
(single responses say ``CORRECT`` or ``WRONG``), and the query starts with the item id, so the backend can
find, in each rendered prompt, which item it is and where the best response is shown. Each request consumes
behaviours from the item's script (one list for non-hinted requests, one for hinted ones) in call order;
the tests compare multisets of outcomes, so the order requests arrive in does not matter.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence

from grmjudge.backends import FunctionBackend
from grmjudge.prompts import HINT_SUFFIX
from grmjudge.training.data import SPCTExample
from grmjudge.types import Completion, GenerationRequest, Message

Behaviour = str
"""right | wrong | tie | nobox | count | range | truncated"""

_BLOCK = re.compile(r"\[The Begin of Response(?: (\d+))?\]\n(.*?)\n\[The End of Response", re.DOTALL)
_ITEM = re.compile(r"User: (item-[\w-]+):")
_HINT = re.compile(re.escape(HINT_SUFFIX.split("{")[0]) + r"(\d+)")


def pair_item(item_id: str, *, best_first: bool = True, source: str = "pairs") -> SPCTExample:
    good, bad = f"GOOD answer to {item_id}", f"weak answer to {item_id}"
    responses = (good, bad) if best_first else (bad, good)
    return SPCTExample(
        id=item_id,
        query=f"{item_id}: what is the answer?",
        responses=responses,
        best=0 if best_first else 1,
        source=source,
    )


def list_item(item_id: str, n: int = 3, best: int = 1, source: str = "lists") -> SPCTExample:
    responses = tuple(f"GOOD answer to {item_id}" if i == best else f"answer {i} to {item_id}" for i in range(n))
    return SPCTExample(id=item_id, query=f"{item_id}: which is best?", responses=responses, best=best, source=source)


def single_item(item_id: str, rating: int, source: str = "singles") -> SPCTExample:
    text = f"{'CORRECT' if rating else 'WRONG'} answer to {item_id}"
    return SPCTExample(id=item_id, query=f"{item_id}: is this right?", responses=(text,), rating=rating, source=source)


HEAD = "Specific Criteria: Accuracy (100%).\nAnalysis: checked.\n"


def judgement(behaviour: Behaviour, shown: Sequence[str], head: str = HEAD) -> Completion:
    """The judgement text a behaviour produces for the responses in the order shown."""
    n = len(shown)
    if n == 1:
        truth = 1 if shown[0].startswith("CORRECT") else 0
        scores = {"right": [truth], "wrong": [1 - truth], "tie": [truth], "truncated": [truth]}.get(behaviour)
    else:
        best = next(i for i, text in enumerate(shown) if text.startswith("GOOD"))
        other = (best + 1) % n
        right = [9 if i == best else 2 for i in range(n)]
        wrong = [9 if i == other else 2 for i in range(n)]
        scores = {"right": right, "wrong": wrong, "tie": [5] * n, "truncated": right}.get(behaviour)
    if behaviour == "nobox":
        return Completion(text=head + "Scores: 9, 2")
    if behaviour == "count":
        return Completion(text=head + "Scores: \\boxed{" + ", ".join(["7"] * (n + 1)) + "}")
    if behaviour == "range":
        return Completion(text=head + "Scores: \\boxed{" + ", ".join(["11"] * n) + "}")
    assert scores is not None, behaviour
    text = head + "Scores: \\boxed{" + ", ".join(map(str, scores)) + "}"
    return Completion(text=text, finish_reason="length" if behaviour == "truncated" else "stop")


class ScriptedSampler:
    """Holds the scripts and records every request: ``calls[item][hinted]`` counts completions asked for."""

    def __init__(
        self,
        non_hinted: Mapping[str, Sequence[Behaviour]],
        hinted: Mapping[str, Sequence[Behaviour]] | None = None,
        *,
        head: str = HEAD,
    ) -> None:
        self.head = head
        self.scripts = {
            False: {k: list(v) for k, v in non_hinted.items()},
            True: {k: list(v) for k, v in (hinted or {}).items()},
        }
        self.calls: dict[str, dict[bool, int]] = defaultdict(lambda: {False: 0, True: 0})
        self.prompts: list[tuple[str, bool, str]] = []
        self.hint_errors: list[str] = []

    def backend(self) -> FunctionBackend:
        return FunctionBackend(self._reply, model="scripted")

    def _reply(self, request: GenerationRequest) -> list[Completion]:
        prompt = request.messages[-1].content
        item = _ITEM.search(prompt)
        assert item is not None, prompt[:200]
        item_id = item.group(1)
        shown = [text for _, text in _BLOCK.findall(prompt)]
        hint = _HINT.search(prompt)
        hinted = hint is not None
        if hint is not None and not shown[int(hint.group(1)) - 1].startswith("GOOD"):
            self.hint_errors.append(item_id)
        self.calls[item_id][hinted] += request.n
        self.prompts.append((item_id, hinted, prompt))
        script = self.scripts[hinted][item_id]
        return [judgement(script.pop(0), shown, self.head) for _ in range(request.n)]


def prompt_of(messages: Sequence[Message | Mapping[str, str]]) -> str:
    last = messages[-1]
    return last.content if isinstance(last, Message) else last["content"]
