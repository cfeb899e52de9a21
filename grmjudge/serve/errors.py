"""JSON errors: what a refused request gets, and the status a backend failure maps to.

Every error body is ``{"error": {"type", "message", "field"}}``: ``type`` is the SDK's exception class name
(``InvalidInputError``, ``ServerError``, ...) or the service's own (``QueueFull``, ``DeadlineExceeded``...), so a
client can tell a bad request from a GRM server that is down without parsing messages.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from pydantic import ValidationError

from grmjudge.exceptions import (
    BackendConnectionError,
    BackendError,
    GRMJudgeError,
    InputTooLongError,
    InvalidInputError,
    RateLimitError,
    ServerError,
)
from grmjudge.results import ScoreResult

UNAVAILABLE = frozenset(cls.__name__ for cls in (BackendConnectionError, RateLimitError, ServerError)) | {
    "BackendTimeoutError"
}
"""Backend failures that pass (the GRM server is down, overloaded or rate limiting): 503, worth a retry."""

INPUT_AT_FAULT = frozenset({"ContextLengthError"})
"""Backend failures caused by the input (a prompt longer than the model's context): 422."""


class RequestError(Exception):
    """A request the service answers with an error status instead of a result."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        *,
        field: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type_
        self.message = message
        self.field = field
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        """The JSON error body."""
        return {"error": {"type": self.type, "message": self.message, "field": self.field}}


def invalid(message: str, field: str | None) -> RequestError:
    """A 422 for a field the service will not take."""
    return RequestError(422, "InvalidInputError", message, field=field)


def from_validation(exc: ValidationError, prefix: str = "") -> RequestError:
    """The first problem pydantic found, as a 422 naming its field (``responses.2``, ``items``...)."""
    first = exc.errors(include_url=False)[0]
    field = ".".join(str(part) for part in (*([prefix] if prefix else []), *first["loc"])) or None
    return invalid(first["msg"], field)


def from_exception(exc: GRMJudgeError) -> RequestError:
    """The status and type of an SDK error raised by a judge call."""
    name = type(exc).__name__
    if isinstance(exc, BackendError):
        return RequestError(_backend_status(name), name, str(exc))
    if isinstance(exc, InvalidInputError | InputTooLongError):
        return RequestError(422, name, str(exc))
    return RequestError(500, name, str(exc))


def backend_failure(result: ScoreResult) -> RequestError | None:
    """A 502/503 for a result without a verdict because every sample failed at the backend; else ``None``.

    A result whose samples were generated but did not parse is a verdict-less answer of the GRM, returned as is.
    """
    if result.no_verdict is None or not result.samples:
        return None
    errors = [s.error for s in result.samples if s.error is not None]
    if not errors or any(e.kind != "backend" for e in errors):
        return None
    reason, _ = Counter(e.reason for e in errors).most_common(1)[0]
    message = next(e.message for e in errors if e.reason == reason)
    return RequestError(_backend_status(reason), reason, f"the GRM backend failed: {message}")


def _backend_status(name: str) -> int:
    if name in INPUT_AT_FAULT:
        return 422
    return 503 if name in UNAVAILABLE else 502  # refused credentials and malformed replies: 502
