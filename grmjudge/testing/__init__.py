"""Helpers for testing code that uses grmjudge, without a GPU or an API key.

- [`FakeOpenAIServer`][grmjudge.testing.fake_openai.FakeOpenAIServer]: an in-process OpenAI-compatible ASGI app;
  [`FakeAnthropicServer`][grmjudge.testing.fake_anthropic.FakeAnthropicServer] speaks the Messages API.
- [`FaultyOpenAIServer`][grmjudge.testing.faults.FaultyOpenAIServer]: the same with injected faults (429, 5xx,
  slow and dropped responses, broken JSON, bad judgements) at configurable rates.
- [`grmjudge.testing.tiny.build_tiny_model`][grmjudge.testing.tiny.build_tiny_model]: a tiny random causal LM with a
  locally trained
  tokenizer (extra ``hf``; import the module explicitly).
- [`grmjudge.testing.vllm_server.serve_vllm`][grmjudge.testing.vllm_server.serve_vllm]: a real vLLM server subprocess
  (extra ``vllm``).

The names below are imported on first use, so ``python -m grmjudge.testing.fake_openai`` (serving over TCP,
extra ``testing``) runs its module once, as ``__main__``, and not a second time through this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grmjudge.backends.function import FunctionBackend
    from grmjudge.testing.fake_anthropic import FakeAnthropicRequest, FakeAnthropicServer
    from grmjudge.testing.fake_openai import FakeOpenAIServer, FakeRequest, default_judgement
    from grmjudge.testing.faults import ConnectionDropped, FaultKind, FaultPlan, FaultStats, FaultyOpenAIServer

_HOMES = {
    "FunctionBackend": "grmjudge.backends.function",
    "FakeAnthropicRequest": "grmjudge.testing.fake_anthropic",
    "FakeAnthropicServer": "grmjudge.testing.fake_anthropic",
    "FakeOpenAIServer": "grmjudge.testing.fake_openai",
    "FakeRequest": "grmjudge.testing.fake_openai",
    "default_judgement": "grmjudge.testing.fake_openai",
    "ConnectionDropped": "grmjudge.testing.faults",
    "FaultKind": "grmjudge.testing.faults",
    "FaultPlan": "grmjudge.testing.faults",
    "FaultStats": "grmjudge.testing.faults",
    "FaultyOpenAIServer": "grmjudge.testing.faults",
}

__all__ = [
    "ConnectionDropped",
    "FakeAnthropicRequest",
    "FakeAnthropicServer",
    "FakeOpenAIServer",
    "FakeRequest",
    "FaultKind",
    "FaultPlan",
    "FaultStats",
    "FaultyOpenAIServer",
    "FunctionBackend",
    "default_judgement",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'grmjudge.testing' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
