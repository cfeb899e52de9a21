"""Where the service writes: JSON access lines and service errors, to one stream."""

from __future__ import annotations

import logging
from typing import TextIO


def log_to(stream: TextIO) -> None:
    """Access lines (JSON) and service errors to ``stream``."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("grmjudge.serve", "grmjudge.integrations"):
        log = logging.getLogger(name)
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
