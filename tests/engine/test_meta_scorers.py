"""Meta RMs and scalar RMs on a real tiny classifier: locally with transformers and served by a real vLLM.

The classifier is random, so its scores mean nothing; what is checked is the plumbing: the chat template,
raw logits, batching, the order of scores, top-k_meta selection, and that the local and served model agree.

Local against served tolerance: ``HTTP_TOLERANCE = 2e-5`` (absolute). Both run float32, but vLLM's CPU
kernels (its own attention, fused RMSNorm, a different batch layout) differ from torch's eager ones in the
last bits; measured differences are about 1e-7 on logits of about 0.2. Every comparison below also checks
that the scores being compared are further apart than that tolerance, so a mixed-up order cannot pass.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

import pytest

from grmjudge import InvalidInputError, Judge, JudgeSettings, MetaInput
from grmjudge.classifier import InputTooLongError
from grmjudge.exceptions import ConfigurationError
from grmjudge.meta import HTTPMetaScorer, TransformersMetaScorer
from grmjudge.scalar import ScalarJudge
from grmjudge.testing import FunctionBackend
from grmjudge.testing.vllm_server import VLLMServer
from grmjudge.types import GenerationRequest, Message
from grmjudge.voting import apply_permutation
from tests.judges import judgement, shown_responses

pytestmark = [pytest.mark.engine, pytest.mark.anyio]

HTTP_TOLERANCE = 2e-5
QUERY = "How do I sort a list in Python?"
RESPONSES = ["Use sorted(xs) for a new list.", "Call xs.sort() to sort the list in place, it returns None."]
LONG_TEXT = "The quick brown fox jumps over the lazy dog. " * 400  # about 4,000 tokens, the context is 2,048


def meta_inputs() -> list[MetaInput]:
    """Judgements of different lengths and wording, in both response orders."""
    query = (Message(role="user", content=QUERY),)
    inputs: list[MetaInput] = []
    for i in range(10):
        responses = tuple(RESPONSES if i % 2 == 0 else reversed(RESPONSES))
        text = f"Analysis: sample {i}. " + "Response 1 is more detailed. " * i + judgement([8 - i % 3, 3 + i % 4])
        inputs.append(MetaInput(query=query, responses=responses, judgement=text))
    return inputs


def direct_scores(model_dir: Path, chats: list[list[Message]]) -> list[float]:
    """An independent reference: the tokenizer's chat template, then one unpadded forward pass per chat."""
    torch: Any = pytest.importorskip("torch")
    transformers: Any = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(model_dir).eval()
    scores: list[float] = []
    for chat in chats:
        text = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in chat)  # ChatML, no generation prompt
        assert tokenizer.apply_chat_template([m.model_dump() for m in chat], tokenize=False) == text
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            scores.append(float(model(**ids).logits[0, 0]))
    return scores


def assert_distinct(scores: list[float], gap: float) -> None:
    """The scores differ pairwise by more than ``gap``, so comparing them element-wise checks their order."""
    assert all(abs(a - b) > gap for a, b in itertools.combinations(scores, 2)), scores


def varied_judgements(request: GenerationRequest) -> list[str]:
    """n valid judgements that differ in wording and scores, so meta scores and vote sums tell them apart."""
    shown = len(shown_responses(request))
    texts: list[str] = []
    for j in range(request.n):
        tag = (request.seed or 0) % 1000 + j
        scores = [(tag + m) % 10 + 1 for m in range(shown)]
        texts.append(f"Analysis: sample {tag}. " + "The first response is clearer. " * (tag % 7) + judgement(scores))
    return texts


# --- local meta scorer ------------------------------------------------------------------------------------


async def test_local_scores_are_finite_deterministic_and_batch_size_independent(tiny_classifier_dir: Path) -> None:
    inputs = meta_inputs()
    async with TransformersMetaScorer(tiny_classifier_dir, batch_size=1) as one:
        singles = await one.score(inputs)
    async with TransformersMetaScorer(tiny_classifier_dir, batch_size=8) as eight:
        batched = await eight.score(inputs)
        again = await eight.score(inputs)
    assert len(batched) == len(inputs)
    assert all(isinstance(s, float) and math.isfinite(s) for s in batched)
    assert again == batched
    assert_distinct(batched, 2 * HTTP_TOLERANCE)
    assert batched == pytest.approx(singles, abs=1e-5)


async def test_local_scores_are_the_raw_logits_of_the_chat_templated_text(tiny_classifier_dir: Path) -> None:
    inputs = meta_inputs()
    async with TransformersMetaScorer(tiny_classifier_dir, batch_size=4) as scorer:
        scores = await scorer.score(inputs)
    assert scores == pytest.approx(direct_scores(tiny_classifier_dir, [list(i.messages) for i in inputs]), abs=1e-5)


async def test_local_rejects_an_over_long_chat_naming_the_lengths(tiny_classifier_dir: Path) -> None:
    inputs = meta_inputs()[:2]
    long = MetaInput(query=inputs[0].query, responses=inputs[0].responses, judgement=LONG_TEXT)
    async with TransformersMetaScorer(tiny_classifier_dir) as scorer:
        with pytest.raises(InputTooLongError, match=r"chats\[2\] is \d+ tokens long, more than the 2048") as info:
            await scorer.score([*inputs, long])
    assert info.value.index == 2 and info.value.max_length == 2048
    assert info.value.length is not None and info.value.length > 2048


def test_local_needs_one_label_and_a_pad_token(tiny_classifier_dir: Path) -> None:
    transformers: Any = pytest.importorskip("transformers")
    auto = transformers.AutoModelForSequenceClassification
    config = transformers.AutoConfig.from_pretrained(tiny_classifier_dir, num_labels=2)
    with pytest.raises(ConfigurationError, match="has 2 labels; a scalar reward model needs exactly 1"):
        TransformersMetaScorer(auto.from_config(config), tokenizer=tiny_classifier_dir)
    no_pad = auto.from_pretrained(tiny_classifier_dir)
    no_pad.config.pad_token_id = None
    with pytest.raises(ConfigurationError, match="no pad_token_id"):
        TransformersMetaScorer(no_pad, tokenizer=tiny_classifier_dir)


# --- served meta scorer -----------------------------------------------------------------------------------


async def test_http_scores_match_the_local_scores(tiny_classifier_dir: Path, classifier_server: VLLMServer) -> None:
    inputs = meta_inputs()
    async with TransformersMetaScorer(tiny_classifier_dir) as local:
        expected = await local.score(inputs)
    assert_distinct(expected, 2 * HTTP_TOLERANCE)
    async with HTTPMetaScorer(classifier_server.base_url, classifier_server.model) as served:
        scores = await served.score(inputs)
    assert scores == pytest.approx(expected, abs=HTTP_TOLERANCE)


async def test_http_rejects_an_over_long_chat_naming_the_lengths(classifier_server: VLLMServer) -> None:
    inputs = meta_inputs()[:1]
    long = MetaInput(query=inputs[0].query, responses=inputs[0].responses, judgement=LONG_TEXT)
    async with HTTPMetaScorer(classifier_server.base_url, classifier_server.model) as served:
        with pytest.raises(InputTooLongError, match="context of 2048 tokens") as info:
            await served.score([*inputs, long])
    assert info.value.index == 1 and info.value.max_length == 2048


# --- meta-guided voting end to end ------------------------------------------------------------------------


async def check_meta_voting(judge: Judge, reference: list[float] | None = None) -> list[float]:
    """k=8, meta=True keeps exactly the 4 valid samples with the highest meta scores and sums only them."""
    result = await judge.score(QUERY, RESPONSES, k=8, meta=True)
    assert len(result.samples) == 8 and all(s.valid for s in result.samples)
    meta_scores = [s.meta_score for s in result.samples]
    assert all(isinstance(m, float) for m in meta_scores)
    scores = [m for m in meta_scores if m is not None]
    assert_distinct(scores, 2 * HTTP_TOLERANCE)
    top4 = sorted(range(8), key=lambda i: scores[i], reverse=True)[:4]
    assert sorted(s.index for s in result.samples if s.kept) == sorted(result.samples[i].index for i in top4)
    assert result.n_kept == 4 and result.provenance.k_meta == 4
    kept_votes = [s.scores for s in result.samples if s.kept and s.scores is not None]
    assert result.scores == [float(sum(v[i] for v in kept_votes)) for i in range(len(RESPONSES))]
    if reference is not None:
        assert scores == pytest.approx(reference, abs=HTTP_TOLERANCE)
    query = (Message(role="user", content=QUERY),)
    rated = [
        MetaInput(query=query, responses=tuple(apply_permutation(RESPONSES, s.permutation)), judgement=s.text or "")
        for s in result.samples
    ]
    assert judge.meta is not None
    assert await judge.meta.score(rated) == pytest.approx(scores, abs=1e-5), "meta inputs must use the shown order"
    return scores


async def test_meta_guided_voting_keeps_the_top_half_locally(tiny_classifier_dir: Path) -> None:
    settings = JudgeSettings(max_resample_rounds=0)
    meta = TransformersMetaScorer(tiny_classifier_dir)
    async with Judge(FunctionBackend(varied_judgements), meta=meta, settings=settings) as judge:
        await check_meta_voting(judge)


async def test_meta_guided_voting_keeps_the_top_half_over_http(
    tiny_classifier_dir: Path, classifier_server: VLLMServer
) -> None:
    settings = JudgeSettings(max_resample_rounds=0)
    local = TransformersMetaScorer(tiny_classifier_dir)
    async with Judge(FunctionBackend(varied_judgements), meta=local, settings=settings) as judge:
        reference = await check_meta_voting(judge)
    meta = HTTPMetaScorer(classifier_server.base_url, classifier_server.model)
    async with Judge(FunctionBackend(varied_judgements), meta=meta, settings=settings) as judge:
        await check_meta_voting(judge, reference)


# --- scalar reward models as judges -----------------------------------------------------------------------

SCALAR_RESPONSES = ["Use sorted(xs).", "Call xs.sort(); it sorts in place and returns None.", "Lists cannot be sorted."]


async def check_scalar_order(judge: ScalarJudge) -> list[float]:
    """Scores follow the caller's order: a permuted call returns the same scores, permuted."""
    first = await judge.score(QUERY, SCALAR_RESPONSES)
    permuted = await judge.score(QUERY, [SCALAR_RESPONSES[2], SCALAR_RESPONSES[0], SCALAR_RESPONSES[1]])
    assert first.scores is not None and permuted.scores is not None and len(first.scores) == 3
    assert_distinct(first.scores, 2 * HTTP_TOLERANCE)
    assert permuted.scores == pytest.approx([first.scores[2], first.scores[0], first.scores[1]], abs=1e-5)
    assert first.best == max(range(3), key=lambda i: first.scores[i])
    assert first.samples == [] and first.ok
    provenance = first.provenance
    assert (provenance.template_id, provenance.template_hash, provenance.k, provenance.meta) == (
        "scalar-rm",
        "",
        1,
        False,
    )
    assert provenance.backend == judge.classifier.name and provenance.model == judge.classifier.model
    assert first.usage.prompt_tokens is not None and first.usage.prompt_tokens > 0
    return first.scores


async def test_scalar_judge_locally(tiny_classifier_dir: Path) -> None:
    async with ScalarJudge.from_transformers(tiny_classifier_dir, batch_size=2) as judge:
        scores = await check_scalar_order(judge)
        with pytest.raises(InvalidInputError, match="scalar reward models are deterministic: k must be 1"):
            await judge.score(QUERY, SCALAR_RESPONSES, k=8)
        with pytest.raises(InvalidInputError, match="meta=True"):
            await judge.score(QUERY, SCALAR_RESPONSES, meta=True)
        batch = await judge.score_many(
            [{"query": QUERY, "responses": SCALAR_RESPONSES}, {"query": QUERY, "responses": [LONG_TEXT]}]
        )
    chats = [[Message(role="user", content=QUERY), Message(role="assistant", content=r)] for r in SCALAR_RESPONSES]
    assert scores == pytest.approx(direct_scores(tiny_classifier_dir, chats), abs=1e-5)
    assert batch[0].result is not None and batch[0].result.scores == pytest.approx(scores, abs=1e-5)
    assert batch[1].error is not None and batch[1].error.type == "InputTooLongError"


async def test_scalar_judge_over_http(tiny_classifier_dir: Path, classifier_server: VLLMServer) -> None:
    async with ScalarJudge.from_transformers(tiny_classifier_dir) as local:
        expected = (await local.score(QUERY, SCALAR_RESPONSES)).scores
    async with ScalarJudge.from_http(classifier_server.base_url, classifier_server.model) as judge:
        scores = await check_scalar_order(judge)
        with pytest.raises(InvalidInputError, match="k must be 1"):
            await judge.score(QUERY, SCALAR_RESPONSES, k=2)
        with pytest.raises(InputTooLongError):
            await judge.score(QUERY, ["fine", LONG_TEXT])
        result = await judge.score(QUERY, SCALAR_RESPONSES)
    assert scores == pytest.approx(expected, abs=HTTP_TOLERANCE)
    assert result.usage.requests == 3


def test_scalar_judge_sync_facade_over_http_survives_new_loops(classifier_server: VLLMServer) -> None:
    judge = ScalarJudge.from_http(classifier_server.base_url, classifier_server.model)
    first = judge.score_sync(QUERY, SCALAR_RESPONSES)
    assert judge.score_sync(QUERY, SCALAR_RESPONSES).scores == first.scores


def test_judge_sync_facade_with_an_http_meta_scorer_survives_new_loops(classifier_server: VLLMServer) -> None:
    meta = HTTPMetaScorer(classifier_server.base_url, classifier_server.model)
    judge = Judge(FunctionBackend(varied_judgements), meta=meta)
    first = judge.score_sync(QUERY, ["Use sorted(xs).", "xs.sort() sorts in place."], k=4, meta=True)
    second = judge.score_sync(QUERY, ["Use sorted(xs).", "xs.sort() sorts in place."], k=4, meta=True)
    assert first.n_kept == second.n_kept == 2
    assert [s.meta_score for s in first.samples] == [s.meta_score for s in second.samples]
