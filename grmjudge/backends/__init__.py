"""Backends: where judgements come from. Heavy backends live in their own modules behind extras."""

from grmjudge.backends.base import Backend
from grmjudge.backends.function import FunctionBackend
from grmjudge.backends.openai import OpenAIBackend

__all__ = ["Backend", "FunctionBackend", "OpenAIBackend"]
