from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


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
