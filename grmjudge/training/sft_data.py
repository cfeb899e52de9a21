"""SFT data for stage 1: conversational prompt-completion rows, and the mix with general instruction data.

Light (no ML framework), so that the data can be checked before a GPU job starts.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from grmjudge.exceptions import InvalidInputError
from grmjudge.rows import read_checked
from grmjudge.types import Message

__all__ = ["load_prompt_completion", "mix_general"]


def load_prompt_completion(paths: Iterable[str | Path]) -> list[dict[str, Any]]:
    """Conversational prompt-completion rows from files of prompt/completion or ``messages`` rows.

    String prompts and completions become one user and one assistant turn; a ``messages`` row is split
    before its last (assistant) turn. Bad rows raise a [`DataError`][grmjudge.rows.DataError].
    """
    return [row for path in paths for row in read_checked(path, _prompt_completion)]


def mix_general(
    rm_rows: Sequence[dict[str, Any]], general_rows: Sequence[dict[str, Any]], ratio: float, seed: int
) -> tuple[list[dict[str, Any]], int]:
    """RM rows plus enough general rows that they make ``ratio`` of the mix (all of them if too few), shuffled."""
    wanted = round(len(rm_rows) * ratio / (1.0 - ratio)) if ratio > 0 else 0
    rng = random.Random(seed)
    general = rng.sample(list(general_rows), min(wanted, len(general_rows)))
    mixed = [*rm_rows, *general]
    rng.shuffle(mixed)
    return mixed, len(general)


def _prompt_completion(row: Mapping[str, Any]) -> dict[str, Any]:
    if "messages" in row:
        messages = [Message.model_validate(m) for m in row["messages"]]
        if len(messages) < 2 or messages[-1].role != "assistant":
            raise InvalidInputError("a 'messages' row must end with an assistant turn after at least one other turn")
        prompt, completion = messages[:-1], messages[-1:]
    else:
        prompt = _turns(row["prompt"], "user", "prompt")
        completion = _turns(row["completion"], "assistant", "completion")
        if len(completion) != 1 or completion[0].role != "assistant":
            raise InvalidInputError("the completion must be one assistant turn")
    if not prompt:
        raise InvalidInputError("the prompt is empty")
    return {
        "prompt": [m.model_dump() for m in prompt],
        "completion": [m.model_dump() for m in completion],
    }


def _turns(value: Any, role: str, name: str) -> list[Message]:
    if isinstance(value, str):
        return [Message.model_validate({"role": role, "content": value})]
    if not isinstance(value, list):
        raise InvalidInputError(f"{name} must be a string or a list of messages")
    turns: list[Any] = value  # pyright: ignore[reportUnknownVariableType]
    return [Message.model_validate(m) for m in turns]
