# pyright: basic
"""Meta RM training: a one-label sequence classifier trained with binary cross-entropy (METHOD.md §8).

Input: the meta-RM chat of each sampled judgement (meta template as the user turn, the judgement as the
assistant turn), rendered with the model's chat template and tokenized exactly as
`grmjudge.meta.TransformersMetaScorer` reads it at inference. Label: whether that judgement is correct under
the strict rule. The train split is class-balanced by down-sampling; the held-out split (whole items, so
no item leaks across) keeps its natural balance and gets AUC, accuracy and loss.

``AutoModelForSequenceClassification(num_labels=1)`` with a ``transformers.Trainer`` whose loss is
BCE-with-logits: TRL's ``RewardTrainer`` is pairwise only. The saved directory has ``pad_token_id`` in its
config and the tokenizer with its chat template, which is what `TransformersMetaScorer` and vLLM's
classification endpoint need. Paper settings: lr 1e-5, batch 512.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from grmjudge._optional import require
from grmjudge.exceptions import ConfigurationError, InvalidInputError
from grmjudge.rows import read_checked
from grmjudge.training._hf import ModelOptions, logged_losses, save_checkpoint
from grmjudge.training._runcard import write_run_card
from grmjudge.training.config import option
from grmjudge.training.meta_data import balance_classes, roc_auc, split_by_item
from grmjudge.types import Message

torch: Any = require("torch", extra="train")
transformers: Any = require("transformers", extra="train")
datasets: Any = require("datasets", extra="train")

__all__ = ["BCETrainer", "MetaRMConfig", "MetaRMResult", "train_meta_rm"]

_FALLBACK_PAD = "<|grmjudge_pad|>"


@dataclass
class MetaRMConfig(ModelOptions, transformers.TrainingArguments):
    """``train meta-rm``: ``TrainingArguments`` plus the model, LoRA and data options of the meta RM."""

    data: list[str] | None = option(None, "meta.jsonl files written by meta-sample.")
    eval_fraction: float = option(0.1, "Share of items held out for AUC and accuracy.")
    balance: bool = option(True, "Down-sample the larger class of the train split to the smaller one.")
    split_seed: int = option(0, "Seed of the held-out split and of the class balancing.")
    max_length: int = option(8192, "Longest meta-RM chat in tokens; longer rows are dropped, never truncated.")
    learning_rate: float = option(1e-5, "Peak learning rate (the paper's meta-RM value).")
    remove_unused_columns: bool = option(False, "Keep False: the collator reads the tokenized columns itself.")
    output_dir: str | None = option("meta-rm", "Where the trained meta RM, tokenizer and run card go.")

    def __post_init__(self) -> None:
        self.check_model_options()
        if not self.data:
            raise ConfigurationError("--data is required: the meta.jsonl written by meta-sample")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigurationError(f"--eval-fraction must be in [0, 1), got {self.eval_fraction}")
        super().__post_init__()


class MetaRMResult(BaseModel):
    """Rows used, rows dropped, the logged losses and the held-out metrics (``None`` without both labels)."""

    output_dir: str
    train_rows: int
    train_positives: int
    eval_rows: int
    dropped_too_long: int
    losses: list[float]
    eval_auc: float | None
    eval_accuracy: float | None
    eval_loss: float | None


class BCETrainer(transformers.Trainer):
    """``Trainer`` with binary cross-entropy on the single logit: the meta RM predicts "this judgement is correct"."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.logits.squeeze(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels.float())
        return (loss, outputs) if return_outputs else loss


class _RightPadCollator:
    """Right padding with the model's pad id: the classifier pools the last non-pad token, as at inference."""

    def __init__(self, pad_id: int) -> None:
        self.pad_id = pad_id

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        width = max(len(f["input_ids"]) for f in features)
        input_ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, feature in enumerate(features):
            ids = feature["input_ids"]
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        labels = torch.tensor([float(f["labels"]) for f in features])
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def train_meta_rm(config: MetaRMConfig) -> MetaRMResult:
    """Train the meta RM on labelled judgements, report held-out metrics, and save a loadable classifier."""
    assert config.data is not None  # checked in __post_init__
    tokenizer = config.load_tokenizer()
    added_pad = _ensure_pad_token(tokenizer)
    rows = [row for path in config.data for row in read_checked(path, _meta_row)]
    train_rows, eval_rows = split_by_item(rows, config.eval_fraction, config.split_seed)
    if config.balance:
        train_rows = balance_classes(train_rows, config.split_seed)
    train_ds, dropped_train = _tokenize(train_rows, tokenizer, config.max_length)
    eval_ds, dropped_eval = _tokenize(eval_rows, tokenizer, config.max_length)
    if not train_ds:
        raise ConfigurationError("no meta-RM training rows left after the split, balancing and length filter")
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        config.model_name_or_path, num_labels=1, pad_token_id=tokenizer.pad_token_id, **config.model_kwargs()
    )
    if added_pad:
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    lora = config.lora_config("SEQ_CLS")
    if lora is not None:
        model = require("peft", extra="train").get_peft_model(model, lora)
    trainer = BCETrainer(
        model=model,
        args=config,
        train_dataset=datasets.Dataset.from_list(train_ds),
        data_collator=_RightPadCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
    )
    trainer.train()
    metrics = _evaluate(trainer, eval_ds)
    save_checkpoint(
        trainer,
        tokenizer,
        config,
        str(config.output_dir),
        auto_class=transformers.AutoModelForSequenceClassification,
        num_labels=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    result = MetaRMResult(
        output_dir=str(config.output_dir),
        train_rows=len(train_ds),
        train_positives=sum(row["labels"] for row in train_ds),
        eval_rows=len(eval_ds),
        dropped_too_long=dropped_train + dropped_eval,
        losses=logged_losses(trainer),
        **metrics,
    )
    if trainer.accelerator.is_main_process:
        out = Path(str(config.output_dir))
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
        write_run_card(out, "meta-rm", config, data_files=config.data, results=result.model_dump())
    return result


def _meta_row(row: Mapping[str, Any]) -> dict[str, Any]:
    messages = [Message.model_validate(m) for m in row["messages"]]
    if len(messages) != 2 or messages[0].role != "user" or messages[1].role != "assistant":
        raise InvalidInputError("messages must be the meta-RM chat: one user turn, then the judgement")
    label = row["label"]
    if label not in (0, 1) or isinstance(label, float):
        raise InvalidInputError(f"label must be 0 or 1, got {label!r}")
    return {"messages": [m.model_dump() for m in messages], "label": int(label), "item_id": str(row["item_id"])}


def _ensure_pad_token(tokenizer: Any) -> bool:
    """Give the tokenizer a pad token distinct from EOS (pooling skips pad); True if one had to be added."""
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return False
    if tokenizer.unk_token_id is not None and tokenizer.unk_token_id != tokenizer.eos_token_id:
        tokenizer.pad_token = tokenizer.unk_token
        return False
    tokenizer.add_special_tokens({"pad_token": _FALLBACK_PAD})
    return True


def _tokenize(rows: Sequence[Mapping[str, Any]], tokenizer: Any, max_length: int) -> tuple[list[dict[str, Any]], int]:
    """Token ids as `TransformersChatClassifier` computes them: chat template, no generation prompt, no extras."""
    tokenized: list[dict[str, Any]] = []
    for row in rows:
        text = tokenizer.apply_chat_template(row["messages"], tokenize=False, add_generation_prompt=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) > max_length:
            continue
        if ids[-1] == tokenizer.pad_token_id:
            raise ConfigurationError("the chat template ends chats with the pad token; the classifier could not pool")
        tokenized.append({"input_ids": ids, "labels": row["label"]})
    return tokenized, len(rows) - len(tokenized)


def _evaluate(trainer: Any, eval_rows: list[dict[str, Any]]) -> dict[str, float | None]:
    if not eval_rows:
        return {"eval_auc": None, "eval_accuracy": None, "eval_loss": None}
    prediction = trainer.predict(datasets.Dataset.from_list(eval_rows))
    logits = [float(x) for x in prediction.predictions.reshape(-1)]
    labels = [int(row["labels"]) for row in eval_rows]
    accuracy = sum((logit > 0) == (label == 1) for logit, label in zip(logits, labels, strict=True)) / len(labels)
    loss = sum(_bce(logit, label) for logit, label in zip(logits, labels, strict=True)) / len(labels)
    return {"eval_auc": roc_auc(logits, labels), "eval_accuracy": accuracy, "eval_loss": loss}


def _bce(logit: float, label: int) -> float:
    # log(1 + exp(-|x|)) keeps large logits finite
    return max(logit, 0.0) - logit * label + math.log1p(math.exp(-abs(logit)))
