"""The sizes of a toy run, by name (``SCALES``): full, warm, quick, gpu and tiny.

``full`` is the reported run: the whole protocol from a random model in about 90 minutes on two free cores
(from random weights this model needs about 20,000 transcripts before it judges better than chance).
``warm`` and ``--quick`` start from the toy GRM that ships with the package (``DEMO_DIR``) with seeded noise
on every weight: the noise leaves the tokenizer and the shape of the format but wrecks the judgements. ``warm``
(one standard deviation of each tensor: almost no valid judgement left) runs the full protocol with smaller
stages in about a third of the full run's CPU time, for a machine shared with other work; ``--quick`` (half a
standard deviation: 19% greedy accuracy left, against 70% before) is CI's check that the stages learn, with
the widest margins of the noise levels measured (0.5, 0.75 and 1.0). ``gpu`` is a larger model and more data
for one GPU; ``tiny`` a step or two of every stage, for CI.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Literal

__all__ = ["DEMO_DIR", "FULL", "GPU", "QUICK", "SCALES", "TINY", "WARM", "ToyConfig"]

DEMO_DIR = Path(str(resources.files("grmjudge") / "_demo"))
"""The full run's final GRM and meta RM, a few held-out items and the run's report, shipped with the package."""


@dataclass(frozen=True)
class ToyConfig:
    """Every number a toy run depends on; the run card records it, and a resumed run must use the same one."""

    train_items: int
    validation_items: int
    """Multi-response items of the validation split: the GRPO stopping point is chosen on them, never on held-out."""
    heldout_items: int
    """Multi-response items of the held-out split, judged once by each final GRM for the report."""
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
    grpo_lrs: tuple[float, ...]
    """GRPO runs once per learning rate; the checkpoint (of any of them) with the best validation greedy is kept."""
    grpo_save_steps: int
    """GRPO keeps a checkpoint every this many steps; the one with the best greedy validation accuracy is kept."""
    grpo_prefilter_samples: int
    """Samples per GRPO item from the RFT model; items it gets right in all of them are dropped (0: no filter)."""
    meta_items: int
    meta_samples: int
    meta_steps: int
    meta_lr: float
    eval_k: int
    """Samples per held-out item for the final GRM (its Voting@k and MetaRM@k curve runs up to this k)."""
    baseline_eval_k: int
    """Samples per held-out item for the cold start and RFT, whose table columns stop at k = 8."""
    temperature: float
    start: Literal["random", "demo"] = "random"
    """``random``: a random Llama with a tokenizer trained on the training text; ``demo``: the shipped toy GRM."""
    start_noise: float = 0.0
    """Gaussian noise added to every weight of a ``demo`` start, in units of that tensor's standard deviation."""
    shape: Literal["toy", "gpu"] = "toy"
    """The model's shape (`grmjudge.training.toy.model.SHAPES`): about 1M weights, or about 5M for a GPU."""
    device: Literal["cpu", "cuda"] = "cpu"
    """Where every stage trains and generates."""
    max_batch_sequences: int = 128
    """Rows per ``generate`` call when sampling and evaluating."""
    batch_size: int = 32
    group_size: int = 4
    max_tokens: int = 160
    bootstrap: int = 1000
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The config as plain JSON data (tuples as lists), for run cards and the resume check."""
        return json.loads(json.dumps(asdict(self)))


FULL = ToyConfig(
    train_items=12000,
    validation_items=500,
    heldout_items=1000,
    teacher_error_rate=0.3,
    cold_start_steps=1200,
    cold_start_lr=3e-3,
    rft_items=2000,
    rft_samples=3,
    rft_steps=250,
    rft_lr=1e-3,
    grpo_items=2400,
    grpo_steps=120,
    grpo_prompts_per_step=16,
    grpo_lrs=(5e-5, 2e-4),
    grpo_save_steps=40,
    grpo_prefilter_samples=3,
    meta_items=2000,
    meta_samples=4,
    meta_steps=800,
    meta_lr=5e-4,
    eval_k=8,
    baseline_eval_k=8,
    temperature=1.0,
)
"""The whole protocol from random weights: the reported run (about 90 minutes on two free cores)."""

QUICK = replace(
    FULL,
    start="demo",
    start_noise=0.5,
    train_items=2000,
    validation_items=40,
    heldout_items=100,
    cold_start_steps=60,
    cold_start_lr=1e-3,
    rft_items=100,
    rft_steps=20,
    rft_lr=2e-4,
    grpo_items=120,
    grpo_steps=3,
    grpo_prompts_per_step=4,
    grpo_lrs=(5e-5,),
    grpo_save_steps=1,
    meta_items=60,
    meta_samples=3,
    meta_steps=20,
    eval_k=2,
    baseline_eval_k=2,
    bootstrap=200,
)
"""Every stage on a small scale from the noised shipped GRM, for CI: the stages, their hand-offs and that they learn."""

GPU = replace(
    FULL,
    shape="gpu",
    device="cuda",
    max_batch_sequences=512,
    train_items=30000,
    validation_items=1000,
    heldout_items=2000,
    cold_start_steps=2500,
    batch_size=64,
    rft_items=4000,
    rft_steps=400,
    grpo_items=4000,
    grpo_steps=100,
    grpo_prompts_per_step=32,
    grpo_save_steps=25,
    meta_items=4000,
    meta_steps=800,
    eval_k=16,
    baseline_eval_k=8,
)
"""The same pipeline on one GPU: a 5M-weight model from random weights, 2.5x the data, 2,000 held-out items.

Sized from the CPU run's stage times to finish in under 10 minutes on one H100 (``scripts/gpu_toy.sh``); the
stage record of a GPU run gives the real times.
"""

TINY = replace(
    QUICK,
    start_noise=0.0,
    train_items=64,
    validation_items=8,
    heldout_items=16,
    cold_start_steps=2,
    rft_items=16,
    rft_steps=2,
    grpo_items=16,
    grpo_steps=2,
    grpo_prompts_per_step=2,
    grpo_lrs=(5e-5, 2e-4),
    grpo_save_steps=1,
    grpo_prefilter_samples=1,
    meta_items=16,
    meta_steps=2,
    bootstrap=50,
)
"""Every stage for a step or two from the shipped GRM, on CPU: what CI runs of ``scripts/gpu_toy.sh`` (it checks
that the script and the stages fit together, not that anything learns)."""


WARM = replace(
    FULL,
    start="demo",
    start_noise=1.0,
    train_items=6000,
    validation_items=200,
    cold_start_steps=150,
    cold_start_lr=1e-3,
    rft_items=600,
    rft_steps=80,
    rft_lr=2e-4,
    grpo_items=600,
    grpo_steps=60,
    grpo_prompts_per_step=8,
    grpo_lrs=(5e-5,),
    grpo_save_steps=20,
    meta_items=600,
    meta_samples=3,
    meta_steps=150,
    baseline_eval_k=1,
)
"""The full protocol with smaller stages from the noised shipped GRM instead of random weights, on 1,000 held-out
items, in a third of the full run's CPU time: the cold start and RFT are judged greedily, the final GRM with 8
samples."""

SCALES = {"full": FULL, "warm": WARM, "quick": QUICK, "gpu": GPU, "tiny": TINY}
"""The named sizes, as ``run --scale`` spells them."""
