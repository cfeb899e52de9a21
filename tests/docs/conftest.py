"""Session-wide stand-ins for the docs harness: servers, a hub cache of tiny models, the bash blocks' PATH."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.docs.shell import make_bin
from tests.docs.standins import HubCache, Servers


@pytest.fixture(scope="session")
def docs_servers() -> Iterator[Servers]:
    servers = Servers()
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture(scope="session")
def hub_cache(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, tiny_classifier_dir: Path) -> HubCache:
    return HubCache(tmp_path_factory.mktemp("docs-hub-cache"), tiny_model_dir, tiny_classifier_dir)


@pytest.fixture(scope="session")
def docs_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bin(tmp_path_factory.mktemp("docs-bin"))
