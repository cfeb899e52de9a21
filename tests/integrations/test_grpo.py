"""Two GRPO steps of TRL's ``GRPOTrainer`` on a tiny policy, rewarded by a tiny GRM served by a real vLLM server.

The random GRM writes garbage, so one reward constrains its output to a score box with vLLM's structured
outputs (real verdicts from a real server), and another leaves it free (no verdicts: every completion gets the
fallback, logged and counted). A third, on a scripted GRM, runs through the blocking twin on TRL's sync path.
Every GRM request is recorded: a group of G completions must cost k samples, each showing all G of them.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from grmjudge import Judge, JudgeSettings
from grmjudge.backends import Backend, OpenAIBackend
from grmjudge.integrations.trl import GRMReward
from grmjudge.testing.vllm_server import VLLMServer
from grmjudge.types import Generation, GenerationRequest

from .scripted import ScriptedGRM, shown

pytestmark = [
    pytest.mark.engine,
    # importing TRL's GRPO trainer imports vLLM: TRL warns that it was not tested with this vLLM, and vLLM's
    # import of torch.compile trips a torch deprecation; the policy generates with transformers here
    pytest.mark.filterwarnings("ignore:TRL currently supports vLLM versions:UserWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]

PROMPTS = [
    "What is the capital of France?",
    "How do I sort a list in Python?",
    "Why does water boil at 100 degrees?",
    "Write a short summary of the Moon landing.",
]
G, K, STEPS, PROMPTS_PER_STEP = 4, 2, 2, 2
BOX_OF_FOUR = r"Scores: \\boxed\{([1-9]|10), ([1-9]|10), ([1-9]|10), ([1-9]|10)\}"


class RecordingBackend(Backend):
    """A real backend that records every request it passes on."""

    name = "recording"

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.model = inner.model
        self.supports_n = inner.supports_n
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        return await self.inner.generate(request)

    async def aclose(self) -> None:
        await self.inner.aclose()
        await super().aclose()


def samples_per_group(requests: list[GenerationRequest]) -> Counter[tuple[str, tuple[str, ...]]]:
    """GRM samples per (policy prompt, completions shown), counting ``n`` samples for a request of ``n``."""
    samples = Counter[tuple[str, tuple[str, ...]]]()
    for request in requests:
        content = request.messages[-1].content
        policy_prompt = next(p for p in PROMPTS if f"User: {p}" in content)
        samples[policy_prompt, tuple(sorted(shown(request)))] += request.n
    return samples


def test_two_grpo_steps_rewarded_by_a_served_grm(
    vllm_server: VLLMServer, tiny_model_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    trl: Any = pytest.importorskip("trl")
    datasets: Any = pytest.importorskip("datasets")

    def served() -> RecordingBackend:
        return RecordingBackend(OpenAIBackend(vllm_server.base_url, vllm_server.model, timeout=120))

    guided_backend, free_backend, scripted = served(), served(), ScriptedGRM()
    box = {"structured_outputs": {"regex": BOX_OF_FOUR}}
    guided = GRMReward(
        Judge(guided_backend, settings=JudgeSettings(max_tokens=40, max_resample_rounds=0, extra_body=box)),
        k=K,
        num_generations=G,
        name="grm_guided",
    )
    free = GRMReward(
        Judge(free_backend, settings=JudgeSettings(max_tokens=8, max_resample_rounds=0)),
        k=K,
        num_generations=G,
        name="grm_free",
    )
    blocking = GRMReward(scripted.judge(), k=1, num_generations=G, name="grm_scripted")
    config = trl.GRPOConfig(
        output_dir=str(tmp_path),
        max_steps=STEPS,
        per_device_train_batch_size=G * PROMPTS_PER_STEP,
        num_generations=G,
        max_completion_length=8,
        learning_rate=1e-3,
        logging_steps=1,
        report_to="none",
        save_strategy="no",
        use_cpu=True,
        bf16=False,
        seed=0,
        disable_tqdm=True,
    )
    trainer = trl.GRPOTrainer(
        model=str(tiny_model_dir),
        reward_funcs=[guided, free, blocking.as_sync()],
        args=config,
        train_dataset=datasets.Dataset.from_list([{"prompt": p} for p in PROMPTS]),
    )
    with caplog.at_level(logging.WARNING, logger="grmjudge.integrations"):
        trainer.train()

    groups = STEPS * PROMPTS_PER_STEP
    for backend in (guided_backend, free_backend):
        # one listwise call per group: K samples each showing all G completions, never G pointwise calls
        assert all(len(shown(request)) == G for request in backend.requests)
        assert list(samples_per_group(backend.requests).values()) == [K] * groups
    assert samples_per_group(guided_backend.requests) == samples_per_group(free_backend.requests)
    assert len(scripted.requests) == groups and all(len(shown(r)) == G for r in scripted.requests)

    assert guided.stats.fallback_rewards == 0 and guided.stats.valid_samples == K * groups
    assert free.stats.fallback_rewards == G * groups and free.stats.no_verdict_calls == groups
    assert sum(free.stats.failures.values()) == K * groups and free.stats.valid_samples == 0
    no_verdicts = [r for r in caplog.records if r.getMessage().startswith("grm_free: the GRM gave no verdict")]
    assert len(no_verdicts) == groups

    logged = [entry for entry in trainer.state.log_history if "rewards/grm_guided/mean" in entry]
    assert len(logged) == STEPS
    for entry in logged:
        assert 1.0 <= entry["rewards/grm_guided/mean"] <= 10.0
        assert 1.0 <= entry["rewards/grm_scripted/mean"] <= 10.0
        assert entry["rewards/grm_free/mean"] is None  # None for every completion: TRL logs no number
        assert entry["grm_free/fallback_rate"] == 1.0 and entry["grm_guided/fallback_rate"] == 0.0
        assert entry["grm_guided/valid_sample_rate"] == 1.0
        assert entry["reward"] == pytest.approx(entry["rewards/grm_guided/mean"] + entry["rewards/grm_scripted/mean"])
