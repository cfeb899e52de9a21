"""The TRL reward on a scripted GRM: listwise groups, shuffling, normalisation, reference mode, fallbacks, errors."""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any

import anyio
import pytest

from grmjudge import FunctionMetaScorer, Judge, JudgeSettings, MetaInput
from grmjudge.backends import FunctionBackend, OpenAIBackend
from grmjudge.exceptions import ConfigurationError, InvalidInputError
from grmjudge.integrations.trl import GRMReward
from grmjudge.prompts import SINGLE_RESPONSE_TEMPLATE
from grmjudge.types import GenerationRequest
from tests.servers import serve

from .scripted import ScriptedGRM, judgement, score_of, shown

pytestmark = pytest.mark.anyio

GROUPS = {"Name a prime.": ["two =2", "three =9", "four =4", "five =6"], "Name a colour.": ["red =5", "blue =3"]}


def trl_batch(layout: Sequence[str], num_generations: int = 4) -> tuple[list[str], list[str]]:
    """Prompts and completions flattened the way TRL passes them: each prompt repeated per completion."""
    prompts: list[str] = []
    completions: list[str] = []
    for prompt in layout:
        for text in GROUPS[prompt][:num_generations]:
            prompts.append(prompt)
            completions.append(text)
    return prompts, completions


async def test_one_listwise_call_per_group_sees_all_its_completions() -> None:
    grm = ScriptedGRM()
    reward = GRMReward(grm.judge(), k=4, num_generations=4)
    prompts, completions = trl_batch(["Name a prime.", "Name a colour."])
    rewards = await reward(prompts=prompts, completions=completions)
    assert rewards == [2.0, 9.0, 4.0, 6.0, 5.0, 3.0]
    # k=4 samples per group, never one call per completion; samples that share an order share a request:
    # 4 completions have 4 balanced orders (4 requests of n=1), 2 completions 2 orders (2 requests of n=2)
    samples = Counter[frozenset[str]]()
    for request in grm.requests:
        samples[frozenset(shown(request))] += request.n
    assert samples == {frozenset(GROUPS["Name a prime."]): 4, frozenset(GROUPS["Name a colour."]): 4}
    assert sorted(request.n for request in grm.requests) == [1, 1, 1, 1, 2, 2]
    assert reward.stats.judge_calls == 2 and reward.stats.samples == 8 and reward.stats.valid_samples == 8
    assert reward.stats.partial_groups == 1  # the colour prompt had 2 of num_generations=4


async def test_each_sample_sees_its_own_order() -> None:
    grm = ScriptedGRM()
    reward = GRMReward(grm.judge(), k=4, num_generations=4)
    await reward(*trl_batch(["Name a prime."]))
    orders = [tuple(shown(request)) for request in grm.requests]
    assert len(set(orders)) == 4
    for position in range(4):  # balanced: every completion sits in every position once
        assert {order[position] for order in orders} == set(GROUPS["Name a prime."])


async def test_groups_follow_runs_of_a_prompt_so_split_rows_stay_apart(caplog: pytest.LogCaptureFixture) -> None:
    # a process batch that TRL cut inside rows: the tail of a row of the prime prompt, a row of the colour prompt,
    # the head of another row of the prime prompt. The two prime pieces belong to different GRPO groups.
    grm = ScriptedGRM()
    reward = GRMReward(grm.judge(), k=1, num_generations=4, normalisation="rank")
    prompts = ["Name a prime."] * 2 + ["Name a colour."] * 4 + ["Name a prime."] * 2
    completions = ["two =2", "three =9", "red =5", "blue =3", "green =7", "grey =1", "four =4", "five =6"]
    with caplog.at_level(logging.WARNING, logger="grmjudge.integrations"):
        rewards = await reward(prompts, completions)
    assert rewards == pytest.approx([0.0, 1.0, 2 / 3, 1 / 3, 1.0, 0.0, 0.0, 1.0])  # ranked within each piece
    assert sorted(sorted(shown(request)) for request in grm.requests) == sorted(
        [["three =9", "two =2"], sorted(completions[2:6]), ["five =6", "four =4"]]
    )
    assert reward.stats.groups == 3 and reward.stats.partial_groups == 2 and reward.stats.singleton_groups == 0
    assert "2 group(s) had fewer than 4 completions" in caplog.text and "multiple of num_generations" in caplog.text


async def test_single_completion_groups_are_counted_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    # without num_generations there is no group size to fall short of, but a group of one is still no comparison
    grm = ScriptedGRM()
    reward = GRMReward(grm.judge(), k=1)
    with caplog.at_level(logging.WARNING, logger="grmjudge.integrations"):
        assert await reward(["Name a prime.", "Name a colour."], ["two =2", "red =5"]) == [2.0, 5.0]
        assert await reward(["Name a prime."] * 2, ["two =2", "three =9"]) == [2.0, 9.0]
        assert await reward(["Name a colour."], ["blue =3"]) == [3.0]
    assert reward.stats.singleton_groups == 3 and reward.stats.partial_groups == 0
    [warning] = [r.getMessage() for r in caplog.records if "single completion" in r.getMessage()]
    assert warning.startswith("grm_reward: 2 listwise group(s) held a single completion")
    assert "stats.singleton_groups" in warning
    reference = GRMReward(grm.judge(), k=1, mode="reference")  # a pair with the reference is a comparison
    await reference(["Name a prime."], ["two =2"], reference=["seven =5"])
    assert reference.stats.singleton_groups == 0


async def test_a_repeated_prompt_stays_two_groups_of_num_generations() -> None:
    grm = ScriptedGRM()
    prompts, completions = trl_batch(["Name a prime.", "Name a prime."])
    await GRMReward(grm.judge(), k=1, num_generations=4)(prompts, completions)
    assert [len(shown(request)) for request in grm.requests] == [4, 4]
    grm.requests.clear()
    await GRMReward(grm.judge(), k=1)(prompts, completions)  # without num_generations: one group per prompt
    assert [len(shown(request)) for request in grm.requests] == [8]


async def test_conversational_prompts_and_completions() -> None:
    grm = ScriptedGRM()
    prompt = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Name a prime."}]
    completions = [[{"role": "assistant", "content": text}] for text in GROUPS["Name a prime."]]
    rewards = await GRMReward(grm.judge(), k=1, num_generations=4)([prompt] * 4, completions)
    assert rewards == [2.0, 9.0, 4.0, 6.0]
    content = grm.requests[0].messages[-1].content
    assert "System: Be brief.\nUser: Name a prime." in content


@pytest.mark.parametrize(
    ("normalisation", "expected"),
    [
        ("mean", [2.0, 9.0, 4.0, 6.0]),
        ("raw", [4.0, 18.0, 8.0, 12.0]),
        ("unit", [1 / 9, 8 / 9, 3 / 9, 5 / 9]),
        ("zscore", [(mean - 5.25) / math.sqrt(6.6875) for mean in (2, 9, 4, 6)]),  # population std of the means
        ("rank", [0.0, 1.0, 1 / 3, 2 / 3]),
    ],
)
async def test_normalisations(normalisation: Any, expected: list[float]) -> None:
    reward = GRMReward(ScriptedGRM().judge(), k=2, num_generations=4, normalisation=normalisation)
    rewards = await reward(*trl_batch(["Name a prime."]))
    assert rewards == pytest.approx(expected)


async def test_reference_mode_judges_each_completion_against_its_reference() -> None:
    grm = ScriptedGRM()
    metrics: dict[str, float] = {}
    reward = GRMReward(grm.judge(), k=2, mode="reference", num_generations=4)
    prompts, completions = trl_batch(["Name a prime."])
    rewards = await reward(prompts, completions, reference=["seven =5"] * 4, log_metric=metrics.__setitem__)
    assert rewards == [2.0, 9.0, 4.0, 6.0]
    assert len(grm.requests) == 8  # 4 completions x k=2, each request a pair
    assert all(set(shown(request)) in ({text, "seven =5"} for text in completions) for request in grm.requests)
    assert metrics["grm_reward/win_rate"] == 0.5 and metrics["grm_reward/fallback_rate"] == 0.0


async def test_reference_mode_needs_its_column() -> None:
    reward = GRMReward(ScriptedGRM().judge(), mode="reference", reference_column="answer")
    with pytest.raises(InvalidInputError, match="column 'answer'; columns passed: reference"):
        await reward(["Name a prime."], ["two"], reference=["two"])
    with pytest.raises(InvalidInputError, match=r"answer\[0\] must be a string reference answer, got int"):
        await reward(["Name a prime."], ["two"], answer=[2])
    with pytest.raises(InvalidInputError, match="got 2 'answer' values for 1 completions"):
        await reward(["Name a prime."], ["two"], answer=["2", "3"])


async def test_no_verdict_gets_the_fallback_and_is_logged_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    grm = ScriptedGRM(fails=lambda responses: "red =5" in responses)
    metrics: dict[str, float] = {}
    reward = GRMReward(grm.judge(), k=2, num_generations=4, name="grm")
    prompts, completions = trl_batch(["Name a prime.", "Name a colour."])
    with caplog.at_level(logging.WARNING, logger="grmjudge.integrations"):
        rewards = await reward(prompts, completions, log_metric=metrics.__setitem__)
    assert rewards == [2.0, 9.0, 4.0, 6.0, None, None]
    [record] = [r for r in caplog.records if "no verdict" in r.getMessage()]
    assert "grm: the GRM gave no verdict for the completion(s) at batch position(s) 4, 5" in record.getMessage()
    assert "no_boxed: 2" in record.getMessage() and record.getMessage().endswith("reward None")
    stats = reward.stats
    assert (stats.no_verdict_calls, stats.fallback_rewards, stats.failures) == (1, 2, {"no_boxed": 2})
    assert stats.fallback_rate == pytest.approx(2 / 6) and stats.valid_sample_rate == 0.5
    assert metrics == {"grm/fallback_rate": pytest.approx(2 / 6), "grm/valid_sample_rate": 0.5}
    numbered = GRMReward(grm.judge(), k=2, num_generations=4, fallback=-1.0)
    assert (await numbered(prompts, completions))[4:] == [-1.0, -1.0]


async def test_a_judge_that_raises_on_no_verdict_gets_the_fallback_too(caplog: pytest.LogCaptureFixture) -> None:
    grm = ScriptedGRM(fails=lambda responses: True)
    reward = GRMReward(grm.judge(raise_on_no_verdict=True), k=2, fallback=0.0)
    with caplog.at_level(logging.WARNING, logger="grmjudge.integrations"):
        assert await reward(["Name a prime."] * 2, ["two", "three"]) == [0.0, 0.0]
    assert "no valid judgement among the samples (no_boxed: 2); reward 0.0" in caplog.text
    assert reward.stats.failures == {"no_boxed": 2} and reward.stats.samples == 2


async def test_meta_keeps_the_samples_the_meta_scorer_prefers() -> None:
    calls: list[int] = []

    def grm(request: GenerationRequest) -> list[str]:
        # even seeds rate every response 9, odd seeds 1: k=4 samples split between the two
        return [judgement([9 if (request.seed or 0) % 2 == 0 else 1] * len(shown(request)))] * request.n

    def prefer_low(inputs: Sequence[MetaInput]) -> list[float]:
        calls.append(len(inputs))
        return [1.0 if "boxed{1" in i.judgement else 0.0 for i in inputs]

    judge = Judge(
        FunctionBackend(grm, supports_n=False),
        meta=FunctionMetaScorer(prefer_low),
        settings=JudgeSettings(max_resample_rounds=0),
    )
    prompts, completions = trl_batch(["Name a prime."])
    plain = await GRMReward(judge, k=4)(prompts, completions)
    with_meta = await GRMReward(judge, k=4, meta=True)(prompts, completions)
    assert calls == [4]  # only the meta call asked the meta scorer, with all 4 valid judgements
    assert min(plain) > 1.0 and with_meta == [1.0, 1.0, 1.0, 1.0]


async def test_groups_are_judged_concurrently_within_the_bound() -> None:
    in_flight = peak = 0

    async def slow_grm(request: GenerationRequest) -> list[str]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.02)
        in_flight -= 1
        return [judgement([score_of(text) for text in shown(request)])] * request.n

    judge = Judge(FunctionBackend(slow_grm), settings=JudgeSettings(max_resample_rounds=0))
    prompts = [f"Question {i}?" for i in range(6) for _ in range(2)]
    rewards = await GRMReward(judge, k=1, num_generations=2, max_concurrent_calls=3)(prompts, ["a =1", "b =2"] * 6)
    assert rewards == [1.0, 2.0] * 6
    assert peak == 3


@pytest.mark.parametrize(
    ("prompts", "completions", "message"),
    [
        (["Q?", "Q?"], ["a"], "got 2 prompts for 1 completions"),
        ("Q?", ["a"], "prompts must be a list with one entry per completion, got str"),
        ([{"role": "user", "content": "Q?"}], ["a"], r"prompts\[0\] must be a string or a list of messages, got dict"),
        (
            [[{"role": "assistant", "content": "Hi"}]],
            ["a"],
            r"prompts\[0\]: the last turn of the query must be the user",
        ),
        ([[{"role": "user"}]], ["a"], r"prompts\[0\]: query messages must have a role and a string content"),
        (["Q?"], [7], r"completions\[0\]: a completion must be a string or a list of messages, got int"),
    ],
)
async def test_bad_batches_are_typed_errors(prompts: Any, completions: Any, message: str) -> None:
    grm = ScriptedGRM()
    with pytest.raises(InvalidInputError, match=message):
        await GRMReward(grm.judge())(prompts, completions)
    assert grm.requests == []


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"k": 0}, "k must be a positive integer, got 0"),
        ({"k": True}, "k must be a positive integer, got True"),
        ({"num_generations": 0}, "group_size must be a positive integer or None, got 0"),
        ({"max_concurrent_calls": 0}, "max_concurrent_calls must be a positive integer"),
        ({"mode": "pointwise"}, "mode must be one of ('listwise', 'reference'), got 'pointwise'"),
        ({"normalisation": "softmax"}, "normalisation must be one of"),
        ({"fallback": math.nan}, "fallback must be a finite number or None, got nan"),
        ({"meta": True}, "meta=True needs a judge with a meta scorer"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GRMReward(ScriptedGRM().judge(), **options)


def test_single_response_templates_and_non_judges_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="takes exactly one response"):
        GRMReward(ScriptedGRM().judge(template=SINGLE_RESPONSE_TEMPLATE))
    with pytest.raises(ConfigurationError, match="needs a grmjudge.Judge, got str"):
        GRMReward("openai:model")  # pyright: ignore[reportArgumentType]


def test_the_blocking_twin_keeps_the_name_and_refuses_a_running_loop() -> None:
    grm = ScriptedGRM()
    reward = GRMReward(grm.judge(), k=1, num_generations=4, name="grm_listwise")
    blocking = reward.as_sync()
    assert blocking.__name__ == reward.__name__ == "grm_listwise"
    metrics: dict[str, float] = {}
    rewards = blocking(*trl_batch(["Name a prime."]), trainer_state=None, log_metric=metrics.__setitem__)
    assert rewards == [2.0, 9.0, 4.0, 6.0] and metrics["grm_listwise/fallback_rate"] == 0.0

    async def inside_a_loop() -> list[float | None]:
        return blocking(*trl_batch(["Name a prime."]))

    assert anyio.run(inside_a_loop) == [2.0, 9.0, 4.0, 6.0]


async def test_an_empty_batch_asks_nothing() -> None:
    grm = ScriptedGRM()
    assert await GRMReward(grm.judge())([], []) == []
    assert grm.requests == []


def test_runs_on_a_background_loop_like_trls_and_from_blocking_code() -> None:
    """TRL awaits async rewards on an event loop of its own, in a daemon thread; the judge's HTTP session must
    live on whichever loop a batch runs on, so the same reward also works blocking in between."""
    prompts, completions = ["Name a prime."] * 2, ["two", "three and five"]
    expected = [1.0 + len(text) % 10 for text in completions]  # the fake server's default judgement
    with serve() as server:
        judge = Judge(OpenAIBackend(server.base_url, "fake-grm"), settings=JudgeSettings(max_resample_rounds=0))
        reward = GRMReward(judge, k=2, num_generations=2)
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        try:
            on_trls_loop = [asyncio.run_coroutine_threadsafe(reward(prompts, completions), loop).result(30)]
            blocking = reward.as_sync()(prompts, completions)
            on_trls_loop.append(asyncio.run_coroutine_threadsafe(reward(prompts, completions), loop).result(30))
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
        gc.collect()  # an HTTP session left open would warn here (warnings are errors)
    assert on_trls_loop == [expected, expected] and blocking == expected
    assert reward.stats.batches == 3 and reward.stats.valid_samples == 6


async def test_adaptive_k_pays_only_for_the_samples_a_settled_group_needs() -> None:
    grm = ScriptedGRM()  # unanimous: every sample gives each completion its written score
    fixed = GRMReward(grm.judge(), k=16, num_generations=4)
    adaptive = GRMReward(grm.judge(), k=16, num_generations=4, adaptive=True)
    prompts, completions = trl_batch(["Name a prime.", "Name a colour."])
    assert await adaptive(prompts=prompts, completions=completions) == [2.0, 9.0, 4.0, 6.0, 5.0, 3.0]
    assert await fixed(prompts=prompts, completions=completions) == [2.0, 9.0, 4.0, 6.0, 5.0, 3.0]
    # the first round is one block of orders: 4 samples for the group of 4, 4 (two blocks of 2) for the pair
    assert adaptive.stats.samples == 8 and fixed.stats.samples == 32
    with pytest.raises(ConfigurationError, match="raw"):
        GRMReward(grm.judge(), k=16, adaptive=True, normalisation="raw")
