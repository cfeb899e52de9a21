# pyright: basic
"""Stage 1 training: supervised fine-tuning on the rejection-sampled judgements (RFT; METHOD.md §10).

TRL's ``SFTTrainer`` on conversational prompt-completion rows: the prompt is the rendered judge template as
one user turn (rendered with the model's chat template and the generation prompt, exactly as at inference),
the completion is the kept judgement, and the loss covers the completion only. The paper mixes the RM data
with general instruction data (1,070K general + 186K RM); ``general_ratio`` sets the share of general rows
in the mix. Rows longer than ``max_length`` tokens are dropped and counted, never truncated (a truncated
judgement would teach the model to stop before its scores).

Paper settings (Gemma-2-27B): lr 5e-6, batch 1024, 900 steps, starting from the **base** model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from grmjudge._optional import require
from grmjudge.exceptions import ConfigurationError
from grmjudge.training._hf import ModelOptions, logged_losses, save_checkpoint
from grmjudge.training._runcard import write_run_card
from grmjudge.training.config import option
from grmjudge.training.sft_data import load_prompt_completion, mix_general

trl: Any = require("trl", extra="train")
datasets: Any = require("datasets", extra="train")
transformers: Any = require("transformers", extra="train")

__all__ = ["JudgeSFTConfig", "SFTResult", "train_sft"]


@dataclass
class JudgeSFTConfig(ModelOptions, trl.SFTConfig):
    """``train sft``: TRL's ``SFTConfig`` plus the model, LoRA and data options of the RFT stage."""

    data: list[str] | None = option(None, "Prompt-completion JSONL files (rft-sample's sft.jsonl).")
    general_data: list[str] | None = option(None, "General instruction data: 'messages' or prompt-completion rows.")
    general_ratio: float = option(0.0, "Share of general rows in the mix (the paper: 1070K / 1256K = 0.85).")
    mix_seed: int = option(0, "Seed for sampling and shuffling the mix.")
    learning_rate: float = option(5e-6, "Peak learning rate (the paper's RFT value).")
    max_length: int | None = option(8192, "Longest prompt + judgement in tokens; longer rows are dropped.")
    completion_only_loss: bool | None = option(True, "Loss on the judgement only, not on the judge prompt.")
    output_dir: str | None = option("grm-sft", "Where the trained model, tokenizer and run card go.")

    def __post_init__(self) -> None:
        self.check_model_options()
        if not self.data:
            raise ConfigurationError("--data is required: the sft.jsonl written by rft-sample")
        if not 0.0 <= self.general_ratio < 1.0:
            raise ConfigurationError(f"--general-ratio must be in [0, 1), got {self.general_ratio}")
        if self.general_ratio > 0 and not self.general_data:
            raise ConfigurationError("--general-ratio > 0 needs --general-data")
        super().__post_init__()


class SFTResult(BaseModel):
    """What the run trained on and where the model is."""

    output_dir: str
    rm_rows: int
    general_rows: int
    general_ratio: float
    dropped_too_long: int
    losses: list[float]


def train_sft(config: JudgeSFTConfig) -> SFTResult:
    """Fine-tune ``config.model_name_or_path`` on the judgements, save a loadable checkpoint and a run card."""
    assert config.data is not None  # checked in __post_init__
    tokenizer = config.load_tokenizer()
    rm_rows = load_prompt_completion(config.data)
    general_rows = load_prompt_completion(config.general_data or ())
    if not rm_rows:
        raise ConfigurationError(f"no training rows in {', '.join(config.data)}")
    mixed, n_general = mix_general(rm_rows, general_rows, config.general_ratio, config.mix_seed)
    dataset = datasets.Dataset.from_list(mixed)
    kept, dropped = _drop_too_long(dataset, tokenizer, config.max_length, config.dataset_num_proc)
    if len(kept) == 0:
        raise ConfigurationError(f"no rows left: all {len(dataset)} are longer than {config.max_length} tokens")
    model = transformers.AutoModelForCausalLM.from_pretrained(config.model_name_or_path, **config.model_kwargs())
    trainer = trl.SFTTrainer(
        model=model,
        args=config,
        train_dataset=kept,
        processing_class=tokenizer,
        peft_config=config.lora_config("CAUSAL_LM"),
    )
    trainer.train()
    save_checkpoint(trainer, tokenizer, config, str(config.output_dir), auto_class=transformers.AutoModelForCausalLM)
    result = SFTResult(
        output_dir=str(config.output_dir),
        rm_rows=len(rm_rows),
        general_rows=n_general,
        general_ratio=n_general / len(mixed) if mixed else 0.0,
        dropped_too_long=dropped,
        losses=logged_losses(trainer),
    )
    if trainer.accelerator.is_main_process:
        data_files = [*config.data, *(config.general_data or ())]
        write_run_card(str(config.output_dir), "sft", config, data_files=data_files, results=result.model_dump())
    return result


def _drop_too_long(dataset: Any, tokenizer: Any, max_length: int | None, num_proc: int | None) -> tuple[Any, int]:
    if max_length is None:
        return dataset, 0

    def fits(row: dict[str, Any]) -> bool:
        ids = tokenizer.apply_chat_template(row["prompt"] + row["completion"], tokenize=True, return_dict=False)
        return len(ids) <= max_length

    kept = dataset.filter(fits, num_proc=num_proc, desc="Dropping rows longer than max_length")
    return kept, len(dataset) - len(kept)
