"""Small Llama chat models from local text: a ChatML tokenizer trained on a corpus, and a config to match.

No model hub is needed: the toy SPCT run builds its GRM from these, and so do the test models of
[`grmjudge.testing.tiny`][grmjudge.testing.tiny]. torch, transformers and tokenizers are imported inside the
functions (extra ``hf``).
"""

from __future__ import annotations

from typing import Any

from grmjudge._optional import require

__all__ = ["CHAT_TEMPLATE", "EOS_TOKEN", "PAD_TOKEN", "SPECIAL_TOKENS", "llama_config", "train_tokenizer"]

EOS_TOKEN = "<|im_end|>"
"""End-of-turn token; it doubles as the model's EOS so generation stops at the end of a turn."""

PAD_TOKEN = "<pad>"
"""Padding token, distinct from EOS so padded batches never look like finished turns."""

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", EOS_TOKEN, PAD_TOKEN)
"""Special tokens, reserved first so that they get the lowest ids (0-3) in every build."""

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""ChatML, the format of the Qwen and DeepSeek chat models that GRMs are trained from."""


def train_tokenizer(max_position_embeddings: int, corpus: str, vocab_size: int, *, split_digits: bool = False) -> Any:
    """Train a byte-level BPE tokenizer on ``corpus`` and wrap it with the ChatML chat template.

    ``split_digits`` makes every digit its own token, which a small model needs to learn arithmetic.
    """
    transformers = require("transformers", extra="hf")
    tokenizers = require("tokenizers", extra="hf")
    pre = tokenizers.pre_tokenizers
    bpe: Any = tokenizers.Tokenizer(tokenizers.models.BPE())
    byte_level = pre.ByteLevel(add_prefix_space=False)
    bpe.pre_tokenizer = pre.Sequence([pre.Digits(individual_digits=True), byte_level]) if split_digits else byte_level
    bpe.decoder = tokenizers.decoders.ByteLevel()
    trainer = tokenizers.trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(corpus.splitlines(keepends=True), trainer=trainer)

    tokenizer: Any = transformers.PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        padding_side="left",  # saved only when given to the constructor; decoder-only batches pad left
        model_max_length=max_position_embeddings,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def llama_config(tokenizer: Any, max_position_embeddings: int, shape: dict[str, int], **extra: Any) -> Any:
    """A Llama config of ``shape`` for ``tokenizer``; ``extra`` adds head settings."""
    transformers = require("transformers", extra="hf")
    return transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        **shape,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS_TOKEN),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD_TOKEN),
        **extra,
    )
