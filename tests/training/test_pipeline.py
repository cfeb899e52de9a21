"""Every SPCT stage end to end on CPU with tiny local models, through the public entry points.

rejection sampling (scripted sampler) -> SFT -> GRPO (with and without LoRA) -> Judge on the trained GRM;
meta sampling -> meta-RM training -> Judge with the trained meta RM. The SFT run takes 80 steps, not 2: the
GRPO runs start from its model and need a policy that sometimes writes a valid, sometimes a wrong box, or
every group would get equal rewards and no gradient.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import pytest

from grmjudge import Judge, JudgeSettings
from grmjudge.training.data import write_examples
from grmjudge.training.rft import RFTSampleConfig, run_rft_sampling

from .conftest import SHORT, SHORT_SINGLE, template_file
from .scripted import ScriptedSampler, pair_item, single_item

pytestmark = [
    pytest.mark.engine,
    pytest.mark.usefixtures("one_torch_thread"),
    # importing TRL's GRPO trainer imports vLLM when it is installed: TRL warns that it was not tested with
    # this vLLM, and vLLM's import of torch.compile trips a torch deprecation; these runs do not use vLLM
    pytest.mark.filterwarnings("ignore:TRL currently supports vLLM versions:UserWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning"),
]

for _module in ("torch", "transformers", "trl", "peft", "datasets"):
    pytest.importorskip(_module)

from grmjudge.backends.transformers import TransformersBackend  # noqa: E402
from grmjudge.meta import TransformersMetaScorer  # noqa: E402
from grmjudge.testing.tiny import build_tiny_classifier  # noqa: E402
from grmjudge.training.cli import main  # noqa: E402
from grmjudge.training.grpo import JudgeGRPOConfig, train_grpo  # noqa: E402
from grmjudge.training.meta_data import MetaSampleConfig, run_meta_sampling  # noqa: E402

ITEMS = [pair_item(f"item-{i}", best_first=i % 2 == 0) for i in range(16)] + [
    single_item(f"item-s{i}", rating=i % 2) for i in range(4)
]
CPU = {"use_cpu": True, "bf16": False, "fp16": False, "report_to": "none", "save_strategy": "no", "seed": 0}


def weights(directory: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    return load_file(str(directory / "model.safetensors"))


def changed(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    assert before.keys() <= after.keys()
    return [name for name in before if not bool((before[name] == after[name]).all())]


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("spct")


@pytest.fixture(scope="module")
def templates(work: Path) -> tuple[Path, Path]:
    return template_file(work, SHORT), template_file(work, SHORT_SINGLE)


@pytest.fixture(scope="module")
def items_file(work: Path) -> Path:
    path = work / "items.jsonl"
    write_examples(path, ITEMS)
    return path


@pytest.fixture(scope="module")
def rft_dir(work: Path, items_file: Path, templates: tuple[Path, Path]) -> Path:
    script = ScriptedSampler(
        {item.id: ["right", "wrong", "right"] for item in ITEMS},
        {item.id: ["right"] for item in ITEMS},
        head="",
    )
    config = RFTSampleConfig(
        data=str(items_file),
        sampler="function:scripted",
        output_dir=str(work / "rft"),
        template=str(templates[0]),
        single_template=str(templates[1]),
        seed=1,
    )
    stats = anyio.run(lambda: run_rft_sampling(config, backend=script.backend()))
    assert stats.examples == 16 * 3 + 4 * 2 and stats.too_easy == 0
    return work / "rft"


@pytest.fixture(scope="module")
def sft_dir(work: Path, rft_dir: Path, tiny_model_dir: Path) -> Path:
    yaml = pytest.importorskip("yaml")
    config = {
        "model_name_or_path": str(tiny_model_dir),
        "data": [str(rft_dir / "sft.jsonl")],
        "output_dir": str(work / "sft"),
        "max_steps": 80,
        "per_device_train_batch_size": 8,
        "learning_rate": 1e-2,
        "max_length": 512,
        "logging_steps": 10,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        **CPU,
    }
    path = work / "sft.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["sft", "--config", str(path), "--warmup_steps", "0"]) == 0
    return work / "sft"


def test_sft_learns_the_judgement_format(sft_dir: Path, tiny_model_dir: Path) -> None:
    assert changed(weights(tiny_model_dir), weights(sft_dir))
    card = json.loads((sft_dir / "run_card.json").read_text())
    assert card["stage"] == "sft" and card["config"]["max_steps"] == 80 and card["config"]["warmup_steps"] == 0
    losses = card["results"]["losses"]
    assert len(losses) == 8 and losses[-1] < losses[0] / 4
    assert card["results"]["rm_rows"] == 56 and card["results"]["dropped_too_long"] == 0

    async def judge() -> Any:
        backend = TransformersBackend(str(sft_dir), device="cpu")
        settings = JudgeSettings(template=SHORT, max_tokens=16, temperature=1.0)
        async with Judge(backend, settings=settings) as judge:
            return await judge.score(ITEMS[0].query, ITEMS[0].responses, k=8)

    result = anyio.run(judge)
    assert len(result.samples) == 8
    assert result.n_valid >= 1  # the random start never writes a valid box; the fine-tuned model does


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_grpo_with_spct_reward(
    lora: bool, sft_dir: Path, items_file: Path, templates: tuple[Path, Path], work: Path
) -> None:
    out = work / f"grpo-{'lora' if lora else 'full'}"
    config = JudgeGRPOConfig(
        model_name_or_path=str(sft_dir),
        data=str(items_file),
        template=str(templates[0]),
        single_template=str(templates[1]),
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=16,  # 8 groups of 4 in all, so at least one has right and wrong judgements
        num_generations=4,
        max_completion_length=16,
        learning_rate=1e-4 if lora else 1e-5,
        logging_steps=1,
        max_prompt_tokens=512,
        disable_tqdm=True,
        use_peft=lora,
        lora_r=8,
        **CPU,
    )
    assert (config.beta, config.loss_type, config.mask_truncated_completions) == (0.08, "grpo", False)
    result = train_grpo(config)
    assert result.rows == 20 and result.dropped_long_prompts == 0 and len(result.losses) == 2
    assert min(result.frac_reward_zero_std) < 1.0  # some group had both correct and wrong judgements
    assert changed(weights(sft_dir), weights(out))
    assert (out / "adapter").is_dir() == lora
    card = json.loads((out / "run_card.json").read_text())
    assert card["config"]["beta"] == 0.08 and card["config"]["use_peft"] is lora

    async def judge() -> Any:
        backend = TransformersBackend(str(out), device="cpu")
        async with Judge(backend, settings=JudgeSettings(template=SHORT, max_tokens=16)) as judge:
            return await judge.score(ITEMS[1].query, ITEMS[1].responses, k=2)

    result_ = anyio.run(judge)
    assert len(result_.samples) == 2 and all(sample.text is not None for sample in result_.samples)


def test_grpo_runs_through_its_command(
    sft_dir: Path, items_file: Path, templates: tuple[Path, Path], work: Path
) -> None:
    out = work / "grpo-command"
    args = ["grpo", "--model_name_or_path", str(sft_dir), "--data", str(items_file), "--output_dir", str(out)]
    args += ["--template", str(templates[0]), "--single_template", str(templates[1]), "--max_steps", "2"]
    args += ["--per_device_train_batch_size", "8", "--num_generations", "4", "--max_completion_length", "16"]
    args += ["--learning_rate", "1e-5", "--max_prompt_tokens", "512", "--disable_tqdm", "true"]
    args += ["--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--save_strategy", "no"]
    assert main(args) == 0
    assert changed(weights(sft_dir), weights(out))
    assert json.loads((out / "run_card.json").read_text())["config"]["beta"] == 0.08


def test_grpo_drops_prompts_over_the_token_budget(
    sft_dir: Path, items_file: Path, templates: tuple[Path, Path], work: Path
) -> None:
    config = JudgeGRPOConfig(
        model_name_or_path=str(sft_dir),
        data=str(items_file),
        template=str(templates[0]),
        single_template=str(templates[1]),
        output_dir=str(work / "grpo-short"),
        max_prompt_tokens=5,
        **CPU,
    )
    from grmjudge.exceptions import ConfigurationError

    with pytest.raises(ConfigurationError, match="no items left"):
        train_grpo(config)


def test_grpo_prefilter_drops_items_a_reference_server_always_gets_right(sft_dir: Path, work: Path) -> None:
    """The fake OpenAI-compatible server scores by response length: a longer best always wins (too easy)."""
    from tests.servers import serve

    easy = [
        pair_item(f"item-e{i}").model_copy(
            update={"responses": (f"GOOD answer to item-e{i}!", f"weak answer to item-e{i}")}
        )
        for i in range(3)
    ]
    hard = [pair_item(f"item-h{i}") for i in range(2)]  # equal lengths: always a tie, always wrong
    data = work / "prefilter.jsonl"
    write_examples(data, easy + hard)
    with serve() as server:
        config = JudgeGRPOConfig(
            model_name_or_path=str(sft_dir),
            data=str(data),
            template="deepseek-grm-default",
            output_dir=str(work / "grpo-prefilter"),
            prefilter_sampler="openai:fake-grm",
            prefilter_base_url=server.base_url,
            prefilter_max_tokens=64,
            max_steps=1,
            per_device_train_batch_size=4,
            max_completion_length=8,
            max_prompt_tokens=None,
            disable_tqdm=True,
            **CPU,
        )
        result = train_grpo(config)
    assert (result.too_easy, result.always_wrong, result.rows) == (3, 0, 2)
    records = (work / "grpo-prefilter" / "prefilter" / "records.jsonl").read_text().splitlines()
    assert len(records) == 5


@pytest.fixture(scope="module")
def meta_dir(work: Path, items_file: Path, rft_dir: Path, templates: tuple[Path, Path]) -> Path:
    script = ScriptedSampler({item.id: ["right", "wrong", "nobox"] for item in ITEMS})
    config = MetaSampleConfig(
        data=str(items_file),
        sampler="function:scripted",
        output_dir=str(work / "meta-data"),
        template=str(templates[0]),
        single_template=str(templates[1]),
        rft_records=[str(rft_dir / "records.jsonl")],
    )
    stats = anyio.run(lambda: run_meta_sampling(config, backend=script.backend()))
    # 20 items x (1 right, 1 wrong, 1 unparsable) from the GRM; the RFT records add their 3 non-hinted each
    assert (stats.rows, stats.positives, stats.parse_failures) == (120, 20 + 40, 20)
    assert stats.by_origin == {"grm": 60, "rft": 60}
    return work / "meta-data"


@pytest.fixture(scope="module")
def meta_rm_dir(work: Path, meta_dir: Path) -> Path:
    start = build_tiny_classifier(work / "classifier")
    out = work / "meta-rm"
    args = ["meta-rm", "--model_name_or_path", str(start), "--data", str(meta_dir / "meta.jsonl")]
    args += ["--output_dir", str(out), "--max_steps", "2", "--per_device_train_batch_size", "8"]
    args += ["--learning_rate", "1e-3", "--eval_fraction", "0.25", "--logging_steps", "1", "--disable_tqdm", "true"]
    args += ["--use_cpu", "true", "--bf16", "false", "--report_to", "none", "--save_strategy", "no"]
    assert main(args) == 0
    return out


def test_meta_rm_trains_and_plugs_into_the_judge(meta_rm_dir: Path, work: Path) -> None:
    assert changed(weights(work / "classifier"), weights(meta_rm_dir))
    config = json.loads((meta_rm_dir / "config.json").read_text())
    assert config["pad_token_id"] is not None and config["architectures"] == ["LlamaForSequenceClassification"]
    assert len(config["id2label"]) == 1 and (meta_rm_dir / "chat_template.jinja").is_file()
    metrics = json.loads((meta_rm_dir / "metrics.json").read_text())
    assert 0.0 <= metrics["eval_auc"] <= 1.0 and 0.0 <= metrics["eval_accuracy"] <= 1.0
    card = json.loads((meta_rm_dir / "run_card.json").read_text())
    results = card["results"]
    assert results["train_positives"] * 2 == results["train_rows"]  # balanced
    assert len(results["losses"]) == 2 and results["eval_rows"] > 0

    script = ScriptedSampler({"item-3": ["right", "wrong", "right", "nobox"]})

    async def judge() -> Any:
        scorer = TransformersMetaScorer(str(meta_rm_dir))
        settings = JudgeSettings(template=SHORT, max_resample_rounds=0)
        async with Judge(script.backend(), meta=scorer, settings=settings) as judge:
            return await judge.score(ITEMS[3].query, ITEMS[3].responses, k=4, meta=True)

    result = anyio.run(judge)
    valid = [s for s in result.samples if s.valid]
    assert len(valid) == 3 and all(s.meta_score is not None for s in valid)
    assert sum(s.kept for s in result.samples) == 2


def test_rejection_sampling_with_the_tiny_model_as_sampler(work: Path, tiny_model_dir: Path) -> None:
    """A random model writes no valid judgement: every sample is rejected, with its parse-failure reason."""
    data = work / "two.jsonl"
    write_examples(data, ITEMS[:2])
    config = RFTSampleConfig(data=str(data), sampler="hf:unused", output_dir=str(work / "rft-tiny"), max_tokens=8)
    backend = TransformersBackend(str(tiny_model_dir), device="cpu")
    stats = anyio.run(lambda: run_rft_sampling(config, backend=backend))
    assert (stats.items, stats.rejected_items, stats.examples) == (2, 2, 0)
    assert stats.non_hinted.drawn == 6 and stats.hinted.drawn == 2
    failures = stats.non_hinted.parse_failures
    assert sum(failures.values()) == 6 and set(failures) <= {"truncated", "no_boxed", "empty"}
    assert (work / "rft-tiny" / "sft.jsonl").read_text() == ""


def test_sft_with_lora_saves_a_merged_model_and_the_adapter(rft_dir: Path, tiny_model_dir: Path, work: Path) -> None:
    from grmjudge.training.sft import JudgeSFTConfig, train_sft

    out = work / "sft-lora"
    config = JudgeSFTConfig(
        model_name_or_path=str(tiny_model_dir),
        data=[str(rft_dir / "sft.jsonl")],
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=4,
        learning_rate=1e-3,
        max_length=512,
        use_peft=True,
        lora_r=4,
        logging_steps=1,
        disable_tqdm=True,
        **CPU,
    )
    result = train_sft(config)
    assert len(result.losses) == 2
    assert changed(weights(tiny_model_dir), weights(out))
    assert (out / "adapter" / "adapter_config.json").is_file()
    assert not any("lora" in name for name in weights(out))  # merged: a plain checkpoint

    async def judge() -> Any:
        async with Judge(
            TransformersBackend(str(out), device="cpu"), settings=JudgeSettings(template=SHORT, max_tokens=4)
        ) as j:
            return await j.score(ITEMS[2].query, ITEMS[2].responses, k=1)

    assert len(anyio.run(judge).samples) == 1


def test_meta_rm_with_lora_loads_as_a_meta_scorer(meta_dir: Path, work: Path) -> None:
    from grmjudge.training.meta_rm import MetaRMConfig, train_meta_rm

    start = build_tiny_classifier(work / "classifier-lora", seed=1)
    out = work / "meta-rm-lora"
    config = MetaRMConfig(
        model_name_or_path=str(start),
        data=[str(meta_dir / "meta.jsonl")],
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=8,
        learning_rate=1e-3,
        use_peft=True,
        lora_r=4,
        logging_steps=1,
        disable_tqdm=True,
        **CPU,
    )
    result = train_meta_rm(config)
    assert result.eval_auc is not None and len(result.losses) == 2
    trained = weights(out)
    assert changed(weights(start), trained)
    assert "score.weight" in trained and not any("lora" in name for name in trained)

    async def score() -> list[float]:
        async with TransformersMetaScorer(str(out)) as scorer:
            from grmjudge.meta import MetaInput

            inputs = [
                MetaInput(query=ITEMS[0].query, responses=ITEMS[0].responses, judgement=f"\\boxed{{{i}, 2}}")
                for i in (3, 9)
            ]
            return await scorer.score(inputs)

    scores = anyio.run(score)
    assert len(scores) == 2 and scores[0] != scores[1]


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("sft", ["--data", "x.jsonl"], "--model-name-or-path is required"),
        ("sft", ["--model_name_or_path", "m"], "--data is required"),
        ("sft", ["--model_name_or_path", "m", "--data", "x", "--general_ratio", "0.5"], "needs --general-data"),
        ("sft", ["--model_name_or_path", "m", "--data", "x", "--general_ratio", "1.0"], r"must be in \[0, 1\)"),
        ("grpo", ["--model_name_or_path", "m", "--data", "x", "--beta", "0"], "relies on the KL penalty"),
        ("grpo", ["--model_name_or_path", "m"], "--data is required"),
        ("meta-rm", ["--model_name_or_path", "m", "--data", "x", "--eval_fraction", "1"], "--eval-fraction"),
    ],
)
def test_trainer_configs_refuse_values_that_cannot_work(
    command: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, *args, "--use_cpu", "true", "--bf16", "false"]) == 2
    assert re.search(message, capsys.readouterr().err)
