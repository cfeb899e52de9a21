"""Pieces every stage configuration shares: the dataclass-field helper, the data and sampling options, templates.

Stage configs are dataclasses whose fields double as command-line flags and YAML keys (TRL's convention:
``metadata={"help": ...}``, parsed by ``trl.TrlParser``). The trainer configs subclass TRL's or
transformers' own configs, so every TRL option is available too; the sampling configs are plain dataclasses
and need no ML framework.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grmjudge._optional import require
from grmjudge.exceptions import ConfigurationError
from grmjudge.prompts import BUILTIN_TEMPLATES, PromptTemplate
from grmjudge.training.data import FORMATS, LoadReport, load_examples


def option(default: Any = None, help: str = "", *, factory: Callable[[], Any] | None = None, **metadata: Any) -> Any:
    """A dataclass field with TRL-style ``metadata={"help": ...}`` (``factory`` for mutable defaults)."""
    meta = {"help": help, **metadata}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class DataOptions:
    """Where the SPCT examples come from and how to read them (shared by the stages that read examples)."""

    data: str | None = option(None, "SPCT examples: a .jsonl/.json/.parquet file or a Hugging Face dataset id.")
    data_format: str = option("auto", "Row shape of the data.", choices=list(FORMATS))
    data_split: str = option("train", "Split to read when the data is a hub dataset.")
    data_source_name: str | None = option(None, "Source tag for statistics; default: the file name or dataset id.")
    decontaminate_with: list[str] | None = option(
        None, "Evaluation sets (files or hub ids) whose prompts are removed from the training data."
    )
    max_items: int | None = option(None, "Use only the first N examples (for smoke runs).")
    pair_order_seed: int = option(0, "Seed for the A/B order of pairwise rows.")

    def check_data_options(self) -> None:
        """Cross-field checks, called from the stage config's ``__post_init__``."""
        if self.data is None:
            raise ConfigurationError("--data is required: a file of SPCT examples or a hub dataset id")
        if self.data_format not in FORMATS:
            raise ConfigurationError(f"--data-format must be one of {', '.join(FORMATS)}, got {self.data_format!r}")
        if self.max_items is not None and self.max_items < 1:
            raise ConfigurationError("--max-items must be at least 1")

    def load_data(self) -> LoadReport:
        """Load, convert and decontaminate the examples; bad rows raise a `DataError` listing all of them."""
        assert self.data is not None  # checked in __post_init__
        report = load_examples(
            self.data,
            format=self.data_format,  # pyright: ignore[reportArgumentType]  (checked against FORMATS)
            split=self.data_split,
            source_name=self.data_source_name,
            seed=self.pair_order_seed,
            decontaminate_with=self.decontaminate_with or (),
        )
        if self.max_items is not None:
            report.examples = report.examples[: self.max_items]
        return report


@dataclass
class SampleOptions(DataOptions):
    """What the sampling stages (``rft-sample``, ``meta-sample``) share: where to write, the sampler, how to sample.

    A stage redefines a field only to change its default (the output directory, the temperature).
    """

    output_dir: str = option(
        "samples", "Directory for records.jsonl, the stage's data file, stats.json and run_card.json."
    )
    sampler: str | None = option(None, "Sampler backend spec, e.g. 'openai:my-grm' or 'hf:/path/to/model'.")
    sampler_base_url: str | None = option(None, "Base URL for an 'openai:' sampler (vLLM, SGLang, any API).")
    samples_per_item: int = option(3, "Judgements per item, the paper's N = 3 (rft-sample: the non-hinted ones).")
    temperature: float = option(1.0, "Sampling temperature.")
    top_p: float | None = option(None, "Nucleus sampling; default: the backend's.")
    max_tokens: int = option(4096, "Token limit per judgement; one cut off at the limit counts as a parse failure.")
    seed: int = option(0, "Seed of the shuffles and of the per-sample seeds.")
    concurrency: int = option(16, "Items in flight at once.")
    max_concurrent_requests: int = option(64, "Backend requests in flight at once.")
    template: str = option("deepseek-grm-default", "Judge template for n >= 2 (built-in id or YAML/JSON file).")
    single_template: str = option("deepseek-grm-single-0-1", "Template for single responses (0/1 scores).")

    def check_sample_options(self) -> None:
        """Cross-field checks of the data and the sampler, called from the stage config's ``__post_init__``."""
        self.check_data_options()
        if self.sampler is None:
            raise ConfigurationError("--sampler is required, e.g. openai:MODEL with --sampler-base-url, or hf:PATH")


def resolve_template(spec: str | PromptTemplate) -> PromptTemplate:
    """A template by built-in id, or from a YAML/JSON file with ``id``, ``text``, ``score_range``, ``numbered``."""
    if isinstance(spec, PromptTemplate):
        return spec
    if spec in BUILTIN_TEMPLATES:
        return BUILTIN_TEMPLATES[spec]
    path = Path(spec)
    if not path.is_file():
        raise ConfigurationError(
            f"unknown template {spec!r}: give a built-in id ({', '.join(BUILTIN_TEMPLATES)}) or a YAML/JSON file"
        )
    text = path.read_text(encoding="utf-8")
    data: Any = json.loads(text) if path.suffix == ".json" else require("yaml", extra="train").safe_load(text)
    if not isinstance(data, dict):
        raise ConfigurationError(f"{path} must hold a mapping with id, text, score_range and numbered")
    try:
        return PromptTemplate.model_validate(data)
    except ValueError as exc:
        raise ConfigurationError(f"{path} is not a valid template: {exc}") from exc
