"""FunctionBackend: any sync or async callable as a backend, for tests and custom integrations."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from typing import ClassVar

from grmjudge.backends.base import Backend
from grmjudge.exceptions import BackendResponseError
from grmjudge.types import Completion, Generation, GenerationRequest, Usage

FunctionReply = Generation | str | Completion | Sequence[str | Completion]
GenerateFunction = Callable[[GenerationRequest], FunctionReply | Awaitable[FunctionReply]]


class FunctionBackend(Backend):
    """Wrap ``fn(request)`` that returns a [`Generation`][grmjudge.types.Generation] or the request's texts.

    The texts may be strings or [`Completion`][grmjudge.types.Completion] objects; a plain string answers a
    request with ``n=1``. A sync ``fn`` runs on the event loop, so keep it fast or make it async.
    """

    name: ClassVar[str] = "function"

    def __init__(self, fn: GenerateFunction, *, model: str = "function", supports_n: bool = True) -> None:
        self._fn = fn
        self.model = model
        self.supports_n = supports_n

    def __repr__(self) -> str:
        return f"FunctionBackend(fn={getattr(self._fn, '__qualname__', self._fn)!r}, model={self.model!r})"

    async def generate(self, request: GenerationRequest) -> Generation:
        self._check_open()
        reply = self._fn(request)
        if inspect.isawaitable(reply):
            reply = await reply
        generation = _to_generation(reply)
        if len(generation.completions) != request.n:
            raise BackendResponseError(
                f"function returned {len(generation.completions)} completions for n={request.n}", backend=self.name
            )
        return generation


def _to_generation(reply: FunctionReply) -> Generation:
    if isinstance(reply, Generation):
        return reply
    items: Sequence[str | Completion] = [reply] if isinstance(reply, str | Completion) else reply
    completions = tuple(item if isinstance(item, Completion) else Completion(text=item) for item in items)
    return Generation(completions=completions, usage=Usage(requests=1))
