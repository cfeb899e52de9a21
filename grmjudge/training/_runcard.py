"""Run cards: the resolved configuration, library versions, seed and data hashes of every run.

Defaults drift between TRL and transformers releases, so a result is only reproducible with the settings
that were actually in force. Secrets never land here: fields named like tokens, keys or passwords are
redacted, and so are credentials inside URLs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from grmjudge._version import __version__

_PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "vllm", "deepspeed")
_SECRET_NAME = re.compile(r"(^|_)(token|api_key|apikey|secret|password)$", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def config_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a dataclass config (``to_dict`` where transformers provides one), secrets redacted."""
    raw: Any = config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)
    return {str(key): _redact(str(key), value) for key, value in raw.items()}


def write_run_card(
    output_dir: str | Path,
    stage: str,
    config: Any,
    *,
    data_files: Iterable[str | Path | None] = (),
    results: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``run_card.json`` into ``output_dir`` and return its path."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    card = {
        "stage": stage,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "grmjudge": __version__,
        "versions": _versions(),
        "config": config_dict(config),
        "data": {str(path): _fingerprint(Path(path)) for path in data_files if path is not None},
        "results": dict(results or {}),
    }
    path = out / "run_card.json"
    path.write_text(json.dumps(card, indent=2, default=str) + "\n", encoding="utf-8")
    return path


def _versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def _fingerprint(path: Path) -> str:
    if not path.is_file():
        return "not a local file (hub dataset id or directory)"
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def _redact(name: str, value: Any) -> Any:
    if value is not None and _SECRET_NAME.search(name) and not isinstance(value, bool | int | float):
        return "<redacted>"
    if isinstance(value, str):
        return _URL_CREDENTIALS.sub(r"\g<scheme><redacted>@", value)
    return value
