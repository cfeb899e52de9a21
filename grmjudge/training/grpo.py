# pyright: basic
"""Stage 2 training: rule-based online RL with GRPO (METHOD.md §11).

TRL's ``GRPOTrainer`` with the GRM as the policy and one reward function, `spct_reward`: +1 when the
labelled best gets a strictly higher score than every other response (or the 0/1 score equals the label for
one response), -1 otherwise, ties and parse failures included. No format reward: a large KL penalty keeps
the format instead. The paper's settings are this config's defaults, set explicitly because TRL's differ:

| Paper (27B)                    | Here                                   | TRL default |
|--------------------------------|----------------------------------------|-------------|
| KL coefficient 0.08            | ``beta=0.08`` (use 0.002 for 16B)      | 0.0         |
| group size 4                   | ``num_generations=4``                  | 8           |
| lr 4e-7                        | ``learning_rate=4e-7``                 | 1e-6        |
| original GRPO objective        | ``loss_type="grpo"``, group std scaling | ``"dapo"`` |
| (not given) completion length  | ``max_completion_length=4096``         | 512         |

A truncated judgement is a parse failure (-1, ``mask_truncated_completions=False``). Prompts longer than
``max_prompt_tokens`` are dropped before training (TRL no longer filters them). Generation can run in vLLM
through TRL's own flags (``--use-vllm --vllm-mode colocate|server``); that path needs a GPU and is not
exercised by the CPU test suite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio
from pydantic import BaseModel

from grmjudge._optional import require
from grmjudge.exceptions import ConfigurationError
from grmjudge.training._hf import ModelOptions, logged_losses, save_checkpoint
from grmjudge.training._runcard import write_run_card
from grmjudge.training._sampler import JudgementSampler, sampler_backend
from grmjudge.training.config import DataOptions, option, resolve_template
from grmjudge.training.data import SPCTExample
from grmjudge.training.rewards import make_spct_reward
from grmjudge.training.rl_data import PrefilterReport, grpo_rows, prefilter

trl: Any = require("trl", extra="train")
datasets: Any = require("datasets", extra="train")
transformers: Any = require("transformers", extra="train")

__all__ = ["GRPOResult", "JudgeGRPOConfig", "train_grpo"]


@dataclass
class JudgeGRPOConfig(ModelOptions, DataOptions, trl.GRPOConfig):
    """``train grpo``: TRL's ``GRPOConfig`` with the paper's defaults, plus model, LoRA, data and pre-filter options."""

    learning_rate: float = option(4e-7, "Peak learning rate (the paper's 27B value).")
    beta: float = option(0.08, "KL coefficient (0.08 for 27B, 0.002 for 16B in the paper; TRL's default is 0).")
    num_generations: int | None = option(4, "Group size G (the paper's 4).")
    loss_type: str = option("grpo", "Policy loss; 'grpo' is the original per-sequence GRPO objective (Eq. 15).")
    scale_rewards: str = option("group", "Advantage scaling: divide by the group's reward std, as in GRPO.")
    max_completion_length: int | None = option(4096, "Token limit of a judgement; principles + critique need room.")
    temperature: float = option(1.0, "Rollout temperature (not given by the paper).")
    mask_truncated_completions: bool = option(False, "Keep False: a truncated judgement must get -1, not vanish.")
    output_dir: str | None = option("grm-grpo", "Where the trained model, tokenizer and run card go.")
    template: str = option("deepseek-grm-default", "Judge template for n >= 2 (built-in id or YAML/JSON file).")
    single_template: str = option("deepseek-grm-single-0-1", "Template for single responses (0/1 scores).")
    max_prompt_tokens: int | None = option(4096, "Drop items whose rendered prompt is longer (TRL no longer does).")
    prefilter_sampler: str | None = option(None, "Reference backend spec; items it gets right in every sample go.")
    prefilter_base_url: str | None = option(None, "Base URL for an 'openai:' pre-filter backend.")
    prefilter_samples: int = option(3, "Samples per item for the pre-filter (the paper's 3).")
    prefilter_temperature: float = option(1.0, "Sampling temperature of the pre-filter.")
    prefilter_max_tokens: int = option(4096, "Token limit per pre-filter judgement.")
    prefilter_drop_always_wrong: bool = option(False, "Also drop items the reference never gets right.")
    prefilter_concurrency: int = option(16, "Items in flight during the pre-filter.")

    def __post_init__(self) -> None:
        self.check_model_options()
        self.check_data_options()
        if self.beta <= 0:
            raise ConfigurationError("--beta must be > 0: SPCT has no format reward and relies on the KL penalty")
        if self.prefilter_samples < 1:
            raise ConfigurationError("--prefilter-samples must be at least 1")
        super().__post_init__()


class GRPOResult(BaseModel):
    """What the run trained on, what it dropped, and the logged losses and rewards."""

    output_dir: str
    rows: int
    dropped_long_prompts: int
    too_easy: int
    always_wrong: int
    losses: list[float]
    rewards: list[float]
    frac_reward_zero_std: list[float]


def train_grpo(config: JudgeGRPOConfig) -> GRPOResult:
    """Run GRPO on the SPCT examples with `spct_reward`; save a loadable checkpoint and a run card."""
    template = resolve_template(config.template)
    single_template = resolve_template(config.single_template)
    tokenizer = config.load_tokenizer()
    report = config.load_data()
    filtered = _prefilter(config, report.examples)
    rows = grpo_rows(filtered.kept, template, single_template, seed=config.seed)
    rows, dropped = _drop_long_prompts(rows, tokenizer, config.max_prompt_tokens)
    if not rows:
        raise ConfigurationError("no items left for GRPO after the pre-filter and the prompt-length filter")
    model = transformers.AutoModelForCausalLM.from_pretrained(config.model_name_or_path, **config.model_kwargs())
    reward = make_spct_reward([template, single_template], eos_token_ids=_eos_ids(model, tokenizer))
    trainer = trl.GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=config.lora_config("CAUSAL_LM"),
    )
    trainer.train()
    save_checkpoint(trainer, tokenizer, config, str(config.output_dir), auto_class=transformers.AutoModelForCausalLM)
    history = trainer.state.log_history
    result = GRPOResult(
        output_dir=str(config.output_dir),
        rows=len(rows),
        dropped_long_prompts=dropped,
        too_easy=len(filtered.too_easy_ids),
        always_wrong=len(filtered.always_wrong_ids),
        losses=logged_losses(trainer),
        rewards=[entry["reward"] for entry in history if "reward" in entry],
        frac_reward_zero_std=[entry["frac_reward_zero_std"] for entry in history if "frac_reward_zero_std" in entry],
    )
    if trainer.accelerator.is_main_process:
        results = {**result.model_dump(), "data": report.summary()}
        write_run_card(str(config.output_dir), "grpo", config, data_files=[config.data], results=results)
    return result


def _prefilter(config: JudgeGRPOConfig, examples: list[SPCTExample]) -> PrefilterReport:
    if config.prefilter_sampler is None:
        return PrefilterReport(examples, [], [], [])
    # the main process samples first; the others then find every item recorded and only read the records
    with config.main_process_first(local=False, desc="pre-filter"):
        return anyio.run(_run_prefilter, config, examples)


async def _run_prefilter(config: JudgeGRPOConfig, examples: list[SPCTExample]) -> PrefilterReport:
    assert config.prefilter_sampler is not None
    backend = sampler_backend(config.prefilter_sampler, config.prefilter_base_url)
    async with backend:
        sampler = JudgementSampler(
            backend,
            template=resolve_template(config.template),
            single_template=resolve_template(config.single_template),
            temperature=config.prefilter_temperature,
            max_tokens=config.prefilter_max_tokens,
            seed=config.seed,
        )
        return await prefilter(
            examples,
            sampler,
            f"{config.output_dir}/prefilter",
            k=config.prefilter_samples,
            drop_always_wrong=config.prefilter_drop_always_wrong,
            concurrency=config.prefilter_concurrency,
        )


def _drop_long_prompts(
    rows: list[dict[str, Any]], tokenizer: Any, max_prompt_tokens: int | None
) -> tuple[list[dict[str, Any]], int]:
    if max_prompt_tokens is None:
        return rows, 0

    def length(row: dict[str, Any]) -> int:
        return len(tokenizer.apply_chat_template(row["prompt"], add_generation_prompt=True, return_dict=False))

    kept = [row for row in rows if length(row) <= max_prompt_tokens]
    return kept, len(rows) - len(kept)


def _eos_ids(model: Any, tokenizer: Any) -> list[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = list(configured) if isinstance(configured, list | tuple) else [configured]
    ids.append(tokenizer.eos_token_id)
    return sorted({i for i in ids if isinstance(i, int)})
