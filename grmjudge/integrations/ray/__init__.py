"""Judging on Ray Data: a Dataset of items in, a Dataset of ``grmjudge score`` lines out (extra ``ray``).

[`judge_dataset`][grmjudge.integrations.ray.judge_dataset] runs the judge as an actor pool (each actor builds its
judge once, from a picklable [`JudgeSpec`][grmjudge.integrations.ray.JudgeSpec]), and the meta RM as a second
pool on its own resources. Results equal the local ``grmjudge score``'s line for line with the same seed and
backend. [`RayJudge`][grmjudge.integrations.ray.RayJudge] is a judge whose batches run there (``grmjudge eval
--engine ray``). Ray loads only when a pipeline is built. Guide: ``docs/scale.md``.
"""

from grmjudge.integrations.ray.dataset import StageResources, judge_dataset
from grmjudge.integrations.ray.ray_judge import RayJudge
from grmjudge.integrations.ray.rows import OUTPUT_COLUMNS
from grmjudge.integrations.ray.spec import JudgeSpec, judge_options

__all__ = ["OUTPUT_COLUMNS", "JudgeSpec", "RayJudge", "StageResources", "judge_dataset", "judge_options"]
