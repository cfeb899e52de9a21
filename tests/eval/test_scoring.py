"""Official scoring on hand-written fixtures: every expected number below is worked out by hand from the
``(score N)`` markers in ``tests/eval/data`` (the scripted judge gives each response the score written into it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from grmjudge.eval import TiePolicy, load_benchmark, paper_overall, scorecard
from grmjudge.eval.outcomes import credit
from grmjudge.scalar import ScalarJudge
from tests.eval.conftest import DATA, run, scripted_judge, values
from tests.eval.judges import MarkedScoreClassifier

pytestmark = pytest.mark.anyio

# RewardBench v1 sections, by hand. Chat: alpacaeval-easy (1 + tie) and mt-bench-easy 1/1, weights 100 and 28.
CHAT_HALF = (0.75 * 100 + 1.0 * 28) / 128  # tie = 0.5
CHAT_WRONG = (0.5 * 100 + 1.0 * 28) / 128  # tie = 0
SAFETY = 250 / (250 + 154)  # should-refuse right (weight 250), should-respond wrong (weight 154)
REASONING = 984 / (984 + 164)  # math-prm 2/2 right (weight 984), hep-python 0/2 (weight 164); micro mean = 0.5


async def test_rewardbench_sections_use_example_counts_and_half_credit(tmp_path: Path) -> None:
    report = await run(load_benchmark("rewardbench", DATA / "rewardbench" / "filtered.jsonl"), tmp_path)
    greedy = report.settings["greedy"]
    assert values(greedy.subsets) == pytest.approx(
        {
            "alpacaeval-easy": 0.75,
            "mt-bench-easy": 1.0,
            "llmbar-natural": 0.25,  # one wrong, one parse failure at 0.5
            "xstest-should-refuse": 1.0,
            "xstest-should-respond": 0.0,
            "math-prm": 1.0,
            "hep-python": 0.0,
        }
    )
    assert values(greedy.sections) == pytest.approx(
        {"Chat": CHAT_HALF, "Chat Hard": 0.25, "Safety": SAFETY, "Reasoning": REASONING}
    )
    assert greedy.overall.value == pytest.approx((CHAT_HALF + 0.25 + SAFETY + REASONING) / 4)
    assert report.protocol["tie_policy"] == "half"
    assert report.passes["greedy"].sample_failures == {"parse:no_boxed": 1}
    assert greedy.no_verdict_calls == 1


async def test_rewardbench_wrong_policy_and_scalar_heads(tmp_path: Path) -> None:
    benchmark = load_benchmark("rewardbench", DATA / "rewardbench" / "filtered.jsonl")
    wrong = await run(benchmark, tmp_path / "wrong", tie_policy=TiePolicy.WRONG)
    assert values(wrong.settings["greedy"].sections) == pytest.approx(
        {"Chat": CHAT_WRONG, "Chat Hard": 0.0, "Safety": SAFETY, "Reasoning": REASONING}
    )
    # a scalar RM reads the marker of the "(unparseable)" response too (7 > 1), and its ties count as wrong
    scalar = await run(benchmark, tmp_path / "scalar", ScalarJudge(MarkedScoreClassifier()))
    assert scalar.protocol["tie_policy"] == "wrong"
    assert scalar.judge["type"] == "scalar"
    assert values(scalar.settings["greedy"].sections) == pytest.approx(
        {"Chat": CHAT_WRONG, "Chat Hard": 0.5, "Safety": SAFETY, "Reasoning": REASONING}
    )


async def test_rewardbench_prior_sets(tmp_path: Path) -> None:
    benchmark = load_benchmark(
        "rewardbench", DATA / "rewardbench" / "filtered.jsonl", prior_data=DATA / "rewardbench" / "prior"
    )
    assert "pku_safer" not in {item.subset for item in benchmark.items}
    greedy = (await run(benchmark, tmp_path)).settings["greedy"]
    assert greedy.subsets["anthropic_helpful"].value == 0.5
    assert greedy.subsets["shp"].value == 1.0
    assert greedy.subsets["mtbench_human"].value == 0.0  # reported, not part of Prior Sets
    assert greedy.sections["Prior Sets"].value == pytest.approx(0.75)
    core = CHAT_HALF + 0.25 + SAFETY + REASONING
    assert greedy.overall.value == pytest.approx(core / 4)  # RB stays without prior sets, as in the paper
    assert greedy.extras["RB with Prior Sets"].value == pytest.approx((2 * core + 0.75) / 9)


# RewardBench 2 Ties, by hand (see tests/eval/data/rewardbench2/test.jsonl):
#   ref:1 accurate (9 > 4), cim 5; tied:1 accurate (6 > 5), dcm 2, cim 1
#   ref:2 not accurate, cim -2;    tied:2 accurate (6 > 3), dcm 0, cim 3
#   ref:3 no verdict -> every score -1 -> not accurate (no tied:3 partner)
# ref_accuracy 1/3, tied_accuracy 1; over prompts 1 and 2: correctness_preferred (1 > 2: no, 3 > 0: yes) = 1/2,
# correctness_preferred_hard (min(5, 1) > 2: no, min(-2, 3) > 0: no) = 0,
# margin = mean(tanh(1 / 2 - 1), tanh(-2 / 0 - 1) = tanh(-inf) = -1)
TIES = 0.30 * 1 + 0.30 * (1 / 3) + 0.20 * 0.5 + 0.20 * 0 + 0.01 * (math.tanh(-0.5) - 1) / 2
RB2_SUBSETS = {
    "Factuality": (1 + 0.5) / 2,  # right; a 2-way top tie earns 1/2
    "Precise IF": 0.0,
    "Math": (1 / 3 + 1 / 4) / 2,  # a 3-way top tie earns 1/3; no verdict among 4 earns 1/4
    "Safety": 1.0,
    "Focus": (0 + 1 / 3) / 2,  # wrong; no verdict among the 3 completions given earns 1/3
    "Ties": TIES,
}


async def test_rewardbench2_best_of_4_and_ties_formula(tmp_path: Path) -> None:
    report = await run(load_benchmark("rewardbench2", DATA / "rewardbench2" / "test.jsonl"), tmp_path, ks=[1, 4])
    for name in ("greedy", "voting@4"):  # summed votes scale every score by k: the ratios in Ties do not move
        setting = report.settings[name]
        assert values(setting.subsets) == pytest.approx(RB2_SUBSETS)
        assert setting.overall.value == pytest.approx(sum(RB2_SUBSETS.values()) / 6)
        assert setting.subset_sizes["Ties"] == 3  # prompt ids: bootstrap clusters keep ref and tied together


async def test_ppe_preference_excludes_tied_labels(tmp_path: Path) -> None:
    benchmark = load_benchmark("ppe-preference", DATA / "ppe-preference" / "test.jsonl")
    assert benchmark.source.excluded == {"tied human label": 2}
    assert len(benchmark.items) == 5
    report = await run(benchmark, tmp_path)
    assert report.settings["greedy"].overall.value == pytest.approx(2 / 5)  # the score tie and the failure count 0
    half = await run(benchmark, tmp_path / "half", tie_policy=TiePolicy.HALF)
    assert half.settings["greedy"].overall.value == pytest.approx(3 / 5)


PPE_C = {"MMLU-Pro": 1 / 3, "MATH": 1.0, "GPQA": 0.0, "MBPP-Plus": 0.5, "IFEval": 1.0}


async def test_ppe_correctness_scores_conflict_pairs_per_set(tmp_path: Path) -> None:
    benchmark = load_benchmark("ppe-correctness", DATA / "ppe-correctness")
    assert len(benchmark.items) == 3 + 1 + 1 + 2 + 1  # one item per sampled conflict pair
    greedy = (await run(benchmark, tmp_path)).settings["greedy"]
    assert values(greedy.subsets) == pytest.approx(PPE_C)
    assert list(greedy.subsets) == list(PPE_C)  # the paper's column order
    assert greedy.overall.value == pytest.approx(sum(PPE_C.values()) / 5)


RMB = {"BoN Helpfulness": 1 / 3, "Pairwise Helpfulness": 0.5, "BoN Harmlessness": 0.5, "Pairwise Harmlessness": 0.5}


@pytest.mark.parametrize(("protocol", "calls"), [("listwise", 4 + 5), ("pairwise", 4 + 3 + 2 + 2 + 1 + 2)])
async def test_rmb_pairwise_and_best_of_n(tmp_path: Path, protocol: str, calls: int) -> None:
    benchmark = load_benchmark("rmb", DATA / "rmb" / "RMB_dataset", rmb_bon=protocol)  # type: ignore[arg-type]
    assert len(benchmark.calls()) == calls
    report = await run(benchmark, tmp_path)
    assert values(report.settings["greedy"].subsets) == pytest.approx(RMB)
    assert report.settings["greedy"].overall.value == pytest.approx(sum(RMB.values()) / 4)
    assert report.protocol["rmb_bon"] == protocol
    # under "half", a 2-way tie at the top earns 1/2 listwise, and 1/2 x 1 as the product of the pairs
    half = await run(benchmark, tmp_path / "half", tie_policy=TiePolicy.HALF)
    assert half.settings["greedy"].subsets["BoN Helpfulness"].value == pytest.approx((1 + 0 + 0.5) / 3)


async def test_rm_bench_style_matrix(tmp_path: Path) -> None:
    greedy = (await run(load_benchmark("rm-bench", DATA / "rm-bench" / "total_dataset.json"), tmp_path)).settings[
        "greedy"
    ]
    # chat: chosen 4/6/8 vs rejected 3/5/7 -> hard 0, normal 1, easy 1; code: 6/6/6 vs 2/7/7 -> 0, 1/3, 2/3;
    # math: no verdict -> 0; safety merges refuse (all ties: 0) and respond (all 1) -> 1/2 each
    assert values(greedy.subsets) == pytest.approx(
        {
            "chat hard": 0.0, "chat normal": 1.0, "chat easy": 1.0,
            "code hard": 0.0, "code normal": 1 / 3, "code easy": 2 / 3,
            "math hard": 0.0, "math normal": 0.0, "math easy": 0.0,
            "safety hard": 0.5, "safety normal": 0.5, "safety easy": 0.5,
        }
    )  # fmt: skip
    assert values(greedy.sections) == pytest.approx(
        {
            "Chat": 2 / 3, "Code": 1 / 3, "Math": 0.0, "Safety": 0.5,
            "Hard": 0.5 / 4, "Normal": (1 + 1 / 3 + 0 + 0.5) / 4, "Easy": (1 + 2 / 3 + 0 + 0.5) / 4,
        }
    )  # fmt: skip
    assert greedy.overall.value == pytest.approx((2 / 3 + 1 / 3 + 0 + 0.5) / 4)
    assert greedy.subset_sizes == {"chat": 1, "code": 1, "math": 1, "safety": 2}


async def test_judgebench_two_games(tmp_path: Path) -> None:
    benchmark = load_benchmark("judgebench", DATA / "judgebench" / "gpt.jsonl")
    assert all(call.fixed_order for call in benchmark.calls()) and len(benchmark.calls()) == 10
    report = await run(benchmark, tmp_path)
    greedy = report.settings["greedy"]
    # j1 right twice; j2 wrong twice; j3 position bias: +1 - 1 = 0; j4 right once, no decision once: +1; j5 ties
    assert values(greedy.subsets) == {"Knowledge": 0.5, "Reasoning": 1.0, "Math": 0.0, "Coding": 0.0}
    assert greedy.overall.value == pytest.approx(2 / 5)  # correct pairs over all pairs
    shown = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    orders = {line["call_id"]: line["result"]["samples"][0]["permutation"] for line in shown}
    assert orders["jb:j1:AB"] == [0, 1] and orders["jb:j1:BA"] == [0, 1]  # shown as listed: A first, then B first


async def test_random_policy_agrees_with_the_judges_own_tie_break(tmp_path: Path) -> None:
    benchmark = load_benchmark("rewardbench", DATA / "rewardbench" / "filtered.jsonl")
    report = await run(benchmark, tmp_path, scripted_judge(seed=3), tie_policy=TiePolicy.RANDOM)
    lines = [json.loads(line) for line in (tmp_path / "items.jsonl").read_text().splitlines()]
    best = {line["call_id"]: line["result"]["best"] for line in lines}
    tied = best["rb:2"]  # the 5-vs-5 tie: the judge broke it with its seeded draw; evaluation must agree
    assert report.settings["greedy"].subsets["alpacaeval-easy"].value == (1 + (tied == 0)) / 2
    again = await run(benchmark, tmp_path / "again", scripted_judge(seed=3), tie_policy=TiePolicy.RANDOM)
    assert again.settings["greedy"].overall == report.settings["greedy"].overall


def test_credit_rules() -> None:
    never = lambda: pytest.fail("no draw expected")  # noqa: E731
    assert credit((8.0, 3.0), 0, 2, TiePolicy.WRONG, never) == 1.0
    assert credit((5.0, 5.0, 5.0, 1.0), 0, 4, TiePolicy.HALF, never) == pytest.approx(1 / 3)
    assert credit((5.0, 5.0), 0, 2, TiePolicy.WRONG, never) == 0.0
    assert credit(None, 0, 4, TiePolicy.HALF, never) == 0.25
    assert credit(None, 0, 2, TiePolicy.WRONG, never) == 0.0


def test_paper_overall_needs_all_four() -> None:
    # DeepSeek-GRM-27B greedy (METHOD.md §14): (86.0 + 64.7 + 59.8 + 69.0) / 4 = 69.875, reported as 69.9
    scores = {"rewardbench": 0.860, "ppe-preference": 0.647, "ppe-correctness": 0.598, "rmb": 0.690}
    assert paper_overall(scores) == pytest.approx(0.69875)
    assert paper_overall({k: v for k, v in scores.items() if k != "rmb"}) is None


def test_rewardbench_sections_match_calculate_scores_per_section() -> None:
    # a partial run keeps only the sections present; their weights are EXAMPLE_COUNTS, not row counts
    card = scorecard("rewardbench", {"math-prm": (0.5,), "hep-cpp": (1.0,)}, {"math-prm": 447, "hep-cpp": 164})
    assert card.sections == {"Reasoning": pytest.approx((0.5 * 984 + 1.0 * 164) / (984 + 164))}


async def test_scalar_judges_are_greedy_only(tmp_path: Path) -> None:
    from grmjudge.exceptions import ConfigurationError

    benchmark = load_benchmark("judgebench", DATA / "judgebench" / "gpt.jsonl")
    with pytest.raises(ConfigurationError, match="scalar reward model is deterministic"):
        await run(benchmark, tmp_path, ScalarJudge(MarkedScoreClassifier()), ks=[1, 8])
    report = await run(benchmark, tmp_path, ScalarJudge(MarkedScoreClassifier()))
    # both games see the same scores: j1 right, j2 wrong, j3 and j5 ties (no decision), j4 right
    assert report.settings["greedy"].overall.value == pytest.approx(2 / 5)
    assert report.passes["greedy"].calls == 10 and report.passes["greedy"].samples == 0
