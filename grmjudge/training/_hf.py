# pyright: basic
"""What the three trainers share: model options (LoRA included), tokenizer loading, saving a usable checkpoint.

A trained checkpoint must load where grmjudge uses it: `TransformersBackend` and vLLM for the GRM,
`TransformersMetaScorer` and vLLM's classification endpoint for the meta RM. So by default a LoRA adapter
is merged into the weights before saving (``merge_adapter``), the adapter itself is kept under
``adapter/``, and the tokenizer is saved with its chat template.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grmjudge._optional import require
from grmjudge.exceptions import ConfigurationError
from grmjudge.training.config import option

torch: Any = require("torch", extra="train")
transformers: Any = require("transformers", extra="train")
peft: Any = require("peft", extra="train")

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""ChatML, offered for base models that ship without a chat template (``--chat-template chatml``)."""


@dataclass
class ModelOptions:
    """The model to train, how to load it, and LoRA (mixed into every trainer config)."""

    model_name_or_path: str | None = option(None, "Model to start from: a local directory or a hub id.")
    model_dtype: str = option("auto", "dtype to load the weights in: auto, bfloat16, float16 or float32.")
    trust_remote_code: bool = option(False, "Allow model code from the hub repository.")
    attn_implementation: str | None = option(None, "Attention kernel, e.g. sdpa or flash_attention_2.")
    chat_template: str | None = option(
        None, "Chat template for a tokenizer without one: 'chatml' or a path to a Jinja file."
    )
    use_peft: bool = option(False, "Train a LoRA adapter instead of all weights.")
    lora_r: int = option(16, "LoRA rank.")
    lora_alpha: int = option(32, "LoRA alpha.")
    lora_dropout: float = option(0.05, "LoRA dropout.")
    lora_target_modules: list[str] | None = option(None, "Modules to adapt; default: all linear layers.")
    merge_adapter: bool = option(True, "Merge the LoRA adapter into the saved model (it is also kept in adapter/).")

    def check_model_options(self) -> None:
        """Cross-field checks, called from the trainer config's ``__post_init__``."""
        if self.model_name_or_path is None:
            raise ConfigurationError("--model-name-or-path is required")
        if self.use_peft and self.lora_r < 1:
            raise ConfigurationError("--lora-r must be at least 1")

    def model_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``from_pretrained``."""
        kwargs: dict[str, Any] = {"dtype": self.model_dtype, "trust_remote_code": self.trust_remote_code}
        if self.attn_implementation is not None:
            kwargs["attn_implementation"] = self.attn_implementation
        return kwargs

    def lora_config(self, task_type: str, modules_to_save: list[str] | None = None) -> Any:
        """The peft ``LoraConfig``, or ``None`` without ``use_peft``."""
        if not self.use_peft:
            return None
        return peft.LoraConfig(
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=self.lora_target_modules or "all-linear",
            task_type=task_type,
            modules_to_save=modules_to_save,
        )

    def load_tokenizer(self) -> Any:
        """The model's tokenizer, with ``chat_template`` applied; it must end up with a chat template."""
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            self.model_name_or_path, trust_remote_code=self.trust_remote_code
        )
        if self.chat_template is not None:
            tokenizer.chat_template = _template_text(self.chat_template)
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigurationError(
                f"the tokenizer of {self.model_name_or_path} has no chat template; pass --chat-template chatml "
                "(or a Jinja file) so that training and inference render prompts the same way"
            )
        return tokenizer


def _template_text(spec: str) -> str:
    if spec == "chatml":
        return CHATML_TEMPLATE
    path = Path(spec)
    if not path.is_file():
        raise ConfigurationError(f"--chat-template must be 'chatml' or a Jinja file, got {spec!r}")
    return path.read_text(encoding="utf-8")


def save_checkpoint(
    trainer: Any, tokenizer: Any, options: ModelOptions, output_dir: str | Path, *, auto_class: Any, **load_kwargs: Any
) -> Path:
    """Save the trained model so that it loads as a plain checkpoint, with the tokenizer and its chat template.

    Without LoRA (or with ``merge_adapter`` off) this is ``trainer.save_model``, which also gathers sharded
    (ZeRO-3, FSDP) weights. With LoRA and ``merge_adapter`` the adapter goes to ``output_dir/adapter``, and
    the main process reloads the base model (``auto_class`` with ``load_kwargs``), merges the adapter into it
    and saves the result to ``output_dir``: that works however the training weights were sharded.
    """
    out = Path(output_dir)
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not (isinstance(model, peft.PeftModel) and options.merge_adapter):
        trainer.save_model(str(out))
        if trainer.accelerator.is_main_process:
            tokenizer.save_pretrained(out)
        return out
    adapter_dir = out / "adapter"
    trainer.save_model(str(adapter_dir))
    if trainer.accelerator.is_main_process:
        base = auto_class.from_pretrained(options.model_name_or_path, **options.model_kwargs(), **load_kwargs)
        if base.get_input_embeddings().num_embeddings < len(tokenizer):
            base.resize_token_embeddings(len(tokenizer))
        merged = peft.PeftModel.from_pretrained(base, str(adapter_dir)).merge_and_unload()
        merged.save_pretrained(out, safe_serialization=True)
        tokenizer.save_pretrained(out)
    trainer.accelerator.wait_for_everyone()
    return out


def logged_losses(trainer: Any) -> list[float]:
    """The training losses the trainer logged, in order (to check that it trained)."""
    return [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
