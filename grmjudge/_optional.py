"""Import optional heavy dependencies with an error that names the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from grmjudge.exceptions import MissingDependencyError


def require(module: str, *, extra: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming ``pip install 'grmjudge[extra]'``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{module!r} is not installed; it comes with the {extra!r} extra: pip install 'grmjudge[{extra}]'"
        ) from exc
