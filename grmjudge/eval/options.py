"""[`EvalOptions`][grmjudge.eval.options.EvalOptions]: how a run is scored and carried out, besides the judge and k.

Its own module so the report can read the options of a run without importing the harness that runs it.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from grmjudge.adaptive import AdaptivePolicy
from grmjudge.eval.outcomes import TiePolicy


class EvalOptions(BaseModel):
    """How a benchmark is scored and run, besides the judge and k.

    ``draws`` random k-subsets of the sampled pass are averaged for each k below the largest; ``bootstrap``
    resamples give every number a 95% interval (0 turns them off). ``adaptive`` adds Adaptive@k (and
    Adaptive-MetaRM@k) at the largest k, replayed on the sampled pass, with their samples per item.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tie_policy: TiePolicy = TiePolicy.OFFICIAL
    draws: int = Field(default=16, ge=1)
    bootstrap: int = Field(default=1000, ge=0)
    concurrency: int = Field(default=16, ge=1)
    texts: bool = True
    progress_every: float = Field(default=5.0, gt=0)
    adaptive: AdaptivePolicy | None = None
