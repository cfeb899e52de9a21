"""``judge_dataset``: a Ray Dataset of items in, a Ray Dataset of ``grmjudge score`` lines out."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from grmjudge._optional import require
from grmjudge.adaptive import AdaptivePolicy
from grmjudge.engine_options import RayOptions
from grmjudge.integrations.ray.spec import JudgeSpec
from grmjudge.judge import Judge, adaptive_policy
from grmjudge.judge_options import JudgeOptions
from grmjudge.score_lines import DEFAULT_MAX_INPUT_CHARS
from grmjudge.settings import JudgeSettings


@dataclass(frozen=True)
class StageResources:
    """Where a stage's actors run: how many (``min_actors`` to ``max_actors``, autoscaled) and what each holds.

    ``batch_size`` rows go to an actor at a time (one ``score_many`` each); ``concurrency`` of them are judged
    at once inside the actor (they share its ``max_concurrent_requests``). ``num_gpus=1`` gives each actor a
    GPU, for an in-process engine (``vllm:``, ``hf:``). ``ray_remote_args`` go to Ray as they are.
    """

    min_actors: int = 1
    max_actors: int = 1
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    batch_size: int = 16
    concurrency: int = 16
    ray_remote_args: Mapping[str, Any] = field(default_factory=dict[str, Any])

    @classmethod
    def grm_stage(cls, r: RayOptions, concurrency: int) -> StageResources:
        """The GRM stage the ``--engine ray`` flags ask for, each actor with ``concurrency`` items in flight."""
        return cls(
            min_actors=r.actors,
            max_actors=r.max_actors,
            num_cpus=r.cpus_per_actor,
            num_gpus=r.gpus_per_actor,
            batch_size=r.batch_size,
            concurrency=concurrency,
        )

    @classmethod
    def meta_stage(cls, r: RayOptions) -> StageResources:
        """The meta RM stage the ``--engine ray`` flags ask for."""
        n = r.meta_actors
        return cls(min_actors=n, max_actors=n, num_cpus=r.cpus_per_actor, batch_size=r.batch_size)


def judge_dataset(
    ds: Any,
    judge: str | JudgeOptions | JudgeSpec | Callable[[], Judge],
    k: int = 8,
    meta: bool = False,
    *,
    adaptive: bool | AdaptivePolicy = False,
    texts: bool = True,
    max_input_chars: int = DEFAULT_MAX_INPUT_CHARS,
    skip_ids: Iterable[str] = (),
    settings: JudgeSettings | None = None,
    as_results: bool = False,
    grm: StageResources | None = None,
    meta_stage: StageResources | None = None,
) -> Any:
    """Judge every item of the Ray Dataset ``ds``; a lazy Dataset with one row per input row.

    Input rows are ``grmjudge score`` items (``id``, ``query`` or ``messages``, ``responses``, ``label``) or
    ``text`` rows of raw JSON lines. Each output row holds ``id``, ``kind`` (``output`` or ``error``) and
    ``line``: exactly the line ``grmjudge score`` writes for the item to its output or its errors file (``line``
    null in an error, as Ray's readers do not number lines), plus the item's cost (see
    [`OUTPUT_COLUMNS`][grmjudge.integrations.ray.rows.OUTPUT_COLUMNS]). A bad item is an error row, never a
    failed job; the job stops only if the backend refuses the credentials. Rows whose id is in ``skip_ids``
    (those already judged, when resuming) are dropped unjudged. ``settings`` replaces the judge's settings for
    this run (as ``Judge.score_many(settings=...)``). With ``as_results`` each ``line`` is instead the judge's
    own [`BatchResult`][grmjudge.results.BatchResult] as JSON (``kind`` ``error`` when the item has no result),
    and the meta RM runs in the GRM stage.

    ``judge`` is a backend spec string, [`JudgeOptions`][grmjudge.judge_options.JudgeOptions] (what the command's
    flags give), a [`JudgeSpec`][grmjudge.integrations.ray.JudgeSpec] or a picklable function returning a
    [`Judge`][grmjudge.judge.Judge]; each actor builds its own, reading API keys from its own environment.
    With ``meta=True`` the meta RM runs as a second stage on ``meta_stage``'s actors (``grm``'s run the GRM),
    except with ``adaptive``, whose rounds need the meta RM between them: then the GRM stage holds it too.
    """
    require("ray.data", extra="ray")
    spec = JudgeSpec.of(judge)
    policy = adaptive_policy(adaptive)
    defer = meta and policy is None and not as_results
    grm = grm or StageResources()
    judged = _stage(
        ds,
        "JudgeStage",
        grm,
        {
            "spec": spec,
            "k": k,
            "meta": meta,
            "defer_meta": defer,
            "adaptive": policy,
            "texts": texts,
            "concurrency": grm.concurrency,
            "max_chars": max_input_chars,
            "skip_ids": frozenset(skip_ids),
            "settings": settings,
            "as_results": as_results,
        },
    )
    if not defer:
        return judged
    arguments = {"spec": spec, "k": k, "texts": texts, "settings": settings}
    return _stage(judged, "MetaStage", meta_stage or StageResources(), arguments)


def _stage(ds: Any, name: str, resources: StageResources, arguments: dict[str, Any]) -> Any:
    """``ds`` mapped by the stage class ``name`` on an actor pool sized and placed by ``resources``."""
    from grmjudge.integrations.ray import stages

    data = require("ray.data", extra="ray")
    stage = getattr(stages, name)
    return ds.map_batches(
        stage,
        fn_constructor_kwargs=arguments,
        compute=data.ActorPoolStrategy(min_size=resources.min_actors, max_size=resources.max_actors),
        batch_size=resources.batch_size,
        batch_format="pyarrow",
        num_cpus=resources.num_cpus,
        num_gpus=resources.num_gpus,
        **dict(resources.ray_remote_args),
    )
