"""The backend contract: one abstract async method that generates n completions for one request."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from grmjudge._lifecycle import Closable
from grmjudge.types import Generation, GenerationRequest


class Backend(Closable, ABC):
    """A source of generations: a server, a hosted API, a local model or a plain function.

    ``supports_n`` says whether one request can return ``request.n`` completions; when it is false the judge
    sends ``n`` requests of one completion each, with distinct seeds. Backends are async context managers;
    `aclose` releases what the backend created (never what the caller handed in).
    """

    name: ClassVar[str] = "backend"
    supports_n: bool = False
    model: str = "unknown"

    @abstractmethod
    async def generate(self, request: GenerationRequest) -> Generation:
        """Generate ``request.n`` completions (or exactly one when ``supports_n`` is false)."""
