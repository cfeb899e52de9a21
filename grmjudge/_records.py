"""Pydantic records built straight through pydantic-core, skipping ``BaseModel.__init__``'s Python layer.

A judge call builds a few dozen small records (samples, completions, votes, provenance). Measured in
instructions (callgrind, pydantic 2.14), ``Sample(**values)`` costs about 23k, a Python constructor that skips
validation (``__dict__`` filled by hand) 21k, ``model_construct`` 56k, and the model's compiled validator on a
dict 16k: validation is not what is slow, ``__init__``'s Python wrapper is. ``validated`` therefore validates as
``cls(**values)`` does and returns the very instance it would (same fields, defaults and ``model_fields_set``).
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)


def validated(cls: type[M], /, **values: Any) -> M:
    """``cls(**values)``, a third cheaper: the values go to the model's compiled validator as they are."""
    return cast(M, cls.__pydantic_validator__.validate_python(values))
