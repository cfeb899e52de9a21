"""Train a policy for a few GRPO steps with a generative reward model as the reward.

    python examples/rl_reward.py --base-url http://localhost:8000/v1 --model BBQGOD/DeepSeek-GRM-27B

The GRM is any OpenAI-compatible server (vLLM, SGLang, a hosted API). Each step, TRL's ``GRPOTrainer``
samples ``--num-generations`` completions per prompt, and the GRM judges each prompt's completions together
(``--k`` shuffled samples per group, votes averaged per sample). The policy is a tiny random chat model built
on the spot unless ``--policy`` names a model directory or hub id, so the script runs on a laptop's CPU. It
prints one JSON line: the mean reward of each step and the reward's counters. Needs ``grmjudge[train]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grmjudge import Judge, JudgeSettings, MissingDependencyError
from grmjudge.backends import OpenAIBackend
from grmjudge.integrations.trl import GRMReward
from grmjudge.testing.tiny import build_tiny_model

PROMPTS = [
    "What is the capital of France, and why?",
    "How do I sort a list in Python?",
    "Why does water boil at 100 degrees Celsius?",
    "Write a short summary of the Moon landing.",
    "Give two practical steps for a better morning.",
    "What does a plant need to grow?",
]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line: where the GRM is, and how long and how wide to train."""
    parser = argparse.ArgumentParser(description="A few GRPO steps of a policy rewarded by a served GRM.")
    parser.add_argument("--base-url", required=True, help="OpenAI-compatible base URL of the GRM server (.../v1)")
    parser.add_argument("--model", required=True, help="the GRM's model name on that server")
    parser.add_argument("--policy", help="the policy to train (default: a tiny random model built here)")
    parser.add_argument("--steps", type=int, default=3, help="GRPO steps")
    parser.add_argument("--num-generations", type=int, default=4, help="completions per prompt (the group size)")
    parser.add_argument("--k", type=int, default=2, help="GRM samples per group")
    parser.add_argument("--grm-max-tokens", type=int, default=1024, help="token limit of one judgement")
    parser.add_argument("--output-dir", help="where TRL writes (default: a temporary directory)")
    return parser.parse_args(argv)


def train(args: argparse.Namespace, output_dir: str) -> dict[str, Any]:
    """Run the GRPO steps and return the per-step rewards and the reward's counters."""
    trl, datasets, torch = trainer_library("trl"), trainer_library("datasets"), trainer_library("torch")

    policy = args.policy or str(build_tiny_model(Path(output_dir) / "tiny-policy"))
    judge = Judge(OpenAIBackend(args.base_url, args.model), settings=JudgeSettings(max_tokens=args.grm_max_tokens))
    reward = GRMReward(judge, k=args.k, num_generations=args.num_generations)
    config = trl.GRPOConfig(
        output_dir=output_dir,
        max_steps=args.steps,
        per_device_train_batch_size=2 * args.num_generations,  # two prompts per step
        num_generations=args.num_generations,
        max_completion_length=32,
        learning_rate=1e-4,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=not torch.cuda.is_available(),
        bf16=False,
        disable_tqdm=True,
        seed=0,
    )
    trainer = trl.GRPOTrainer(
        model=policy,
        reward_funcs=[reward],
        args=config,
        train_dataset=datasets.Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in PROMPTS]),
    )
    trainer.train()
    rewards = [entry[f"rewards/{reward.__name__}/mean"] for entry in trainer.state.log_history if "reward" in entry]
    stats = reward.stats
    return {
        "step_rewards": rewards,
        "judge_calls": stats.judge_calls,
        "samples": stats.samples,
        "valid_samples": stats.valid_samples,
        "fallback_rewards": stats.fallback_rewards,
        "partial_groups": stats.partial_groups,
        "singleton_groups": stats.singleton_groups,
        "failures": dict(stats.failures),
    }


def trainer_library(name: str) -> Any:
    """TRL, datasets or torch (the ``train`` extra), used through their public API only."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise MissingDependencyError(f"{name} is missing: pip install 'grmjudge[train]'") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Train, then print the summary as one JSON line; a missing extra is reported in one line (exit status 2)."""
    args = parse_args(argv)
    try:
        if args.output_dir:
            summary = train(args, args.output_dir)
        else:
            with tempfile.TemporaryDirectory(prefix="rl-reward-") as output_dir:
                summary = train(args, output_dir)
    except MissingDependencyError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
