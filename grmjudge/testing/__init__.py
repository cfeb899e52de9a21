"""Helpers for testing code that uses grmjudge, without a GPU or an API key.

- [`FakeOpenAIServer`][grmjudge.testing.fake_openai.FakeOpenAIServer]: an in-process OpenAI-compatible ASGI app.
- [`grmjudge.testing.tiny.build_tiny_model`][grmjudge.testing.tiny.build_tiny_model]: a tiny random causal LM with a
  locally trained
  tokenizer (extra ``hf``; import the module explicitly).
- [`grmjudge.testing.vllm_server.serve_vllm`][grmjudge.testing.vllm_server.serve_vllm]: a real vLLM server subprocess
  (extra ``vllm``).
"""

from grmjudge.backends.function import FunctionBackend
from grmjudge.testing.fake_openai import FakeOpenAIServer, FakeRequest, default_judgement

__all__ = ["FakeOpenAIServer", "FakeRequest", "FunctionBackend", "default_judgement"]
