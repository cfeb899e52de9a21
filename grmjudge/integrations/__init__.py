"""A GRM as the reward of policy RL: adapters for TRL's ``GRPOTrainer`` and verl's custom reward functions.

[`grmjudge.integrations.trl`][grmjudge.integrations.trl] and [`grmjudge.integrations.verl`][grmjudge.integrations.verl]
share one core: completions of the same prompt form a group, each group is judged **listwise** (all its
completions in one GRM prompt, k shuffled samples voted) or each completion **against a reference**, the votes
become rewards by a chosen normalisation, and a call without a verdict gets a configurable fallback that is
logged and counted in [`RewardStats`][grmjudge.integrations.RewardStats]. Neither module imports TRL or verl:
they only follow those libraries' calling conventions.
"""

from grmjudge.integrations.rewarder import RewardOptions, RewardStats

__all__ = ["RewardOptions", "RewardStats"]
