"""Fixed facts of each benchmark: section membership and weights, set names, categories (BENCHMARKS.md)."""

from __future__ import annotations

EXAMPLE_COUNTS: dict[str, int] = {
    "alpacaeval-easy": 100,
    "alpacaeval-length": 95,
    "alpacaeval-hard": 95,
    "mt-bench-easy": 28,
    "mt-bench-med": 40,
    "mt-bench-hard": 37,
    "math-prm": 984,  # 447 rows, up-weighted to count as much as the six code subsets together
    "refusals-dangerous": 100,
    "refusals-offensive": 100,
    "llmbar-natural": 100,
    "llmbar-adver-neighbor": 134,
    "llmbar-adver-GPTInst": 92,
    "llmbar-adver-GPTOut": 47,
    "llmbar-adver-manual": 46,
    # As in allenai/reward-bench rewardbench/constants.py: the leaderboard weights these two 250 / 154, the
    # reverse of their row counts (154 should-refuse, 250 should-respond). Kept for leaderboard parity.
    "xstest-should-refuse": 250,
    "xstest-should-respond": 154,
    "donotanswer": 136,
    "hep-cpp": 164,
    "hep-go": 164,
    "hep-java": 164,
    "hep-js": 164,
    "hep-python": 164,
    "hep-rust": 164,
}
"""RewardBench v1 section weights (``allenai/reward-bench: rewardbench/constants.py``)."""

SUBSET_MAPPING: dict[str, tuple[str, ...]] = {
    "Chat": ("alpacaeval-easy", "alpacaeval-length", "alpacaeval-hard", "mt-bench-easy", "mt-bench-med"),
    "Chat Hard": (
        "mt-bench-hard",
        "llmbar-natural",
        "llmbar-adver-neighbor",
        "llmbar-adver-GPTInst",
        "llmbar-adver-GPTOut",
        "llmbar-adver-manual",
    ),
    "Safety": (
        "refusals-dangerous",
        "refusals-offensive",
        "xstest-should-refuse",
        "xstest-should-respond",
        "donotanswer",
    ),
    "Reasoning": ("math-prm", "hep-cpp", "hep-go", "hep-java", "hep-js", "hep-python", "hep-rust"),
}
"""RewardBench v1 sections and their subsets."""

REWARDBENCH_SUBSETS = frozenset(EXAMPLE_COUNTS)

PRIOR_SETS_KNOWN = frozenset(
    {
        "anthropic_harmless",
        "anthropic_helpful",
        "anthropic_hhh",
        "mtbench_gpt4",
        "mtbench_human",
        "pku_better",
        "pku_safer",
        "shp",
        "summarize",
    }
)
PRIOR_SETS_DROPPED = frozenset({"pku_better", "pku_safer"})
PRIOR_SETS_SCORED = ("anthropic_helpful", "anthropic_hhh", "shp", "summarize")
"""The prior sets averaged into "Prior Sets" (``analysis/get_benchmark_results.py``); the others are reported only."""

RB2_SUBSETS = ("Factuality", "Precise IF", "Math", "Safety", "Focus", "Ties")

PPE_CORRECTNESS_SETS: dict[str, str] = {
    "lmarena-ai/PPE-MMLU-Pro-Best-of-K": "MMLU-Pro",
    "lmarena-ai/PPE-MATH-Best-of-K": "MATH",
    "lmarena-ai/PPE-GPQA-Best-of-K": "GPQA",
    "lmarena-ai/PPE-MBPP-Plus-Best-of-K": "MBPP-Plus",
    "lmarena-ai/PPE-IFEval-Best-of-K": "IFEval",
}
"""Hub id -> set name, in the paper's column order (Table 9)."""

RMB_SUBSETS = ("BoN Helpfulness", "Pairwise Helpfulness", "BoN Harmlessness", "Pairwise Harmlessness")
"""The paper's column order (Table 10)."""

RM_BENCH_DOMAINS = ("chat", "code", "math", "safety")
"""RM-Bench domains; ``safety-refuse`` and ``safety-response`` merge into ``safety`` by prefix."""

JUDGEBENCH_CATEGORIES = (
    ("mmlu-pro", "Knowledge"),
    ("livebench-reasoning", "Reasoning"),
    ("livebench-math", "Math"),
    ("livecodebench", "Coding"),
)
"""Source prefix -> reported category; an unknown source is reported under its own name."""
