"""What a Ray actor needs to build its judge: picklable, and holding no secret.

An actor builds its judge once, from a [`JudgeSpec`][grmjudge.integrations.ray.JudgeSpec], on the worker: API
keys are read there from the worker's environment (``OPENAI_API_KEY``, ...), so no key is ever pickled into a
task, a row or Ray's object store. A live client cannot cross processes anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from grmjudge.judge import Judge
from grmjudge.judge_options import JudgeOptions, build_backend, build_meta, build_settings
from grmjudge.meta import MetaScorer
from grmjudge.settings import JudgeSettings


def judge_options(
    judge: str,
    *,
    base_urls: tuple[str, ...] = (),
    meta: str | None = None,
    meta_base_url: str | None = None,
    k_meta: int | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    seed: int | None = None,
) -> JudgeOptions:
    """[`JudgeOptions`][grmjudge.judge_options.JudgeOptions] as ``grmjudge score``'s flags would give them."""
    return JudgeOptions(
        judge=judge,
        base_urls=base_urls,
        meta=meta,
        meta_base_url=meta_base_url,
        k_meta=k_meta,
        temperature=temperature,
        max_tokens=max_tokens,
        seed=seed,
        rpm=None,
        tpm=None,
        max_retries_per_item=None,
    )


@dataclass(frozen=True)
class JudgeSpec:
    """How each actor builds its judge: command-line judge options, or a picklable function that returns a judge.

    ``options`` are what ``grmjudge score`` takes (``--judge``, ``--base-url``, ``--meta``, ...); ``factory``
    (a module-level function, or any callable cloudpickle can send) is for judges the flags cannot describe.
    Exactly one of the two is given. ``max_concurrent_requests`` bounds each actor's backend requests.
    """

    options: JudgeOptions | None = None
    factory: Callable[[], Judge] | None = None
    max_concurrent_requests: int = 64

    def __post_init__(self) -> None:
        if (self.options is None) == (self.factory is None):
            raise ValueError("give exactly one of options and factory")

    @classmethod
    def of(cls, judge: str | JudgeOptions | JudgeSpec | Callable[[], Judge]) -> JudgeSpec:
        """A spec from a backend spec string, judge options, a factory, or a spec (returned as is)."""
        if isinstance(judge, JudgeSpec):
            return judge
        if isinstance(judge, str):
            return cls(options=judge_options(judge))
        if isinstance(judge, JudgeOptions):
            return cls(options=judge)
        return cls(factory=judge)

    @property
    def has_meta(self) -> bool | None:
        """Whether the options name a meta RM (None for a factory: known only once it is built)."""
        return None if self.options is None else self.options.meta is not None

    def build(self, *, meta: bool) -> Judge:
        """The judge; with ``meta=False`` a judge from options gets no meta RM (the meta stage holds that)."""
        if self.factory is not None:
            return self.factory()
        assert self.options is not None
        return Judge(
            build_backend(self.options),
            meta=build_meta(self.options) if meta else None,
            settings=build_settings(self.options),
            max_concurrent_requests=self.max_concurrent_requests,
        )

    def build_meta(self) -> tuple[MetaScorer, JudgeSettings]:
        """The meta RM and the judge settings (for ``k_meta``), without the GRM backend where options allow."""
        if self.options is not None:
            meta = build_meta(self.options)
            if meta is not None:
                return meta, build_settings(self.options)
        judge = self.build(meta=True)
        if judge.meta is None:
            raise ValueError("meta=True needs a meta RM: --meta in the options, or a factory whose judge has one")
        return judge.meta, judge.settings
