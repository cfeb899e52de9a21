"""The sizes of a toy run: the full run (about 26 minutes on two CPU cores) and ``--quick`` (a few minutes).

The full run starts from a random model. ``--quick`` starts from the toy GRM that ships with the package
(``DEMO_DIR``) with seeded noise on every weight: from random weights, this model needs about 20,000
transcripts (12 minutes on two cores, a point that moves between machines) before it judges better than
chance, which is the full run's job to show. The noised GRM writes a valid judgement for about 15% of the
held-out items and is right on 3-5%, and 60 cold-start steps bring it back above 60%: a CI run tests that
the stages learn, in a few minutes, with a margin that holds on any machine.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

__all__ = ["DEMO_DIR", "FULL", "QUICK", "ToyConfig"]

DEMO_DIR = Path(str(resources.files("grmjudge") / "_demo"))
"""The full run's final GRM and meta RM, a few held-out items and the run's report, shipped with the package."""


@dataclass(frozen=True)
class ToyConfig:
    """Every number a toy run depends on; the run card records it, and a resumed run must use the same one."""

    train_items: int
    heldout_items: int
    teacher_error_rate: float
    cold_start_steps: int
    cold_start_lr: float
    rft_items: int
    rft_samples: int
    rft_steps: int
    rft_lr: float
    grpo_items: int
    grpo_steps: int
    grpo_prompts_per_step: int
    grpo_lr: float
    meta_items: int
    meta_samples: int
    meta_steps: int
    meta_lr: float
    eval_k: int
    temperature: float
    start: Literal["random", "demo"] = "random"
    """``random``: a random Llama with a tokenizer trained on the training text; ``demo``: the shipped toy GRM."""
    start_noise: float = 0.0
    """Gaussian noise added to every weight of a ``demo`` start, in units of that tensor's standard deviation."""
    batch_size: int = 32
    group_size: int = 4
    max_tokens: int = 160
    bootstrap: int = 1000
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data, for run cards and the resume check."""
        return asdict(self)


FULL = ToyConfig(
    train_items=12000,
    heldout_items=200,
    teacher_error_rate=0.3,
    cold_start_steps=1200,
    cold_start_lr=3e-3,
    rft_items=2000,
    rft_samples=3,
    rft_steps=250,
    rft_lr=1e-3,
    grpo_items=4000,
    grpo_steps=80,
    grpo_prompts_per_step=8,
    grpo_lr=3e-5,
    meta_items=1000,
    meta_samples=3,
    meta_steps=500,
    meta_lr=5e-4,
    eval_k=16,
    temperature=1.0,
)
"""The run whose table and plot the docs show."""

QUICK = replace(
    FULL,
    start="demo",
    start_noise=1.0,
    train_items=2000,
    heldout_items=100,
    cold_start_steps=60,
    cold_start_lr=1e-3,
    rft_items=100,
    rft_steps=20,
    rft_lr=2e-4,
    grpo_items=400,
    grpo_steps=3,
    grpo_prompts_per_step=4,
    meta_items=60,
    meta_steps=20,
    eval_k=2,
    bootstrap=200,
)
"""Every stage on a small scale from the noised shipped GRM, for CI: the stages, their hand-offs and that they learn."""
