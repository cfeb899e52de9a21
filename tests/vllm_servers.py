"""The engine tier's two vLLM servers (the tiny GRM, the tiny classifier), started when collection finishes.

Each takes 30-50 s to load on CPU. Started early, the loading overlaps the tests that come before the first
one that needs it; the fixtures in ``tests/conftest.py`` then wait for it to answer, and stop it at the end.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from grmjudge.testing.tiny import build_tiny_classifier, build_tiny_model
from grmjudge.testing.vllm_server import StartingServer, VLLMServer, start_vllm

TINY_MODEL = pytest.StashKey[Path]()
TINY_CLASSIFIER = pytest.StashKey[Path]()
GRM_SERVER = pytest.StashKey[StartingServer]()
CLASSIFIER_SERVER = pytest.StashKey[StartingServer]()

LATE_SERVER_NICENESS = 10

CLASSIFIER_FLAGS = ("--runner", "pooling", "--convert", "classify")
"""The explicit flags the docs give for a served classifier (the model name's suffix would imply them)."""


def can_serve() -> bool:
    """Whether this interpreter has what the tiny models and a vLLM server need."""
    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "tokenizers", "vllm"))


def tiny_path(config: pytest.Config, key: pytest.StashKey[Path], build: Callable[[Path], Path], name: str) -> Path:
    """The session's tiny model under ``key``, built now into a fresh temp directory if it is not yet."""
    if key not in config.stash:
        temp: pytest.TempPathFactory = config._tmp_path_factory  # pyright: ignore[reportAttributeAccessIssue]
        config.stash[key] = build(temp.mktemp(name))
    return config.stash[key]


def start_grm_server(config: pytest.Config) -> StartingServer:
    """Start vLLM on the session's tiny GRM (without waiting for it)."""
    return start_vllm(tiny_path(config, TINY_MODEL, build_tiny_model, "tiny-model"), python=sys.executable)


def start_classifier_server(config: pytest.Config) -> StartingServer:
    """Start vLLM on the session's tiny classifier (without waiting for it), at a lower priority: its tests come
    minutes after the GRM server's, so it loads on the CPU the tests in front leave idle."""
    model = tiny_path(config, TINY_CLASSIFIER, build_tiny_classifier, "tiny-classifier")
    server = start_vllm(model, python=sys.executable, extra_args=CLASSIFIER_FLAGS)
    os.setpriority(os.PRIO_PROCESS, server.pid, LATE_SERVER_NICENESS)
    return server


STARTERS: dict[str, tuple[pytest.StashKey[StartingServer], Callable[[pytest.Config], StartingServer]]] = {
    "vllm_server": (GRM_SERVER, start_grm_server),
    "classifier_server": (CLASSIFIER_SERVER, start_classifier_server),
}
"""Each server's fixture name, and where its started process is kept."""


def start_needed(config: pytest.Config, fixture_names: set[str]) -> None:
    """Start now the servers whose fixtures a selected test uses, where vLLM is installed."""
    if not can_serve():
        return  # the fixtures skip (or, in CI, fail) with the reason when a test asks for them
    for fixture, (key, start) in STARTERS.items():
        if fixture in fixture_names:
            config.stash[key] = start(config)


def stop_started(config: pytest.Config) -> None:
    """Stop every server started for the session."""
    for key, _ in STARTERS.values():
        server = config.stash.get(key, None)
        if server is not None:
            server.stop()


def serve(config: pytest.Config, fixture: str) -> Iterator[VLLMServer]:
    """The server ``fixture`` names, started early or now, once it answers; stopped when the fixture ends."""
    key, start = STARTERS[fixture]
    server = config.stash.get(key, None) or start(config)
    try:
        yield server.ready()
    finally:
        server.stop()
        if key in config.stash:
            del config.stash[key]
