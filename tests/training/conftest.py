"""Fixtures for the training tests: one torch thread, short templates, and the tiny meta-RM starting point."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from grmjudge.prompts import PromptTemplate

SHORT = PromptTemplate(id="test-short", text="Score the responses.\n{context}\n{responses}\nScores:")
"""A short judge template: the training tests learn the output format in seconds with prompts this size."""

SHORT_SINGLE = PromptTemplate(
    id="test-short-single", text="Is it correct?\n{context}\n{responses}\nScore:", score_range=(0, 1), numbered=False
)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """Run the tiny models on one thread: their steps are so small that thread hand-offs dominate.

    Measured on the 2-core CI machine under load: 13 ms per tiny training step with one thread, 470 ms with two.
    """
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def template_file(directory: Path, template: PromptTemplate) -> Path:
    """The template as a YAML file, the form the command line takes."""
    yaml = pytest.importorskip("yaml")
    path = directory / f"{template.id}.yaml"
    path.write_text(yaml.safe_dump(template.model_dump(mode="json")))
    return path
