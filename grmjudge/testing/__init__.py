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
"""

from grmjudge.backends.function import FunctionBackend
from grmjudge.testing.fake_anthropic import FakeAnthropicRequest, FakeAnthropicServer
from grmjudge.testing.fake_openai import FakeOpenAIServer, FakeRequest, default_judgement
from grmjudge.testing.faults import ConnectionDropped, FaultKind, FaultPlan, FaultStats, FaultyOpenAIServer

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
