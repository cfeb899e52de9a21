"""Wire-level smoke tests against a real vLLM server, plus the tiny-model builder they rely on.

These use plain httpx, not the SDK, so they pin down what vLLM itself returns (``n`` choices, finish
reasons, usage) independently of the client code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from grmjudge.testing.tiny import EOS_TOKEN, build_tiny_model
from grmjudge.testing.vllm_server import VLLMServer

pytestmark = pytest.mark.engine

_PARAGRAPH = (
    "Evaluate the two responses below for accuracy, usefulness and level of detail. "
    "Response 1 says that water boils at 100 degrees Celsius at sea level; Response 2 says 90 degrees. "
    "Give each response a score between 1 and 10 and put the scores in \\boxed{x, x}. "
)
LONG_PROMPT = (_PARAGRAPH * 20)[:3000]


def _post(server: VLLMServer, route: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` (with the served model name) and return the decoded JSON answer."""
    with httpx.Client(base_url=server.base_url, trust_env=False, timeout=120) as client:
        response = client.post(route, json={"model": server.model, **body})
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_tiny_model_reloads_and_is_deterministic(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    first = build_tiny_model(tmp_path / "a", seed=7)
    second = build_tiny_model(tmp_path / "b", seed=7)
    assert (first / "tokenizer.json").read_bytes() == (second / "tokenizer.json").read_bytes()

    tokenizer = transformers.AutoTokenizer.from_pretrained(first)
    assert tokenizer.eos_token == EOS_TOKEN
    assert tokenizer.pad_token == "<pad>"
    assert tokenizer.padding_side == "left"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Scores: \\boxed{7, 3}"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nScores: \\boxed{7, 3}<|im_end|>\n<|im_start|>assistant\n"

    model_a = transformers.AutoModelForCausalLM.from_pretrained(first)
    model_b = transformers.AutoModelForCausalLM.from_pretrained(second)
    assert model_a.config.model_type == "llama"
    assert model_a.config.eos_token_id == tokenizer.eos_token_id
    state_a, state_b = model_a.state_dict(), model_b.state_dict()
    assert state_a.keys() == state_b.keys()
    assert all(torch.equal(state_a[name], state_b[name]) for name in state_a)


def test_long_prompt_fits_the_context(tiny_model_dir: Path) -> None:
    transformers = pytest.importorskip("transformers")
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_model_dir)
    prompt = (_PARAGRAPH * 30)[:3500]
    assert len(tokenizer(prompt).input_ids) + 64 < tokenizer.model_max_length


def test_chat_completions_returns_n_seeded_samples(vllm_server: VLLMServer) -> None:
    answer = _post(
        vllm_server,
        "/chat/completions",
        {
            "messages": [{"role": "user", "content": LONG_PROMPT}],
            "n": 4,
            "temperature": 0.5,
            "seed": 1234,
            "max_tokens": 32,
        },
    )
    choices = answer["choices"]
    assert len(choices) == 4
    assert {choice["finish_reason"] for choice in choices} <= {"stop", "length"}
    assert answer["usage"]["prompt_tokens"] > 0
    assert answer["usage"]["completion_tokens"] > 0
    texts = [choice["message"]["content"] for choice in choices]
    # vLLM seeds sample i of a seeded request with seed + i, so the n samples differ.
    assert len(set(texts)) == 4, texts


def test_completions_returns_n_choices(vllm_server: VLLMServer) -> None:
    answer = _post(vllm_server, "/completions", {"prompt": "Scores: ", "n": 2, "max_tokens": 8, "temperature": 1.0})
    assert len(answer["choices"]) == 2
