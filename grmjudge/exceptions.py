"""The grmjudge error tree.

Every error grmjudge raises derives from [`GRMJudgeError`][grmjudge.exceptions.GRMJudgeError], so callers
can catch one class.
Foreign exceptions (httpx, JSON) are translated at the backend boundary with ``raise ... from exc``.

```
GRMJudgeError
├─ ConfigurationError            bad settings, missing meta scorer, bad template
│   └─ MissingDependencyError    an extra is not installed (the message names it)
├─ InvalidInputError             a query, response list or argument that cannot be judged (also ValueError)
│   └─ InputTooLongError         an input longer than the model's context; .index, .length, .max_length
│       └─ ContextLengthError    a local engine's prompt does not fit (also a BackendError, so it is recorded
│                                on the samples like a server's 400); .prompt_tokens, .max_tokens, .max_context
├─ BackendError                  anything from a backend; .retryable
│   ├─ BackendConnectionError    could not connect (retryable)
│   │   └─ BackendTimeoutError   the request timed out (retryable)
│   ├─ BackendStatusError        a non-2xx answer; .status_code, .body, .retry_after
│   │   ├─ AuthenticationError   401 / 403
│   │   ├─ RateLimitError        429
│   │   └─ ServerError           5xx
│   └─ BackendResponseError      a 2xx answer with a malformed body
└─ NoVerdictError                no sample produced a valid judgement (raised only on request)
```

Parse failures of single samples are not exceptions: they are recorded on the sample
([`grmjudge.results.SampleError`][grmjudge.results.SampleError]) because one bad sample must not sink a k-sample vote.
Error messages never contain credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from grmjudge.results import NoVerdict


class GRMJudgeError(Exception):
    """Base class of every error raised by grmjudge."""


class ConfigurationError(GRMJudgeError):
    """The judge, a backend or a template was configured in a way that cannot work."""


class MissingDependencyError(ConfigurationError, ImportError):
    """An optional dependency is missing; the message names the extra to install."""


class InvalidInputError(GRMJudgeError, ValueError):
    """A query, response list or call argument cannot be judged."""


class InputTooLongError(InvalidInputError):
    """An input has more tokens than the model's context; it is rejected, never truncated.

    ``index`` is the input's position in the call, ``length`` its token count and ``max_length`` the limit;
    either is ``None`` where it is not known (vLLM stops counting one token past its limit).
    """

    def __init__(self, message: str, *, index: int | None, length: int | None, max_length: int | None) -> None:
        super().__init__(message)
        self.index = index
        self.length = length
        self.max_length = max_length


class BackendError(GRMJudgeError):
    """A backend failed to produce a generation."""

    retryable: bool = False

    def __init__(self, message: str, *, backend: str | None = None) -> None:
        super().__init__(message)
        self.backend = backend


class BackendConnectionError(BackendError):
    """The backend could not be reached."""

    retryable = True


class BackendTimeoutError(BackendConnectionError):
    """The request to the backend timed out."""


class BackendStatusError(BackendError):
    """The backend answered with a non-2xx HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        retry_after: float | None = None,
        backend: str | None = None,
    ) -> None:
        super().__init__(message, backend=backend)
        self.status_code = status_code
        self.body = body
        self.retry_after = retry_after
        self.retryable = status_code in (408, 409, 429) or status_code >= 500


class AuthenticationError(BackendStatusError):
    """The backend rejected the credentials (401 or 403)."""


class RateLimitError(BackendStatusError):
    """The backend is rate limiting (429); ``retry_after`` is the server's hint in seconds, if any."""


class ServerError(BackendStatusError):
    """The backend failed internally (5xx)."""


class BackendResponseError(BackendError):
    """The backend answered 2xx but the body is not what the protocol promises."""


class ContextLengthError(BackendError, InputTooLongError):
    """A local engine's prompt does not fit its context; raised before anything is generated.

    A [`BackendError`][grmjudge.exceptions.BackendError], so a judge records it on the affected samples like a
    server's "maximum context length" 400, and an [`InputTooLongError`][grmjudge.exceptions.InputTooLongError],
    because the input is at fault. ``prompt_tokens`` (also ``length``), ``max_tokens`` and ``max_context``
    (also ``max_length``) are the numbers that did not fit.
    """

    def __init__(
        self, message: str, *, prompt_tokens: int, max_tokens: int, max_context: int, backend: str | None = None
    ) -> None:
        InputTooLongError.__init__(self, message, index=None, length=prompt_tokens, max_length=max_context)
        self.backend = backend
        self.prompt_tokens = prompt_tokens
        self.max_tokens = max_tokens
        self.max_context = max_context


class NoVerdictError(GRMJudgeError):
    """No sample produced a valid judgement; ``no_verdict`` says why."""

    def __init__(self, no_verdict: NoVerdict) -> None:
        super().__init__(no_verdict.message)
        self.no_verdict = no_verdict
