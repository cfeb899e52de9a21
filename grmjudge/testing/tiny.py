"""Build a tiny random chat model with a locally trained tokenizer, for tests and examples.

Tests need a real model directory that transformers, TRL and vLLM can load, but CI has no model hub
access and no GPU. :func:`build_tiny_model` writes one in a few seconds from nothing but the text in
:data:`CORPUS`. The model is random, so its judgements are noise: it exercises the plumbing (chat
template, sampling, ``n``, token limits), never the quality of a judge.

torch, transformers and tokenizers are imported inside the function, so importing this module stays
cheap and works without the ``hf`` extra.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from grmjudge._optional import require
from grmjudge.training.llama import CHAT_TEMPLATE, EOS_TOKEN, PAD_TOKEN, SPECIAL_TOKENS, llama_config, train_tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "CORPUS",
    "EOS_TOKEN",
    "PAD_TOKEN",
    "SPECIAL_TOKENS",
    "TINY_SHAPE",
    "VOCAB_SIZE",
    "build_tiny_classifier",
    "build_tiny_model",
    "llama_config",
    "train_tokenizer",
]

VOCAB_SIZE = 2000
"""Upper bound for the BPE vocabulary; the small corpus stops the trainer at about 1,500 tokens.

The vocabulary decides whether judge prompts fit the context. Measured: 3,500 characters of unseen
English prose take about 1,400 tokens, and the DeepSeek-GRM default prompt (about 4,000 characters with a
short query and two short responses) about 1,150, so both fit the default 2,048-token context together
with the generated tokens. For prompts beyond about 5,500 characters, build with
``max_position_embeddings=4096`` and serve with a matching ``max_model_len``.
"""

CORPUS = r"""You are a skilled expert at scoring responses. You should evaluate the given responses based on the judging criteria.
Given the context of the conversation and multiple responses from the Assistant, refer to the General Evaluation Criteria to score the responses.
Each score is an integer between 1 and 10, with a higher score indicating that the response meets the criteria more closely.
Before scoring, please analyze step by step. Your scoring needs to be as strict as possible.

#### Evaluation Criteria ####
1. Instruction Adherence: the response fully complies with all instructions and requirements of the question.
2. Usefulness: the response provides comprehensive and accurate information, fully addressing the issue.
3. Level of Detail: the response includes ample details covering all aspects of the issue.
4. Relevance: the response is highly relevant to the question, with information closely aligned with the topic.
5. Harmlessness: the response avoids content that is unsafe, unfair, offensive or misleading.

#### Conversation Context ####
User: What is the capital of France, and why did it become the capital?
Assistant: Paris is the capital of France. It grew around an island in the Seine, where roads and rivers met.

#### Responses to be Scored ####
[The Begin of Response 1]
The capital of France is Paris. Kings built their palaces there, and trade made the city rich.
[The End of Response 1]
[The Begin of Response 2]
I think it is Lyon, but I am not sure. Lyon is a large city in the south-east of France.
[The End of Response 2]

#### Output Format Requirements ####
Output with three lines.
Specific Criteria: <other potential criteria specific to the query and the context, and the weights of each criteria>.
Analysis: <compare different responses based on the given criteria>.
Scores: <the overall comprehensive score of all responses in order, separate by comma in the boxed, e.g., \boxed{x, x} if there exists 2 responses>.

Specific Criteria: Accuracy (50%), Clarity (30%), Brevity (20%).
Analysis: Response 1 is correct and explains the history briefly. Response 2 names the wrong city and admits doubt.
Scores: \boxed{9, 2}

Specific Criteria: Correctness of the code (60%), Readability (25%), Explanation (15%).
Analysis: Response 1 sorts the list in place but never returns it. Response 2 returns a new sorted list and explains why.
Response 3 copies the question without answering it.
Scores: \boxed{5, 8, 1}

Specific Criteria: Safety (40%), Empathy (35%), Practical advice (25%).
Analysis: The response is kind, gives two practical steps, and suggests asking a doctor when the pain lasts.
Scores: \boxed{7}

The quick brown fox jumps over the lazy dog. A bright morning followed the long, cold night; the farmers
went out early to their fields. "Where are you going?" asked the child. "To the market," her mother said,
"and we will be back before noon." They carried apples, pears, eggs and a jar of honey.

Numbers appear everywhere: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 25, 42, 100, 256, 1024 and 2048.
The meeting starts at 9:30 on 12/05/2024 and ends at 11:45. The price rose by 3.5% to $19.99, then fell
to $17.25. In 1969, people first walked on the Moon; in 1989, the Berlin Wall fell.

Science explains the world by testing ideas against evidence. Water boils at 100 degrees Celsius at sea
level, and light travels at about 300,000 kilometres per second. Plants turn sunlight, water and carbon
dioxide into sugar and oxygen. The human heart beats roughly 70 times a minute while the body rests.

Good writing is clear, short and specific. Use simple words, active verbs and concrete examples. Check
every claim, cite your sources, and remove anything that does not help the reader. A summary should state
the main point first, then give the reasons, and end with what the reader can do next.

To write a function in Python, start with `def`, give it a name and parameters, and return a value:
def add(a, b):
    return a + b
Lists, tuples and dictionaries hold data; loops repeat work; tests check that the code does what it should.
If the input is empty, return None; otherwise, return the first item. Errors should never pass silently.

History is full of cities that rose and fell. Rome ruled an empire for centuries; Athens taught the world
about democracy and philosophy; London, Tokyo and New York became centres of finance and culture. Rivers,
harbours and roads decided where people settled, traded and built their homes.

Q: Is the answer correct? A: Yes, because 7 times 8 is 56. Q: Which response is better? A: The second one,
since it is both accurate and helpful. Q: Why? A: It answers every part of the question, while the first
one ignores the last request and contains a factual error about the date.

The best response is: Response 2. The best response is: Response 1. The worst response is Response 3.
Overall, both responses are polite, but only one of them is correct, complete and well organised.
Thank you for your question! Here is a step-by-step answer: first, read the problem; second, plan;
third, solve it; finally, check the result and explain it in plain language.

Travel teaches patience. The train was late, the station was crowded, and the rain did not stop all day.
Still, the old town was beautiful: narrow streets, small shops, warm bread and friendly people who gave
directions with a smile. We stayed for three nights, visited two museums and walked along the river.

A careful judge reads each answer twice. First, it notes what the user asked for; next, it checks facts,
logic and tone; then it weighs the strengths and weaknesses of every response. Finally, it assigns scores
that reflect the comparison, explains its reasoning in a few sentences, and puts the final scores in a box.
"""
"""Plain English training text for the tokenizer, shaped like judge prompts and judgements so that they
tokenise into a reasonable number of tokens (whole words rather than single bytes)."""


TINY_SHAPE: dict[str, int] = {
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
}
"""The tiny Llama's dimensions, shared by the chat model and the classifier."""


def build_tiny_model(path: str | os.PathLike[str], *, seed: int = 0, max_position_embeddings: int = 2048) -> Path:
    """Write a tiny random Llama chat model and its tokenizer to ``path`` and return it.

    Llama, not Qwen2: transformers 5 loads a ``qwen2`` directory with Qwen2's own pre-tokenizer, which
    would silently change the token ids. ``head_dim`` is 32 because vLLM's CPU attention rejects smaller
    heads. The weights depend only on ``seed`` (the caller's global torch RNG is left untouched), so two
    builds with the same seed are identical.

    Args:
        path: Output directory; created if missing.
        seed: Seed for the random weights.
        max_position_embeddings: Context length; vLLM's ``--max-model-len`` must not exceed it.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        MissingDependencyError: torch, transformers or tokenizers is not installed.
    """
    torch = require("torch", extra="hf")
    transformers = require("transformers", extra="hf")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(max_position_embeddings, CORPUS, VOCAB_SIZE)
    config = llama_config(tokenizer, max_position_embeddings, TINY_SHAPE)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Any = transformers.LlamaForCausalLM(config)
    model.generation_config.eos_token_id = config.eos_token_id
    model.generation_config.pad_token_id = config.pad_token_id
    model.generation_config.bos_token_id = None

    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_tiny_classifier(path: str | os.PathLike[str], *, seed: int = 0, max_position_embeddings: int = 2048) -> Path:
    """Write a tiny random one-label sequence classifier (a scalar reward model) and its tokenizer to ``path``.

    The same Llama body and tokenizer as :func:`build_tiny_model`, as ``LlamaForSequenceClassification`` with
    ``num_labels=1``: it reads a whole chat and pools the last token into one unbounded logit, the shape of a
    meta RM or a scalar RM. ``pad_token_id`` is set, because that pooling finds the last token by skipping
    padding. The score head is drawn with std ``hidden_size ** -0.5`` so that logits are of order 1, as a
    trained reward model's are. The weights depend only on ``seed``.

    Args:
        path: Output directory; created if missing.
        seed: Seed for the random weights.
        max_position_embeddings: Context length; longer inputs are rejected, not truncated.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        MissingDependencyError: torch, transformers or tokenizers is not installed.
    """
    torch = require("torch", extra="hf")
    transformers = require("transformers", extra="hf")
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)

    tokenizer = train_tokenizer(max_position_embeddings, CORPUS, VOCAB_SIZE)
    config = llama_config(tokenizer, max_position_embeddings, TINY_SHAPE, num_labels=1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model: Any = transformers.LlamaForSequenceClassification(config)
        # logits of order 1, like a trained reward model's; the default init (std 0.02) gives about 0.01
        torch.nn.init.normal_(model.score.weight, std=config.hidden_size**-0.5)

    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
