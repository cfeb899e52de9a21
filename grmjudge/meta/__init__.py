"""Meta reward models: score each sampled judgement so meta-guided voting keeps the best ones (METHOD.md §8).

The interface and the function adapter load with this package; the model-backed scorers load on first use,
since the local one needs torch and transformers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from grmjudge.exceptions import ConfigurationError
from grmjudge.meta.base import ClassifierMetaScorer, FunctionMetaScorer, MetaFunction, MetaInput, MetaScorer

if TYPE_CHECKING:
    from grmjudge.meta.http import HTTPMetaScorer
    from grmjudge.meta.transformers import TransformersMetaScorer

__all__ = [
    "ClassifierMetaScorer",
    "FunctionMetaScorer",
    "HTTPMetaScorer",
    "MetaFunction",
    "MetaInput",
    "MetaScorer",
    "TransformersMetaScorer",
    "meta_from_spec",
]


def __getattr__(name: str) -> Any:
    """Load the model-backed scorers on first use: the local one needs torch and transformers."""
    if name == "TransformersMetaScorer":
        from grmjudge.meta.transformers import TransformersMetaScorer

        return TransformersMetaScorer
    if name == "HTTPMetaScorer":
        from grmjudge.meta.http import HTTPMetaScorer

        return HTTPMetaScorer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def meta_from_spec(spec: str, base_url: str | None = None) -> MetaScorer:
    """The meta RM a command line names: ``http:MODEL`` (a vLLM classifier at ``base_url``) or ``hf:PATH``."""
    kind, sep, model = spec.partition(":")
    if not sep or not model or kind not in ("http", "hf"):
        raise ConfigurationError(
            f"--meta must look like 'http:MODEL' (with --meta-base-url) or 'hf:PATH', got {spec!r}"
        )
    if kind == "http":
        if base_url is None:
            raise ConfigurationError("--meta http:MODEL needs --meta-base-url, the vLLM server that serves it")
        from grmjudge.meta.http import HTTPMetaScorer

        return HTTPMetaScorer(base_url, model)
    from grmjudge.meta.transformers import TransformersMetaScorer

    return TransformersMetaScorer(model)
