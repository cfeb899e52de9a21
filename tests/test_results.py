"""Result records: built on the judge's fast path exactly as validation builds them; derived fields split once."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

import grmjudge.prompts
import grmjudge.results
from grmjudge import Judge, JudgeSettings
from grmjudge._records import validated
from grmjudge.backends import FunctionBackend
from grmjudge.exceptions import ServerError
from grmjudge.prompts import DEFAULT_TEMPLATE, PromptTemplate
from grmjudge.results import NoVerdict, Provenance, Sample, SampleError, ScoreResult
from grmjudge.types import Completion, Generation, GenerationRequest, Message, Usage

from .judges import by_length, judgement

QUERY = "Which answer is right?"
RESPONSES = ["four", "five, since 2 + 2 = 5", "it depends"]


def rebuilt(value: Any) -> Any:
    """``value`` built again through validation: each record from the fields it was given, nested ones first."""
    if isinstance(value, BaseModel):
        return type(value)(**{name: rebuilt(getattr(value, name)) for name in value.model_fields_set})
    if isinstance(value, list | tuple):
        items: list[Any] | tuple[Any, ...] = value  # pyright: ignore[reportUnknownVariableType]
        return type(items)(rebuilt(item) for item in items)
    return value


def assert_same_record(fast: Any, slow: Any) -> None:
    """Field for field: the same types, values and set fields, all the way down."""
    assert type(fast) is type(slow)
    if isinstance(fast, BaseModel):
        assert fast.model_fields_set == slow.model_fields_set
        for name in type(fast).model_fields:
            assert_same_record(getattr(fast, name), getattr(slow, name))
    elif isinstance(fast, list | tuple):
        assert len(fast) == len(slow)  # pyright: ignore[reportUnknownArgumentType]
        for a, b in zip(fast, slow, strict=True):  # pyright: ignore[reportUnknownArgumentType]
            assert_same_record(a, b)
    else:
        assert fast == slow


def varied(request: GenerationRequest) -> list[Completion]:
    """Valid judgements, a parse failure, a truncation and a lone surrogate, so every kind of sample is built."""
    texts = by_length(request)
    bad = [Completion(text="no box"), Completion(text=texts[0], finish_reason="length"), Completion(text="a\ud800")]
    return [
        bad[(request.seed or 0) % 5] if i == 0 and (request.seed or 0) % 5 < 3 else Completion(text=t)
        for i, t in enumerate(texts)
    ]


@pytest.mark.anyio
@pytest.mark.parametrize("k", [1, 4, 8])
async def test_a_judged_result_is_the_one_validation_builds(k: int) -> None:
    result = await Judge(FunctionBackend(varied)).score(QUERY, RESPONSES, k=k)
    slow = rebuilt(result)
    assert_same_record(result, slow)
    assert result == slow
    assert result.model_dump_json() == slow.model_dump_json()
    assert result.model_dump_json(exclude_unset=True) == slow.model_dump_json(exclude_unset=True)
    assert ScoreResult.model_validate_json(result.model_dump_json()) == result


@pytest.mark.anyio
async def test_results_without_a_verdict_are_the_ones_validation_builds() -> None:
    def fail(request: GenerationRequest) -> list[str]:
        raise ServerError("down", status_code=503, body="", retry_after=None, backend="function")

    result = await Judge(FunctionBackend(fail)).score(QUERY, RESPONSES, k=4)
    assert result.no_verdict is not None and result.no_verdict.failures == {"ServerError": 4}
    slow = rebuilt(result)
    assert_same_record(result, slow)
    assert result.model_dump_json() == slow.model_dump_json()


def test_validated_builds_what_the_constructor_builds() -> None:
    error = SampleError(kind="parse", reason="no_boxed", message="no box")
    cases: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (Sample, {"index": 2, "permutation": (1, 0), "text": judgement([3, 4]), "scores": (4, 3), "kept": True}),
        (Sample, {"index": 0, "permutation": (0, 1), "text": "x", "error": error, "seed": 7, "attempt": 1}),
        (SampleError, {"kind": "backend", "reason": "ServerError", "message": "down"}),
        (NoVerdict, {"failures": {"no_boxed": 3}}),
        (Usage, {"requests": 1, "prompt_tokens": True}),  # a JSON true is converted as validation converts it
        (Completion, {"text": "t", "finish_reason": "length"}),
        (Generation, {"completions": (Completion(text="t"),), "model": None}),
        (GenerationRequest, {"messages": (Message(role="user", content="q"),), "n": 4, "seed": 3}),
    ]
    for cls, values in cases:
        fast, slow = validated(cls, **values), cls(**values)
        assert_same_record(fast, slow)
        assert fast.model_dump_json() == slow.model_dump_json()


def test_validated_still_refuses_what_the_constructor_refuses() -> None:
    with pytest.raises(ValueError, match="kind"):
        validated(SampleError, kind="other", reason="x", message="y")
    with pytest.raises(ValueError, match="n"):
        validated(GenerationRequest, messages=(), n=0)


def _counting(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[object]:
    calls: list[object] = []
    original = getattr(module, name)

    def counted(*args: Any) -> Any:
        calls.append(args[0])
        return original(*args)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_principles_and_critique_are_split_once_per_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch, grmjudge.results, "split_judgement")
    sample = Sample(index=0, permutation=(0, 1), text=judgement([3, 4]), scores=(3, 4), kept=True)
    dumps = {sample.model_dump_json() for _ in range(3)}
    assert len(dumps) == 1 and sample.principles and sample.critique and sample.model_dump()["critique"]
    assert len(calls) == 1
    assert "_judgement_parts" not in sample.model_dump() and "_judgement" not in repr(sample)
    assert sample == Sample.model_validate_json(sample.model_dump_json())  # the kept split is no field


def test_a_copy_with_another_text_splits_its_own_text() -> None:
    sample = Sample(index=0, permutation=(0,), text="Specific Criteria: old\nAnalysis: old one")
    assert (sample.principles, sample.critique) == ("old", "old one")
    copied = sample.model_copy(update={"text": "Analysis: new one"})
    assert (copied.principles, copied.critique) == (None, "new one")
    assert (sample.principles, sample.critique) == ("old", "old one")
    emptied = sample.model_copy(update={"text": None})
    assert (emptied.principles, emptied.critique) == (None, None)


def test_the_template_hash_is_computed_once_and_follows_copies(monkeypatch: pytest.MonkeyPatch) -> None:
    template = PromptTemplate(id="t", text="{context}\n{responses}\nScore them.")
    calls = _counting(monkeypatch, grmjudge.prompts.hashlib, "sha256")
    first = template.hash
    assert [template.hash for _ in range(3)] == [first] * 3 and len(calls) == 1
    changed = template.model_copy(update={"text": "{context}\n{responses}\nScore them twice."})
    assert changed.hash != first
    assert changed.hash == PromptTemplate(id="t", text="{context}\n{responses}\nScore them twice.").hash
    assert template.model_copy(update={"score_range": (0, 1)}).hash != first
    assert template == PromptTemplate(id="t", text="{context}\n{responses}\nScore them.")


@pytest.mark.anyio
async def test_provenance_records_the_template_hash() -> None:
    result = await Judge(FunctionBackend(by_length), settings=JudgeSettings()).score(QUERY, RESPONSES[:2], k=2)
    assert isinstance(result.provenance, Provenance)
    assert result.provenance.template_hash == DEFAULT_TEMPLATE.hash
    assert len(result.provenance.template_hash) == 16
