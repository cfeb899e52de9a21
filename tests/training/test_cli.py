"""``python -m grmjudge.training``: flags from config dataclasses, ``--config`` files, exit codes, shipped recipes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from grmjudge.training.cli import COMMANDS, main, parse_config
from grmjudge.training.data import write_examples
from grmjudge.training.rft import RFTSampleConfig

from .scripted import pair_item

CONFIGS = Path(__file__).resolve().parents[2] / "grmjudge" / "training" / "configs"
TRAINERS = {"sft", "grpo", "meta-rm"}
ON_CPU = ["--use_cpu", "true", "--bf16", "false"]


def test_usage_and_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "rft-sample" in capsys.readouterr().out
    assert main(["--help"]) == 0
    assert main(["train-everything"]) == 2
    assert "unknown command 'train-everything'" in capsys.readouterr().err
    assert main(["rft-sample", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--hint-mode {both,fallback,off,only}" in out and "--samples-per-item" in out
    assert "--hint_mode" not in out and "--samples_per_item" not in out  # accepted, but not shown


def test_dashed_and_underscore_flags_parse_alike() -> None:
    dashed = ["--data", "d", "--sampler", "openai:m", "--samples-per-item", "4", "--sampler-base-url", "http://h/v1"]
    underscored = ["--" + flag[2:].replace("-", "_") if flag.startswith("--") else flag for flag in dashed]
    assert parse_config("rft-sample", dashed) == parse_config("rft-sample", underscored)
    assert parse_config("rft-sample", dashed).samples_per_item == 4
    negated = parse_config("meta-sample", ["--data", "d", "--sampler", "openai:m", "--no-include-parse-failures"])
    assert negated.include_parse_failures is False


def test_flags_override_the_config_file(tmp_path: Path) -> None:
    yaml_file = tmp_path / "rft.yaml"
    yaml_file.write_text("data: items.jsonl\nsampler: openai:m\nsamples_per_item: 5\nhint_mode: fallback\n")
    config = parse_config("rft-sample", ["--config", str(yaml_file), "--samples_per_item", "4"])
    assert isinstance(config, RFTSampleConfig)
    assert (config.samples_per_item, config.hint_mode, config.temperature) == (4, "fallback", 1.0)
    json_file = tmp_path / "rft.json"
    json_file.write_text(json.dumps({"data": "x.jsonl", "sampler": "openai:m", "decontaminate_with": ["a", "b"]}))
    assert parse_config("rft-sample", ["--config", str(json_file)]).decontaminate_with == ["a", "b"]
    flags = parse_config("meta-sample", ["--data", "d", "--sampler", "openai:m", "--no_include_parse_failures"])
    assert flags.include_parse_failures is False


def test_bad_values_exit_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rft-sample", "--data", "x.jsonl"]) == 2
    assert "--sampler is required" in capsys.readouterr().err
    assert main(["rft-sample", "--data", "x", "--sampler", "openai:m", "--hint_mode", "always"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("data: x\nsampler: openai:m\nsamples: 3\n")
    assert main(["rft-sample", "--config", str(unknown)]) == 2
    assert "samples" in capsys.readouterr().err


def test_a_failing_run_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "chosen": "a"}\n')
    args = ["rft-sample", "--data", str(bad), "--data_format", "pairwise", "--sampler", "openai:m"]
    assert main([*args, "--output_dir", str(tmp_path / "out")]) == 1
    assert "row 0: missing column 'rejected'" in capsys.readouterr().err


def test_rft_sample_against_an_openai_compatible_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The fake server scores each response 1 + len(text) % 10, whatever the order: the best of the first item
    wins every sample (too easy), that of the second loses every sample, the third ties."""
    from tests.servers import serve

    items = [
        pair_item("item-wins").model_copy(update={"responses": ("GOOD answer!", "bad answer")}),
        pair_item("item-loses").model_copy(update={"responses": ("GOOD answer", "bad")}),
        pair_item("item-ties").model_copy(update={"responses": ("GOOD", "weak")}),
    ]
    data = tmp_path / "items.jsonl"
    write_examples(data, items)
    with serve() as server:
        code = main(
            ["rft-sample", "--data", str(data), "--sampler", "openai:fake-grm", "--sampler_base_url", server.base_url]
            + ["--output_dir", str(tmp_path / "out"), "--max_tokens", "64"]
        )
    assert code == 0
    stats = json.loads(capsys.readouterr().out)
    assert (stats["items"], stats["too_easy"], stats["rejected_items"], stats["examples"]) == (3, 1, 2, 0)
    assert stats["non_hinted"]["ties"] == 3 and stats["hinted"]["drawn"] == 2 and stats["hinted"]["correct"] == 0
    assert json.loads((tmp_path / "out" / "stats.json").read_text()) == stats


def recipes() -> list[object]:
    names = {
        "rft_sample": "rft-sample",
        "sft": "sft",
        "grpo": "grpo",
        "meta_sample": "meta-sample",
        "meta_rm": "meta-rm",
    }
    cases: list[object] = []
    for path in sorted(CONFIGS.glob("recipes/*/*.yaml")):
        command = names[path.stem]
        marks = [pytest.mark.engine] if command in TRAINERS else []  # the trainer configs import torch and TRL
        cases.append(pytest.param(command, path, marks=marks, id=f"{path.parent.name}/{path.stem}"))
    return cases


@pytest.mark.parametrize(("command", "path"), recipes())
@pytest.mark.filterwarnings("ignore:TRL currently supports vLLM versions:UserWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_shipped_recipes_parse_into_their_configs(command: str, path: Path) -> None:
    """Every key of every recipe is a real flag (the GPU recipes are moved onto the CPU for the check)."""
    extra = ON_CPU if command in TRAINERS else []
    config = parse_config(command, ["--config", str(path), *extra])
    assert type(config).__name__ == COMMANDS[command].config


def test_every_stage_has_a_recipe_in_both_sets() -> None:
    for folder in ("qwen3-1.7b-1gpu", "gemma2-27b-paper"):
        stems = {path.stem for path in (CONFIGS / "recipes" / folder).glob("*.yaml")}
        assert stems == {"rft_sample", "sft", "grpo", "meta_sample", "meta_rm"}, folder


def test_accelerate_configs_are_valid_yaml_for_each_topology() -> None:
    yaml = pytest.importorskip("yaml")
    kinds = {}
    for path in (CONFIGS / "accelerate").glob("*.yaml"):
        kinds[path.stem] = yaml.safe_load(path.read_text())["distributed_type"]
    assert kinds == {"single_gpu": "NO", "multi_gpu": "MULTI_GPU", "deepspeed_zero3": "DEEPSPEED", "fsdp": "FSDP"}


def test_the_grmjudge_command_delegates_train(capsys: pytest.CaptureFixture[str]) -> None:
    from grmjudge.cli import main as grmjudge_main

    assert grmjudge_main(["train", "meta-sample", "--help"]) == 0
    assert "--rft-records" in capsys.readouterr().out


def test_runs_as_a_module() -> None:
    out = subprocess.run([sys.executable, "-m", "grmjudge.training", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "meta-rm" in out.stdout


def test_meta_sample_against_an_openai_compatible_server(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The meta-sample command end to end: the fake server's judgement is right for one item, tied for another."""
    from tests.servers import serve

    items = [
        pair_item("item-right").model_copy(update={"responses": ("GOOD answer!", "bad answer")}),
        pair_item("item-tie").model_copy(update={"responses": ("GOOD", "weak")}),
    ]
    data = tmp_path / "items.jsonl"
    write_examples(data, items)
    with serve() as server:
        code = main(
            ["meta-sample", "--data", str(data), "--sampler", "openai:fake-grm", "--sampler_base_url", server.base_url]
            + ["--output_dir", str(tmp_path / "meta"), "--max_tokens", "64"]
        )
    assert code == 0
    rows = [json.loads(line) for line in (tmp_path / "meta" / "meta.jsonl").read_text().splitlines()]
    assert rows, "the command wrote no meta-RM rows"
    assert {row["label"] for row in rows} == {0, 1}  # right judgements are positives, ties negatives
