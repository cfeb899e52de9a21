"""SPCT training for generative reward models: rejective fine-tuning, rule-based GRPO and the meta RM.

Never imported by ``import grmjudge``. Names load on first use: the data, reward and sampling parts need no
ML framework; the trainers (`train_sft`, `train_grpo`, `train_meta_rm` and their configs) need the
``train`` extra and raise [`MissingDependencyError`][grmjudge.exceptions.MissingDependencyError] naming it
when TRL is missing. Commands: ``grmjudge train rft-sample | sft | grpo | meta-sample | meta-rm`` (or
``python -m grmjudge.training ...``); see ``docs/training.md``.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from grmjudge.exceptions import MissingDependencyError

if TYPE_CHECKING:
    from grmjudge.rows import DataError, RowError, read_rows
    from grmjudge.training._sampler import Judgement, JudgementSampler
    from grmjudge.training.data import LoadReport, SPCTExample, convert_rows, load_examples, write_examples
    from grmjudge.training.decontamination import DecontaminationReport, decontaminate
    from grmjudge.training.grpo import GRPOResult, JudgeGRPOConfig, train_grpo
    from grmjudge.training.meta_data import MetaSampleConfig, MetaSampleStats, meta_rows, run_meta_sampling
    from grmjudge.training.meta_rm import MetaRMConfig, MetaRMResult, train_meta_rm
    from grmjudge.training.rewards import (
        Label,
        Verdict,
        is_correct,
        is_correct_shown,
        judge_text,
        make_spct_reward,
        shown_label,
        spct_reward,
    )
    from grmjudge.training.rft import RejectionSampler, RFTSampleConfig, RFTStats, run_rft_sampling
    from grmjudge.training.rl_data import PrefilterReport, grpo_rows, prefilter
    from grmjudge.training.sft import JudgeSFTConfig, SFTResult, train_sft

_LIGHT = {
    "grmjudge.training.data": ("LoadReport", "SPCTExample", "convert_rows", "load_examples", "write_examples"),
    "grmjudge.rows": ("DataError", "RowError", "read_rows"),
    "grmjudge.training.decontamination": ("DecontaminationReport", "decontaminate"),
    "grmjudge.training.rewards": (
        "Label",
        "Verdict",
        "is_correct",
        "is_correct_shown",
        "judge_text",
        "make_spct_reward",
        "shown_label",
        "spct_reward",
    ),
    "grmjudge.training._sampler": ("Judgement", "JudgementSampler"),
    "grmjudge.training.rft": ("RFTSampleConfig", "RFTStats", "RejectionSampler", "run_rft_sampling"),
    "grmjudge.training.meta_data": ("MetaSampleConfig", "MetaSampleStats", "meta_rows", "run_meta_sampling"),
    "grmjudge.training.rl_data": ("PrefilterReport", "grpo_rows", "prefilter"),
}
_HEAVY = {
    "grmjudge.training.sft": ("JudgeSFTConfig", "SFTResult", "train_sft"),
    "grmjudge.training.grpo": ("GRPOResult", "JudgeGRPOConfig", "train_grpo"),
    "grmjudge.training.meta_rm": ("MetaRMConfig", "MetaRMResult", "train_meta_rm"),
}
_WHERE = {name: module for table in (_LIGHT, _HEAVY) for module, names in table.items() for name in names}


def __getattr__(name: str) -> Any:
    """Import the module that defines ``name`` on first use; trainers need the ``train`` extra."""
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module in _HEAVY and importlib.util.find_spec("trl") is None:
        raise MissingDependencyError(
            f"grmjudge.training.{name} needs TRL, which comes with the 'train' extra: pip install 'grmjudge[train]'"
        )
    return getattr(importlib.import_module(module), name)


__all__ = [
    "DataError",
    "DecontaminationReport",
    "GRPOResult",
    "JudgeGRPOConfig",
    "JudgeSFTConfig",
    "Judgement",
    "JudgementSampler",
    "Label",
    "LoadReport",
    "MetaRMConfig",
    "MetaRMResult",
    "MetaSampleConfig",
    "MetaSampleStats",
    "PrefilterReport",
    "RFTSampleConfig",
    "RFTStats",
    "RejectionSampler",
    "RowError",
    "SFTResult",
    "SPCTExample",
    "Verdict",
    "convert_rows",
    "decontaminate",
    "grpo_rows",
    "is_correct",
    "is_correct_shown",
    "judge_text",
    "load_examples",
    "make_spct_reward",
    "meta_rows",
    "prefilter",
    "read_rows",
    "run_meta_sampling",
    "run_rft_sampling",
    "shown_label",
    "spct_reward",
    "train_grpo",
    "train_meta_rm",
    "train_sft",
    "write_examples",
]
