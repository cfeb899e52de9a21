r"""Replace an ad-hoc LLM-as-a-judge with a hosted chat model (OpenAI or Anthropic) behind grmjudge.

The usual ad-hoc judge asks a chat model once "which response is better?" with the responses in a fixed order.
Chat models favour a position (often the first), so such a verdict partly measures the order. grmjudge samples
k judgements and shows the responses in a different order each time (balanced rotations: with two responses
and k=4, each is shown first twice), maps every judgement back to your order and sums the votes, so a
position preference cancels out. A judgement it cannot read is recorded with its reason, never guessed at.

Two prompt templates, both from the DeepSeek-GRM paper, are compared on a few pairs whose better response is
known:

- ``llm-as-judge``: the paper's LLM-as-a-Judge baseline: the model names the best response (``\boxed{i}``);
  each sample is a one-hot vote, so the sums count wins;
- ``grm``: the DeepSeek-GRM template: principles, a critique and a 1-10 score for every response
  (``\boxed{s1, s2}``), so the sums also say by how much one response is better.

For each template the script prints every verdict and how often the response *shown first* won a sample:
the position bias that the shuffling cancels.

Run it against a hosted model:

    export OPENAI_API_KEY=...
    python examples/hosted_judge.py --provider openai --model gpt-4.1-mini --k 4
    export ANTHROPIC_API_KEY=...
    python examples/hosted_judge.py --provider anthropic --model claude-sonnet-4-5 --k 4

``--base-url`` points at a gateway, a proxy or any OpenAI-compatible server; ``--pairs FILE`` judges your own
pairs (JSONL: ``id``, ``query``, ``responses``, ``label`` = index of the better response). The API key is read
from the environment and travels only as a request header: the script never prints it, and reports failures
by type only, because a careless server may quote a key in an error body. Every sample is one request on the
Anthropic API (it has no ``n``): ``--k 4`` on three pairs and two templates is 24 requests.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio

from grmjudge import (
    DEFAULT_TEMPLATE,
    LLM_AS_JUDGE_TEMPLATE,
    BatchResult,
    Judge,
    JudgeSettings,
    PromptTemplate,
    Sample,
    ShuffleMode,
)
from grmjudge.backends import Backend, OpenAIBackend
from grmjudge.backends.anthropic import AnthropicBackend

TEMPLATES: dict[str, PromptTemplate] = {"llm-as-judge": LLM_AS_JUDGE_TEMPLATE, "grm": DEFAULT_TEMPLATE}
KEY_VARIABLES = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
DEFAULT_URLS = {"openai": "https://api.openai.com/v1", "anthropic": "https://api.anthropic.com"}
DEFAULT_MODELS = {"openai": "gpt-4.1-mini", "anthropic": "claude-sonnet-4-5"}

PAIRS: list[dict[str, Any]] = [
    {
        "id": "boiling",
        "query": "At what temperature does water boil at sea level?",
        "responses": ["At 100 degrees Celsius (212 degrees Fahrenheit).", "At 90 degrees Celsius."],
        "label": 0,
    },
    {
        "id": "reverse",
        "query": "How do I reverse a list `xs` in Python without changing it?",
        "responses": ["Call xs.reverse().", "Use xs[::-1] or list(reversed(xs)); both return a new list."],
        "label": 1,
    },
    {
        "id": "haiku",
        "query": "Write a haiku about the sea.",
        "responses": ["Grey waves fold and break / salt wind carries gull voices / the tide keeps its time", "Sea."],
        "label": 0,
    },
]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line: provider, URL and model are arguments; the key never is (it stays in the environment)."""
    parser = argparse.ArgumentParser(description="Judge pairs with a hosted chat model through grmjudge.")
    parser.add_argument("--provider", choices=sorted(KEY_VARIABLES), default="openai")
    parser.add_argument("--base-url", help="API root (default: the provider's public API)")
    parser.add_argument("--model", help="model name (default: gpt-4.1-mini or claude-sonnet-4-5)")
    parser.add_argument("--template", choices=[*TEMPLATES, "both"], default="both")
    parser.add_argument("--k", type=int, default=4, help="judgements per pair, each with its own response order")
    parser.add_argument("--shuffle", choices=[m.value for m in ShuffleMode], default=ShuffleMode.BALANCED.value)
    parser.add_argument("--max-tokens", type=int, default=1024, help="token limit of one judgement")
    parser.add_argument("--concurrency", type=int, default=8, help="backend requests in flight at once")
    parser.add_argument("--pairs", type=Path, help="JSONL pairs: id, query, responses, label")
    return parser.parse_args(argv)


def build_backend(args: argparse.Namespace) -> Backend:
    """The provider's backend; each reads its key from the environment and sends it only as a header."""
    base_url = args.base_url or DEFAULT_URLS[args.provider]
    model = args.model or DEFAULT_MODELS[args.provider]
    if args.provider == "anthropic":
        return AnthropicBackend(model, base_url=base_url)
    return OpenAIBackend(base_url, model)


def first_shown_won(sample: Sample) -> bool | None:
    """Whether the response shown first got the top score alone; ``None`` for an invalid or tied sample."""
    if sample.scores is None:
        return None
    top = max(sample.scores)
    winners = [i for i, score in enumerate(sample.scores) if score == top]
    return winners == [sample.permutation[0]] if len(winners) == 1 else None


def report(name: str, pairs: Sequence[dict[str, Any]], batch: Sequence[BatchResult]) -> bool:
    """Print one line per pair and the template's position statistics; whether every pair got a verdict."""
    decisive = first_won = agree = requests = 0
    complete = True
    for pair, item in zip(pairs, batch, strict=True):
        result = item.result
        if result is None:  # the pair itself was invalid
            print(f"[{name}] {item.item_id}: invalid pair ({item.error.type if item.error else 'unknown'})")
            complete = False
            continue
        requests += result.usage.requests
        if result.scores is None:
            assert result.no_verdict is not None
            reasons = ", ".join(f"{r} x{n}" for r, n in sorted(result.no_verdict.failures.items()))
            print(f"[{name}] {item.item_id}: no verdict ({reasons})")
            complete = False
            continue
        scores = ", ".join(f"{s:g}" for s in result.scores)
        tied = result.scores.count(max(result.scores)) > 1
        agree += not tied and result.best == pair.get("label")  # a tie is a coin flip, not an agreement
        note = " (tied: a seeded draw picked best)" if tied else ""
        print(f"[{name}] {item.item_id}: scores [{scores}] best {result.best} label {pair.get('label')}{note}")
        outcomes = [won for won in map(first_shown_won, result.samples) if won is not None]
        decisive += len(outcomes)
        first_won += sum(outcomes)
    print(f"[{name}] first-shown response won {first_won} of {decisive} decisive samples")
    print(f"[{name}] agreement with labels (ties excluded): {agree} of {len(pairs)}; requests: {requests}")
    return complete


async def judge_all(args: argparse.Namespace, pairs: list[dict[str, Any]]) -> bool:
    """Judge every pair with each template on one backend; whether every pair got a verdict."""
    items = [{k: v for k, v in pair.items() if k != "label"} for pair in pairs]
    names = list(TEMPLATES) if args.template == "both" else [args.template]
    complete = True
    async with Judge(build_backend(args), max_concurrent_requests=args.concurrency) as judge:
        for name in names:
            settings = JudgeSettings(
                template=TEMPLATES[name], shuffle=ShuffleMode(args.shuffle), max_tokens=args.max_tokens
            )
            batch = await judge.score_many(items, k=args.k, settings=settings)
            complete = report(name, pairs, batch) and complete
    return complete


def read_pairs(path: Path | None) -> list[dict[str, Any]]:
    """The built-in pairs, or the JSONL file's."""
    if path is None:
        return PAIRS
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    """Exit status 0 when every pair got a verdict, 1 when some did not, 2 without an API key."""
    args = parse_args(argv)
    variable = KEY_VARIABLES[args.provider]
    if not os.environ.get(variable):
        print(f"set {variable}: the API key is read from the environment", file=sys.stderr)
        return 2
    complete = anyio.run(judge_all, args, read_pairs(args.pairs))
    return 0 if complete else 1


if __name__ == "__main__":
    sys.exit(main())
