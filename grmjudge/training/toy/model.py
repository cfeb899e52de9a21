"""The toy GRM's starting point: a small random Llama with a tokenizer trained on the toy task's own text.

The tokenizer learns from the two templates, the questions and teacher transcripts of the training split
(never the held-out split), with every digit a token of its own; whole words of the fixed prompt text
then cost one token each, so a prompt with four responses stays under 200 tokens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grmjudge._optional import require
from grmjudge.prompts import judge_messages
from grmjudge.training.data import SPCTExample
from grmjudge.training.llama import CHAT_TEMPLATE, EOS_TOKEN, llama_config, train_tokenizer
from grmjudge.training.toy.teacher import Teacher
from grmjudge.training.toy.templates import TOY_SINGLE_TEMPLATE, TOY_TEMPLATE

__all__ = ["GPU_SHAPE", "SHAPES", "TOY_SHAPE", "add_weight_noise", "build_toy_model", "tokenizer_corpus"]

TOY_SHAPE: dict[str, int] = {
    "hidden_size": 128,
    "intermediate_size": 384,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
}
"""About 1.1M weights: enough to learn the four families from a few thousand transcripts on a CPU."""

GPU_SHAPE: dict[str, int] = {
    "hidden_size": 256,
    "intermediate_size": 768,
    "num_hidden_layers": 6,
    "num_attention_heads": 8,
    "num_key_value_heads": 4,
    "head_dim": 32,
}
"""About 5M weights: the GPU run's larger judge (and meta RM)."""

SHAPES = {"toy": TOY_SHAPE, "gpu": GPU_SHAPE}
"""The shapes a toy config can name."""

VOCAB_SIZE = 600
MAX_POSITIONS = 512


def tokenizer_corpus(examples: Sequence[SPCTExample], teacher: Teacher) -> str:
    """Rendered prompts, ChatML markers and teacher transcripts of ``examples`` (training items only)."""
    lines: list[str] = []
    for example in examples:
        template = TOY_SINGLE_TEMPLATE if example.n == 1 else TOY_TEMPLATE
        prompt = judge_messages(template, example.query, example.responses)[0].content
        lines.append(f"{prompt}\n{teacher.judge(example)}\n{CHAT_TEMPLATE}\n")
    return "".join(lines)


def build_toy_model(
    path: str | os.PathLike[str], corpus: str, *, shape: dict[str, int] = TOY_SHAPE, seed: int = 0
) -> Path:
    """Write a random toy GRM of ``shape`` and its tokenizer, trained on ``corpus``, to ``path``."""
    torch = require("torch", extra="hf")
    transformers = require("transformers", extra="hf")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer(MAX_POSITIONS, corpus, VOCAB_SIZE, split_digits=True)
    config = llama_config(tokenizer, MAX_POSITIONS, shape)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Any = transformers.LlamaForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    model.generation_config.pad_token_id = config.pad_token_id
    model.generation_config.bos_token_id = None
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def add_weight_noise(path: str | os.PathLike[str], scale: float, *, seed: int = 0) -> None:
    """Add seeded Gaussian noise of ``scale`` times each weight tensor's standard deviation to the model at ``path``.

    Noise keeps the tokenizer and the shape of what the model knew but wrecks its judgements, so training from
    it shows whether a stage learns, in far fewer steps than learning from random weights takes.
    """
    torch = require("torch", extra="hf")
    transformers = require("transformers", extra="hf")
    model: Any = transformers.AutoModelForCausalLM.from_pretrained(path)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in model.parameters():
            if weight.numel() > 1:
                weight.add_(torch.randn(weight.shape, generator=generator) * weight.std() * scale)
    model.save_pretrained(path)
