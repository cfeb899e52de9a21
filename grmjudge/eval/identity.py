"""What a run's judge and sampling are, for pass fingerprints and the report's provenance (no URLs, no keys)."""

from __future__ import annotations

from typing import Any

from grmjudge.judge import Judge
from grmjudge.scalar import ScalarJudge


def sampling_identity(settings: Any, k: int) -> dict[str, Any] | None:
    """The sampling parameters that determine a pass's samples (``None`` for a scalar RM)."""
    if settings is None:
        return None
    return {
        "template_id": settings.template.id,
        "template_hash": settings.template.hash,
        "temperature": settings.temperature_for(k),
        "top_p": settings.top_p,
        "max_tokens": settings.max_tokens,
        "shuffle": settings.shuffle.value,
        "seed": settings.seed,
        "k_meta": settings.k_meta,
        "max_resample_rounds": settings.max_resample_rounds,
        "extra_body": dict(settings.extra_body or {}),
    }


def judge_identity(judge: Judge | ScalarJudge) -> dict[str, Any]:
    """What the judge is, for provenance: kind, backend, model, meta scorer (no URLs, no keys)."""
    if isinstance(judge, Judge):
        meta = judge.meta
        return {
            "type": "grm",
            "backend": judge.backend.name,
            "model": judge.backend.model,
            "meta": None if meta is None else {"type": type(meta).__name__, "model": getattr(meta, "model", None)},
        }
    return {"type": "scalar", "backend": judge.classifier.name, "model": judge.classifier.model, "seed": judge.seed}
