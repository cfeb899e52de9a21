"""A synthetic score output of any size, written fast, in the exact shape ``grmjudge score`` writes."""

from __future__ import annotations

import json
import random
from pathlib import Path


def write_large_run(path: Path, items: int, *, k: int = 4, seed: int = 0) -> None:
    """``items`` pairs with ``k`` balanced samples each, a judge preferring the first shown 60% of the time."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(items):
            samples: list[dict[str, object]] = []
            totals = [0, 0]
            for j in range(k):
                order = [0, 1] if j % 2 == 0 else [1, 0]
                first = rng.random() < 0.6
                shown_scores = [8, 3] if first else [3, 8]
                scores = [shown_scores[order.index(c)] for c in range(2)]
                totals = [t + s for t, s in zip(totals, scores, strict=True)]
                samples.append(
                    {
                        "permutation": order,
                        "scores": scores,
                        "principles": "Accuracy (Weight: 100%).",
                        "critique": f"Item {i}: response {order[0] + 1} is shown first.",
                        "text": "",
                        "finish_reason": "stop",
                        "error": None,
                        "meta_score": None,
                        "kept": True,
                        "cached": False,
                    }
                )
            best = 0 if totals[0] >= totals[1] else 1
            record = {
                "id": f"item-{i}",
                "scores": [float(t) for t in totals],
                "best": best,
                "label": i % 2,
                "n_valid": k,
                "n_kept": k,
                "samples": samples,
                "no_verdict": None,
                "provenance": {"model": "synthetic", "backend": "function", "k": k, "meta": False},
                "usage": {"requests": 2, "prompt_tokens": 300, "completion_tokens": 80 * k},
            }
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
