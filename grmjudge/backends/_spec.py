"""Build a backend from a ``"kind:model"`` string, importing heavy modules only for the kind asked for.

Built-in kinds: ``openai`` (any OpenAI-compatible server), ``anthropic``, ``hf`` (local transformers model)
and ``vllm`` (in-process engine). Other kinds come from the ``grmjudge.backends`` entry-point group: the
entry point's name is the kind and its object is a callable ``factory(model, **options) -> Backend``.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from grmjudge.backends.base import Backend
from grmjudge.exceptions import ConfigurationError

ENTRY_POINT_GROUP = "grmjudge.backends"
BUILTIN_KINDS = ("openai", "anthropic", "hf", "vllm")

BackendFactory = Callable[..., object]
"""Builds a backend; its result is checked, since a plugin may return anything."""


def backend_from_spec(spec: str, **options: Any) -> Backend:
    """The backend a spec names, e.g. ``backend_from_spec("openai:my-grm", base_url="http://127.0.0.1:8000/v1")``."""
    kind, sep, model = spec.partition(":")
    if not sep or not kind or not model:
        raise ConfigurationError(f"backend spec must look like 'kind:model', got {spec!r}")
    factory = _builtin_factory(kind) or _plugin_factory(kind)
    if factory is None:
        raise ConfigurationError(_unknown_kind_message(kind))
    try:
        backend = factory(model, **options)
    except TypeError as exc:
        raise ConfigurationError(f"backend {kind!r} does not accept these options: {exc}") from exc
    if not isinstance(backend, Backend):
        raise ConfigurationError(f"backend factory for {kind!r} returned {type(backend).__name__}, not a Backend")
    return backend


def _builtin_factory(kind: str) -> BackendFactory | None:
    if kind == "openai":
        return _openai
    if kind == "anthropic":
        from grmjudge.backends.anthropic import AnthropicBackend

        return AnthropicBackend
    if kind == "hf":
        from grmjudge.backends.transformers import TransformersBackend

        return TransformersBackend
    if kind == "vllm":
        from grmjudge.backends.vllm import VLLMBackend

        return VLLMBackend
    return None


def _openai(model: str, *, base_url: str | None = None, **options: Any) -> Backend:
    from grmjudge.backends.openai import OpenAIBackend

    if base_url is None:
        raise ConfigurationError("an 'openai:MODEL' spec needs base_url=..., e.g. http://127.0.0.1:8000/v1")
    return OpenAIBackend(base_url, model, **options)


def _plugin_factory(kind: str) -> BackendFactory | None:
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        if entry_point.name == kind:
            factory = entry_point.load()
            if not callable(factory):
                raise ConfigurationError(f"entry point {entry_point.value!r} for {kind!r} is not callable")
            return factory  # pyright: ignore[reportUnknownVariableType]
    return None


def _unknown_kind_message(kind: str) -> str:
    known = [*BUILTIN_KINDS, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))]
    close = difflib.get_close_matches(kind, known, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown backend kind {kind!r}; known kinds: {', '.join(known)}.{hint}"
