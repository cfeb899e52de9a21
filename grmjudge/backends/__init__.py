"""Backends: where judgements come from. Heavy backends live in their own modules behind extras.

The HTTP backends' settings, [`RetryPolicy`][grmjudge.backends.http.RetryPolicy] and
[`RateLimits`][grmjudge.backends.limits.RateLimits], live beside the client that applies them.
"""

from grmjudge.backends._http_backend import HTTPBackend
from grmjudge.backends._spec import backend_from_spec
from grmjudge.backends.base import Backend
from grmjudge.backends.function import FunctionBackend
from grmjudge.backends.http import RetryPolicy
from grmjudge.backends.limits import RateLimits
from grmjudge.backends.openai import OpenAIBackend

__all__ = [
    "Backend",
    "FunctionBackend",
    "HTTPBackend",
    "OpenAIBackend",
    "RateLimits",
    "RetryPolicy",
    "backend_from_spec",
]
