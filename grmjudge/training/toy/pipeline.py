# pyright: basic
"""The toy SPCT run, stage by stage: data, cold start, rejective fine-tuning, GRPO, meta RM, evaluation.

Every stage uses the package's own training and evaluation entry points on the toy task (`tasks`), so the
run exercises exactly what a user runs at scale:

1. ``data``: train, validation and held-out items (disjoint by question), the teacher's transcripts of the
   training items, the two templates.
2. ``init``: a random Llama and a tokenizer trained on training text only (`model`).
3. ``cold_start``: SFT on every teacher transcript, mistakes included (`train_sft`).
4. ``rft_sample``: rejection sampling with the cold-start model as the sampler (`run_rft_sampling`).
5. ``rft``: SFT of the cold-start model on the kept judgements (`train_sft`).
6. ``grpo``: GRPO with the SPCT reward (`train_grpo`) on the items the RFT model does not get right in every
   one of a few samples (the paper's "too easy" filter), once per learning rate of the config, saving a
   checkpoint every few steps.
7. ``grpo_select``: the checkpoint (of any learning rate) with the best greedy accuracy on the validation items
   becomes the final GRM; the held-out items play no part in any choice.
8. ``meta_sample`` and ``meta_rm``: the final GRM's own labelled samples plus the RFT samples
   (`run_meta_sampling`), and a meta RM fitted on them, started from the final GRM's weights (`train_meta_rm`).
9. ``eval``: greedy, Voting@k and MetaRM@k on the held-out items for each of the three GRMs (`evaluate`);
   the cold start and RFT up to ``baseline_eval_k`` samples, the final GRM up to ``eval_k``.

Each finished stage is a line of ``stages.jsonl`` (a [`Journal`][grmjudge.journal.Journal] whose first line holds
the config) with its wall time and summary; a rerun on the same directory skips finished stages, and refuses to
continue a run made with another config.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import anyio

from grmjudge.eval.harness import EvalOptions, evaluate
from grmjudge.eval.items import BestLabel, Call, DataSource, EvalItem, LoadedBenchmark
from grmjudge.exceptions import ConfigurationError
from grmjudge.journal import Journal, check_provenance
from grmjudge.judge import Judge
from grmjudge.prompts import judge_messages
from grmjudge.rows import SourceFile, file_sha256
from grmjudge.settings import JudgeSettings
from grmjudge.training.data import SPCTExample, load_examples, write_examples
from grmjudge.training.toy.config import DEMO_DIR, ToyConfig
from grmjudge.training.toy.model import SHAPES, add_weight_noise, build_toy_model, tokenizer_corpus
from grmjudge.training.toy.tasks import Split, make_items
from grmjudge.training.toy.teacher import Teacher
from grmjudge.training.toy.templates import TOY_SINGLE_TEMPLATE, TOY_TEMPLATE, write_template

__all__ = ["GRM_STAGES", "STAGES", "export_demo", "heldout_benchmark", "read_stages", "run"]

GRM_STAGES = ("cold_start", "rft", "grpo")
"""The three judges the report compares, in training order."""

STAGES_FILE = "stages.jsonl"
BENCHMARK = "toy-spct"
EVAL_KS = (1, 2, 4, 8, 16)

_TRAINER = {
    "fp16": False,
    "report_to": "none",
    "save_strategy": "no",
    "gradient_checkpointing": False,  # TRL turns it on by default; a model this small only pays its recompute
}


class _Run:
    """Paths and shared settings of one run directory."""

    def __init__(self, out: Path, config: ToyConfig) -> None:
        self.out = out
        self.config = config

    def path(self, *parts: str) -> str:
        return str(self.out.joinpath(*parts))

    def trainer_options(self) -> dict[str, Any]:
        return {
            **_TRAINER,
            "use_cpu": self.config.device == "cpu",
            "bf16": self.config.device == "cuda",
            "seed": self.config.seed,
            "per_device_train_batch_size": self.config.batch_size,
            "lr_scheduler_type": "cosine",
            "weight_decay": 0.0,
            "logging_steps": 5,
            "disable_tqdm": True,
        }

    @property
    def template(self) -> str:
        return self.path("data", "toy-grm.json")

    @property
    def single_template(self) -> str:
        return self.path("data", "toy-grm-single.json")


def _data(run: _Run) -> dict[str, Any]:
    cfg = run.config
    teacher = Teacher(cfg.teacher_error_rate, cfg.seed)
    train = make_items("train", cfg.train_items, seed=cfg.seed)
    validation = _multi_response("validation", cfg.validation_items, cfg.seed)
    heldout = _multi_response("heldout", cfg.heldout_items, cfg.seed)
    data = Path(run.path("data"))
    data.mkdir(parents=True, exist_ok=True)
    write_examples(data / "train.jsonl", train)
    write_examples(data / "validation.jsonl", validation)
    write_examples(data / "heldout.jsonl", heldout)
    write_template(TOY_TEMPLATE, data / "toy-grm.json")
    write_template(TOY_SINGLE_TEMPLATE, data / "toy-grm-single.json")
    right = 0
    with (data / "cold_start.jsonl").open("w", encoding="utf-8") as rows:
        for example in train:
            template = TOY_SINGLE_TEMPLATE if example.n == 1 else TOY_TEMPLATE
            prompt = judge_messages(template, example.query, example.responses)
            row = {
                "prompt": [m.model_dump() for m in prompt],
                "completion": [{"role": "assistant", "content": teacher.judge(example)}],
            }
            rows.write(json.dumps(row) + "\n")
            right += not teacher.mistaken(example)
    (data / "tokenizer_corpus.txt").write_text(tokenizer_corpus(train, teacher), encoding="utf-8")
    summary = {"train": len(train), "validation": len(validation), "heldout": len(heldout)}
    return {**summary, "teacher_accuracy": right / len(train)}


def _multi_response(split: Split, size: int, seed: int) -> list[SPCTExample]:
    """The first ``size`` items of ``split`` with two or more responses (the ones accuracy is measured on)."""
    return [e for e in make_items(split, 4 * size, seed=seed) if e.n >= 2][:size]


def _init(run: _Run) -> dict[str, Any]:
    cfg = run.config
    if cfg.start == "demo":
        _copy_model(DEMO_DIR / "grm", Path(run.path("init")))
        if cfg.start_noise > 0:
            add_weight_noise(run.path("init"), cfg.start_noise, seed=cfg.seed)
        return {"start": "demo", "noise": cfg.start_noise}
    corpus = Path(run.path("data", "tokenizer_corpus.txt")).read_text(encoding="utf-8")
    build_toy_model(run.path("init"), corpus, shape=SHAPES[cfg.shape], seed=cfg.seed)
    return {"start": "random"}


def _sft(run: _Run, start: str, data: str, out: str, steps: int, lr: float) -> dict[str, Any]:
    from grmjudge.training.sft import JudgeSFTConfig, train_sft

    config = JudgeSFTConfig(
        model_name_or_path=run.path(start),
        data=[data],
        output_dir=run.path(out),
        max_steps=steps,
        learning_rate=lr,
        warmup_steps=min(50, steps // 10),
        max_length=512,
        **run.trainer_options(),
    )
    result = train_sft(config)
    losses = result.losses or [float("nan")]
    return {"rows": result.rm_rows, "first_loss": losses[0], "last_loss": losses[-1]}


def _cold_start(run: _Run) -> dict[str, Any]:
    cfg = run.config
    return _sft(
        run, "init", run.path("data", "cold_start.jsonl"), "cold_start", cfg.cold_start_steps, cfg.cold_start_lr
    )


def _backend(run: _Run, model: str) -> Any:
    from grmjudge.backends.transformers import TransformersBackend

    cfg = run.config
    return TransformersBackend(run.path(model), max_batch_sequences=cfg.max_batch_sequences, device=cfg.device)


def _sampling(run: _Run, model: str, out: str, items: int, samples: int) -> dict[str, Any]:
    """The options the two sampling stages share: training items judged by ``model`` into ``out``."""
    cfg = run.config
    return {
        "data": run.path("data", "train.jsonl"),
        "max_items": items,
        "output_dir": run.path(out),
        "sampler": f"hf:{run.path(model)}",
        "samples_per_item": samples,
        "temperature": cfg.temperature,
        "max_tokens": cfg.max_tokens,
        "seed": cfg.seed,
        "concurrency": 64,
        "max_concurrent_requests": 128,
        "template": run.template,
        "single_template": run.single_template,
    }


def _rft_sample(run: _Run) -> dict[str, Any]:
    from grmjudge.training.rft import RFTSampleConfig, run_rft_sampling

    cfg = run.config
    config = RFTSampleConfig(**_sampling(run, "cold_start", "rft_sample", cfg.rft_items, cfg.rft_samples))
    stats = anyio.run(_with_backend, run, "cold_start", lambda b: run_rft_sampling(config, backend=b))
    return {
        "items": stats.items,
        "items_kept": stats.items_kept,
        "too_easy": stats.too_easy,
        "examples": stats.examples,
        "non_hinted_acceptance": stats.non_hinted.kept / max(1, stats.non_hinted.drawn),
        "hinted_acceptance": stats.hinted.kept / max(1, stats.hinted.drawn),
    }


async def _with_backend(run: _Run, model: str, job: Callable[[Any], Any]) -> Any:
    backend = _backend(run, model)
    try:
        return await job(backend)
    finally:
        await backend.aclose()


def _rft(run: _Run) -> dict[str, Any]:
    cfg = run.config
    stats = json.loads(Path(run.path("rft_sample", "stats.json")).read_text(encoding="utf-8"))
    if stats["examples"] == 0:
        raise ConfigurationError(
            f"rejection sampling kept no judgement of {stats['items']} items: the cold-start model got none right "
            "(train it for more steps)"
        )
    return _sft(run, "cold_start", run.path("rft_sample", "sft.jsonl"), "rft", cfg.rft_steps, cfg.rft_lr)


def _grpo(run: _Run) -> dict[str, Any]:
    """GRPO from the RFT model once per learning rate of the config, each into ``grpo_train/lr-<lr>``."""
    cfg = run.config
    summaries: dict[str, Any] = {}
    first_prefilter: Path | None = None
    for lr in cfg.grpo_lrs:
        out = Path(run.path("grpo_train", _lr_name(lr)))
        if first_prefilter is not None and not (out / "prefilter").exists():
            # the pre-filter samples the RFT model, whatever the learning rate: every run reads the first's records
            shutil.copytree(first_prefilter, out / "prefilter")
        summaries[out.name] = _grpo_at(run, lr, out)
        if first_prefilter is None and (out / "prefilter").exists():  # none without a pre-filter
            first_prefilter = out / "prefilter"
    return summaries


def _lr_name(lr: float) -> str:
    return f"lr-{lr:g}"


def _grpo_at(run: _Run, lr: float, out: Path) -> dict[str, Any]:
    from grmjudge.training.grpo import JudgeGRPOConfig, train_grpo

    cfg = run.config
    options = run.trainer_options()
    options["per_device_train_batch_size"] = cfg.grpo_prompts_per_step * cfg.group_size
    options.update(save_strategy="steps", save_steps=cfg.grpo_save_steps, save_only_model=True)
    prefilter: dict[str, Any] = {}
    if cfg.grpo_prefilter_samples > 0:
        prefilter = {
            "prefilter_sampler": f"hf:{run.path('rft')}",
            "prefilter_samples": cfg.grpo_prefilter_samples,
            "prefilter_temperature": cfg.temperature,
            "prefilter_max_tokens": cfg.max_tokens,
            "prefilter_concurrency": 64,
        }
    config = JudgeGRPOConfig(
        model_name_or_path=run.path("rft"),
        data=run.path("data", "train.jsonl"),
        max_items=cfg.grpo_items,
        output_dir=str(out),
        max_steps=cfg.grpo_steps,
        learning_rate=lr,
        num_generations=cfg.group_size,
        max_completion_length=cfg.max_tokens,
        temperature=cfg.temperature,
        max_prompt_tokens=512,
        template=run.template,
        single_template=run.single_template,
        **prefilter,
        **options,
    )
    result = train_grpo(config)
    third = max(1, len(result.rewards) // 3)
    return {
        "rows": result.rows,
        "too_easy": result.too_easy,
        "mean_reward_first_third": sum(result.rewards[:third]) / third,
        "mean_reward_last_third": sum(result.rewards[-third:]) / third,
    }


def _grpo_select(run: _Run) -> dict[str, Any]:
    """Keep the GRPO checkpoint, of any learning rate, with the best greedy validation accuracy (RFT for reference)."""
    checkpoints = [
        checkpoint
        for lr in run.config.grpo_lrs
        for checkpoint in sorted(
            Path(run.path("grpo_train", _lr_name(lr))).glob("checkpoint-*"),
            key=lambda path: int(path.name.split("-")[1]),
        )
    ]
    if not checkpoints:
        raise ConfigurationError(f"GRPO left no checkpoint in {run.path('grpo_train')}")
    accuracy = {"rft": anyio.run(_validation_greedy, run, "rft", "rft")}
    for checkpoint in checkpoints:
        name = f"{checkpoint.parent.name}/{checkpoint.name}"
        accuracy[name] = anyio.run(_validation_greedy, run, f"grpo_train/{name}", name)
    chosen = max((name for name in accuracy if name != "rft"), key=accuracy.__getitem__)  # the earliest wins a tie
    _copy_model(Path(run.path("grpo_train", chosen)), Path(run.path("grpo")))
    return {"validation_greedy": accuracy, "chosen": chosen}


async def _validation_greedy(run: _Run, model: str, name: str) -> float:
    """Greedy accuracy of the run's model ``model`` on the validation items (written under ``validation/name``)."""
    cfg = run.config
    benchmark = heldout_benchmark(run.path("data", "validation.jsonl"))
    settings = JudgeSettings(template=TOY_TEMPLATE, max_tokens=cfg.max_tokens, seed=cfg.seed)
    options = EvalOptions(bootstrap=0, concurrency=64, texts=False)
    async with Judge(_backend(run, model), settings=settings, max_concurrent_requests=128) as judge:
        report = await evaluate(judge, benchmark, run.path("validation", name), ks=(1,), options=options)
    return report.settings["greedy"].overall.value


def _meta_sample(run: _Run) -> dict[str, Any]:
    from grmjudge.training.meta_data import MetaSampleConfig, run_meta_sampling

    cfg = run.config
    config = MetaSampleConfig(
        **_sampling(run, "grpo", "meta_sample", cfg.meta_items, cfg.meta_samples),
        rft_records=[run.path("rft_sample", "records.jsonl")],
    )
    stats = anyio.run(_with_backend, run, "grpo", lambda b: run_meta_sampling(config, backend=b))
    return {"rows": stats.rows, "positives": stats.positives, "negatives": stats.negatives}


def _meta_rm(run: _Run) -> dict[str, Any]:
    from grmjudge.training.meta_rm import MetaRMConfig, train_meta_rm

    cfg = run.config
    config = MetaRMConfig(
        model_name_or_path=run.path("grpo"),
        data=[run.path("meta_sample", "meta.jsonl")],
        output_dir=run.path("meta_rm"),
        max_steps=cfg.meta_steps,
        learning_rate=cfg.meta_lr,
        warmup_steps=min(20, cfg.meta_steps // 10),
        max_length=512,
        **run.trainer_options(),
    )
    result = train_meta_rm(config)
    return {
        "train_rows": result.train_rows,
        "eval_rows": result.eval_rows,
        "eval_auc": result.eval_auc,
        "eval_accuracy": result.eval_accuracy,
    }


def heldout_benchmark(path: str | Path) -> LoadedBenchmark:
    """The held-out items as an evaluation benchmark: one listwise call per item, subsets by task family."""
    examples = load_examples(path, format="canonical").examples
    items = [_eval_item(example) for example in examples]
    source = DataSource(
        kind="files",
        files=(SourceFile(path=str(path), sha256=file_sha256(Path(path))),),
        rows=len(items),
        items=len(items),
    )
    return LoadedBenchmark(BENCHMARK, items, source)


def _eval_item(example: SPCTExample) -> EvalItem:
    assert example.best is not None  # held-out items have two or more responses
    call = Call(id=example.id, query=example.query, responses=example.responses)
    return EvalItem(id=example.id, subset=example.source, calls=(call,), label=BestLabel(example.best))


def _eval(run: _Run) -> dict[str, Any]:
    return anyio.run(_evaluate_all, run)


async def _evaluate_all(run: _Run) -> dict[str, Any]:
    from grmjudge.meta.transformers import TransformersMetaScorer

    cfg = run.config
    benchmark = heldout_benchmark(run.path("data", "heldout.jsonl"))
    settings = JudgeSettings(
        template=TOY_TEMPLATE, temperature=cfg.temperature, max_tokens=cfg.max_tokens, seed=cfg.seed
    )
    options = EvalOptions(bootstrap=cfg.bootstrap, concurrency=64, texts=False)
    overall: dict[str, Any] = {}
    if cfg.start == "demo":  # where a warm start began: greedy only, to show what the stages learned
        async with Judge(_backend(run, "init"), settings=settings, max_concurrent_requests=128) as judge:
            report = await evaluate(judge, benchmark, run.path("eval", "init"), ks=(1,), options=options)
        overall["init"] = {name: setting.overall.value for name, setting in report.settings.items()}
    for stage in GRM_STAGES:
        largest = cfg.eval_k if stage == GRM_STAGES[-1] else cfg.baseline_eval_k
        ks = tuple(k for k in EVAL_KS if k <= largest)
        meta = TransformersMetaScorer(run.path("meta_rm"), batch_size=64, device=cfg.device)
        async with Judge(_backend(run, stage), meta=meta, settings=settings, max_concurrent_requests=128) as judge:
            report = await evaluate(judge, benchmark, run.path("eval", stage), ks=ks, options=options)
        overall[stage] = {name: setting.overall.value for name, setting in report.settings.items()}
    return overall


STAGES: dict[str, Callable[[_Run], dict[str, Any]]] = {
    "data": _data,
    "init": _init,
    "cold_start": _cold_start,
    "rft_sample": _rft_sample,
    "rft": _rft,
    "grpo": _grpo,
    "grpo_select": _grpo_select,
    "meta_sample": _meta_sample,
    "meta_rm": _meta_rm,
    "eval": _eval,
}
"""The stages in order; each returns a small summary for the stage record."""


def run(out: str | Path, config: ToyConfig, *, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run every stage not yet finished in ``out`` and return each stage's wall time and summary, by name."""
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    journal = _stage_journal(directory)
    state, started_before = _read_record(journal, config)
    toy = _Run(directory, config)
    with journal.writer() as record:
        if not started_before:
            record.append({"config": config.to_dict()})
        for name, stage in STAGES.items():
            if name in state:
                log(f"{name}: done earlier ({state[name]['seconds']:.0f} s)")
                continue
            log(f"{name}: running")
            started = time.perf_counter()
            summary = stage(toy)
            state[name] = {"seconds": round(time.perf_counter() - started, 1), "summary": summary}
            record.append({"stage": name, **state[name]})
            log(f"{name}: {state[name]['seconds']:.0f} s {json.dumps(summary)}")
    return state


def read_stages(out: str | Path) -> dict[str, Mapping[str, Any]]:
    """The finished stages of the run in ``out``, by name: ``{"seconds": ..., "summary": ...}`` (none: empty)."""
    return _read_record(_stage_journal(Path(out)), None)[0]


def _stage_journal(directory: Path) -> Journal:
    return Journal(directory / STAGES_FILE, kind="toy run's stage record")


def _read_record(journal: Journal, config: ToyConfig | None) -> tuple[dict[str, Mapping[str, Any]], bool]:
    """Finished stages by name, and whether the record has begun; a ``config`` must match the recorded one."""
    state: dict[str, Mapping[str, Any]] = {}
    begun = False
    for number, line in journal.records():
        if "config" in line:
            begun = True
            if config is not None:
                advice = "continue it with the config it was made with, or use another --out"
                check_provenance(journal.path, number, line["config"], config.to_dict(), advice=advice)
        else:
            state[str(line["stage"])] = {"seconds": line["seconds"], "summary": line["summary"]}
    return state, begun


DEMO_FILES = (
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.jinja",
)
"""What a model directory needs to load: the weights, the config and the tokenizer with its chat template."""


def _copy_model(source: Path, destination: Path) -> None:
    """Copy the files of ``DEMO_FILES`` that ``source`` has into ``destination``."""
    destination.mkdir(parents=True, exist_ok=True)
    for file in DEMO_FILES:
        if (source / file).exists():
            shutil.copyfile(source / file, destination / file)


def export_demo(out: str | Path, target: str | Path, *, items: int = 8) -> Path:
    """Copy a finished run's final GRM and meta RM, a few held-out items and the report into ``target``.

    This is how ``grmjudge/_demo`` (what ``grmjudge demo`` judges with) is made from a full run.
    """
    source, destination = Path(out), Path(target)
    if "eval" not in read_stages(source):
        raise ConfigurationError(f"{source} has no finished toy run to export")
    for model, name in (("grpo", "grm"), ("meta_rm", "meta_rm")):
        _copy_model(source / model, destination / name)
    heldout = load_examples(source / "data" / "heldout.jsonl", format="canonical").examples
    write_examples(destination / "items.jsonl", heldout[:items])
    shutil.copyfile(source / "report.md", destination / "REPORT.md")
    shutil.copyfile(source / "scaling.png", destination / "scaling.png")
    return destination
