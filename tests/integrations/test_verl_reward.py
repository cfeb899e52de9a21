"""The verl shim called as verl calls it: plain functions, one completion or a batch per call."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest

from grmjudge import Judge, JudgeSettings
from grmjudge.backends import FunctionBackend
from grmjudge.exceptions import ConfigurationError, InvalidInputError
from grmjudge.integrations.verl import VerlGRMReward
from grmjudge.types import GenerationRequest

from .scripted import ScriptedGRM, judgement, score_of, shown

pytestmark = pytest.mark.anyio

PRIME = ["two =2", "three =9", "four =4", "five =6"]
COLOUR = ["red =5", "blue =3", "green =7", "grey =1"]


def extra_info(question: Any, index: Any) -> dict[str, Any]:
    """An ``extra_info`` as verl passes it: the dataset row's, plus the keys verl's reward managers add."""
    return {"question": question, "index": index, "split": "train", "rollout_reward_scores": {}, "num_turns": 2}


def batch(*groups: tuple[int, str, list[str]]) -> dict[str, list[Any]]:
    """verl's batched keywords for groups of (dataset row index, question, completions)."""
    rows = [(index, question, text) for index, question, texts in groups for text in texts]
    return {
        "data_sources": ["grm"] * len(rows),
        "solution_strs": [text for _, _, text in rows],
        "ground_truths": ["seven =5"] * len(rows),
        "extra_infos": [extra_info(question, index) for index, question, _ in rows],
    }


def balanced(arguments: dict[str, list[Any]], order: list[int]) -> dict[str, list[Any]]:
    """The batch reordered, as verl's batch balancing reorders it before scoring."""
    return {name: [values[i] for i in order] for name, values in arguments.items()}


async def test_the_batched_function_judges_each_group_listwise() -> None:
    grm = ScriptedGRM()
    reward = VerlGRMReward(grm.judge(), k=2)
    rewards = await reward.compute_score_batch(
        **batch((0, "Name a prime.", PRIME), (1, "Name a colour.", COLOUR)), reward_router_address=None
    )
    assert rewards == [2.0, 9.0, 4.0, 6.0, 5.0, 3.0, 7.0, 1.0]
    assert sorted(len(shown(request)) for request in grm.requests) == [4, 4, 4, 4]
    assert reward.stats.judge_calls == 2


def test_a_balanced_batch_is_grouped_by_row_wherever_its_completions_sit() -> None:
    grm = ScriptedGRM()
    order = [4, 0, 7, 1, 5, 2, 6, 3]
    arguments = balanced(batch((0, "Name a prime.", PRIME), (1, "Name a colour.", COLOUR)), order)
    rewards = VerlGRMReward(grm.judge(), k=1, group_size=4).compute_score_batch_sync(**arguments)
    assert rewards == [[2.0, 9.0, 4.0, 6.0, 5.0, 3.0, 7.0, 1.0][i] for i in order]
    assert sorted(sorted(shown(request)) for request in grm.requests) == sorted([sorted(PRIME), sorted(COLOUR)])


async def test_groups_follow_the_row_index_then_the_question() -> None:
    grm = ScriptedGRM()
    # the same question in two dataset rows is two groups, as verl's advantages (one uid per row) have it
    await VerlGRMReward(grm.judge(), k=1).compute_score_batch(**batch((0, "Q?", PRIME[:2]), (1, "Q?", PRIME[2:])))
    assert sorted(sorted(shown(request)) for request in grm.requests) == sorted([sorted(PRIME[:2]), sorted(PRIME[2:])])
    grm.requests.clear()
    await VerlGRMReward(grm.judge(), k=1, row_key=None).compute_score_batch(
        **batch((0, "Q?", PRIME[:2]), (1, "Q?", PRIME[2:]))
    )
    assert [sorted(shown(request)) for request in grm.requests] == [sorted(PRIME)]
    grm.requests.clear()
    without_index = batch((0, "Q?", PRIME[:2]), (1, "Q?", PRIME[2:]))
    for info in without_index["extra_infos"]:
        del info["index"]
    await VerlGRMReward(grm.judge(), k=1).compute_score_batch(**without_index)
    assert [sorted(shown(request)) for request in grm.requests] == [sorted(PRIME)]


async def test_numpy_object_arrays_and_chat_prompts_as_verl_hands_them_over() -> None:
    numpy = pytest.importorskip("numpy")
    grm = ScriptedGRM()
    chat = numpy.array([{"role": "user", "content": "Name a prime."}], dtype=object)
    kwargs = batch((0, "unused", PRIME))
    infos = numpy.array([extra_info(chat, numpy.int64(3)) for _ in PRIME], dtype=object)
    rewards = await VerlGRMReward(grm.judge(), k=1).compute_score_batch(
        numpy.array(kwargs["data_sources"], dtype=object), kwargs["solution_strs"], kwargs["ground_truths"], infos
    )
    assert rewards == [2.0, 9.0, 4.0, 6.0]
    assert "User: Name a prime." in grm.requests[0].messages[-1].content


async def test_single_completion_calls_are_collected_into_groups() -> None:
    grm = ScriptedGRM()
    reward = VerlGRMReward(grm.judge(), k=2, group_size=4, max_wait=30)
    results: dict[str, float] = {}

    async def score(question: str, index: int, text: str) -> None:
        info = extra_info(question, index)
        results[text] = await reward.compute_score("grm", text, "unused", info, reward_router_address=None)

    # a reward-loop worker scores each completion in an asyncio task of its own, all on its one event loop
    async with anyio.create_task_group() as tg:
        for prime, colour in zip(PRIME, COLOUR, strict=True):
            tg.start_soon(score, "Name a prime.", 0, prime)
            tg.start_soon(score, "Name a colour.", 1, colour)
    assert [results[text] for text in PRIME + COLOUR] == [2.0, 9.0, 4.0, 6.0, 5.0, 3.0, 7.0, 1.0]
    assert sorted(sorted(shown(request)) for request in grm.requests) == sorted(
        [sorted(PRIME)] * 2 + [sorted(COLOUR)] * 2
    )
    assert reward.stats.judge_calls == 2 and reward.stats.partial_groups == 0


async def test_a_group_that_does_not_fill_is_judged_after_max_wait(caplog: pytest.LogCaptureFixture) -> None:
    grm = ScriptedGRM()
    reward = VerlGRMReward(grm.judge(), k=1, group_size=4, max_wait=0.05)
    results: list[float] = []

    async def score(text: str) -> None:
        results.append(await reward.compute_score("grm", text, None, extra_info("Name a prime.", 0)))

    with caplog.at_level(logging.WARNING, logger="grmjudge.integrations"):
        async with anyio.create_task_group() as tg:
            for text in PRIME[:3]:
                tg.start_soon(score, text)
        late = await reward.compute_score_batch(**batch((0, "Name a prime.", PRIME[3:])))
    assert sorted(results) == [2.0, 4.0, 9.0] and late == [6.0]
    assert [len(shown(request)) for request in grm.requests] == [3, 1]  # the late one did not join a closed group
    assert reward.stats.partial_groups == 2
    assert "had fewer than 4 completions" in caplog.text


async def test_reward_loop_batch_calls_of_one_are_singletons_unless_collected(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # in verl's Reward Loop even the batch reward manager calls the function with lists of one completion
    async def reward_loop_worker(reward: VerlGRMReward) -> list[float]:
        rewards: dict[int, float] = {}

        async def score(slot: int) -> None:
            one = balanced(batch((0, "Name a prime.", PRIME)), [slot])
            [rewards[slot]] = await reward.compute_score_batch(**one)

        async with anyio.create_task_group() as tg:
            for slot in range(len(PRIME)):
                tg.start_soon(score, slot)
        return [rewards[slot] for slot in range(len(PRIME))]

    grm = ScriptedGRM()
    alone = VerlGRMReward(grm.judge(), k=1)
    with caplog.at_level(logging.WARNING, logger="grmjudge.integrations"):
        assert await reward_loop_worker(alone) == [2.0, 9.0, 4.0, 6.0]
    assert [len(shown(request)) for request in grm.requests] == [1, 1, 1, 1]
    assert alone.stats.singleton_groups == 4 and alone.stats.partial_groups == 0
    [warning] = [r.getMessage() for r in caplog.records if "single completion" in r.getMessage()]
    assert "set group_size to the rollout n, and reward.num_workers=1" in warning
    grm.requests.clear()
    collected = VerlGRMReward(grm.judge(), k=1, group_size=4, max_wait=30)
    assert await reward_loop_worker(collected) == [2.0, 9.0, 4.0, 6.0]
    assert [len(shown(request)) for request in grm.requests] == [4]
    assert collected.stats.singleton_groups == 0 and collected.stats.partial_groups == 0


def test_a_group_split_across_reward_workers_is_judged_in_parts(caplog: pytest.LogCaptureFixture) -> None:
    # with reward.num_workers > 1 verl sends a group's completions to several processes; each process imports the
    # reward file, so each has its own reward and event loop, and sees only its share of the group
    grm = ScriptedGRM()
    workers = [VerlGRMReward(grm.judge(), k=1, group_size=4, max_wait=0.05) for _ in range(2)]

    async def worker(reward: VerlGRMReward, texts: list[str]) -> None:
        async with anyio.create_task_group() as tg:
            for text in texts:
                tg.start_soon(reward.compute_score, "grm", text, None, extra_info("Name a prime.", 0))

    with caplog.at_level(logging.WARNING, logger="grmjudge.integrations"):
        for reward, texts in zip(workers, (PRIME[:2], PRIME[2:]), strict=True):
            anyio.run(worker, reward, texts)
    assert sorted(sorted(shown(request)) for request in grm.requests) == sorted([sorted(PRIME[:2]), sorted(PRIME[2:])])
    assert [reward.stats.partial_groups for reward in workers] == [1, 1]
    assert caplog.text.count("1 group(s) had fewer than 4 completions") == 2  # once per process
    assert "reward.num_workers=1 (verl 0.9+)" in caplog.text


async def test_batched_calls_fill_each_others_groups() -> None:
    grm = ScriptedGRM()
    reward = VerlGRMReward(grm.judge(), k=1, group_size=4, max_wait=30)
    halves: list[list[float]] = []

    async def score(texts: list[str]) -> None:
        halves.append(await reward.compute_score_batch(**batch((0, "Name a prime.", texts))))

    async with anyio.create_task_group() as tg:
        tg.start_soon(score, PRIME[:2])
        tg.start_soon(score, PRIME[2:])
    assert sorted(halves) == [[2.0, 9.0], [4.0, 6.0]]
    assert [sorted(shown(request)) for request in grm.requests] == [sorted(PRIME)]


async def test_reference_mode_uses_the_ground_truth() -> None:
    grm = ScriptedGRM()
    reward = VerlGRMReward(grm.judge(), k=2, mode="reference")
    info = {"question": "Name a prime."}
    assert await reward.compute_score("grm", "three =9", "seven =5", info) == 9.0
    assert await reward.compute_score("grm", "two =2", "seven =5", info) == 2.0
    assert all(sorted(shown(request)) in (["seven =5", "three =9"], ["seven =5", "two =2"]) for request in grm.requests)
    assert len(grm.requests) == 4 and reward.stats.reference_wins == 1
    with pytest.raises(InvalidInputError, match="ground_truth must be a string reference answer, got dict"):
        await reward.compute_score("grm", "two", {"answer": "2"}, info)
    assert reward.compute_score_sync("grm", "two =2", "seven =5", info) == 2.0  # blocking, inside this loop


def test_blocking_single_calls_in_reference_mode() -> None:
    grm = ScriptedGRM()
    reward = VerlGRMReward(grm.judge(), k=2, mode="reference")
    assert reward.compute_score_sync("grm", "two =2", "seven =5", {"question": "Name a prime."}) == 2.0
    assert len(grm.requests) == 2 and all(sorted(shown(r)) == ["seven =5", "two =2"] for r in grm.requests)


def test_blocking_batches_for_older_verl() -> None:
    grm = ScriptedGRM()
    reward = VerlGRMReward(grm.judge(), k=1, group_size=4)
    assert reward.compute_score_batch_sync(**batch((0, "Name a prime.", PRIME))) == [2.0, 9.0, 4.0, 6.0]
    assert len(grm.requests) == 1


async def test_no_verdict_gets_the_numeric_fallback_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    grm = ScriptedGRM(fails=lambda responses: "red =5" in responses)
    reward = VerlGRMReward(grm.judge(), k=2)
    with caplog.at_level(logging.WARNING, logger="grmjudge.integrations"):
        rewards = await reward.compute_score_batch(**batch((0, "P?", PRIME[:2]), (1, "C?", COLOUR[:2])))
    assert rewards == [2.0, 9.0, 0.0, 0.0]
    assert "no verdict for the completion(s) at batch position(s) 2, 3" in caplog.text and "reward 0.0" in caplog.text
    assert (reward.stats.no_verdict_calls, reward.stats.fallback_rewards) == (1, 2)


async def test_listwise_single_calls_need_a_group_size() -> None:
    reward = VerlGRMReward(ScriptedGRM().judge())
    with pytest.raises(ConfigurationError, match="set group_size to the rollout n"):
        await reward.compute_score("grm", "two", None, {"question": "Q?"})
    with pytest.raises(ConfigurationError, match="cannot judge a group listwise"):
        reward.compute_score_sync("grm", "two", None, {"question": "Q?"})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"extra_infos": [{"prompt": "Q?"}]}, r"extra_info\[0\] has no 'question'.*\(found: prompt\)"),
        ({"extra_infos": [None]}, r"extra_info\[0\] has no 'question'.*\(found: no extra_info\)"),
        ({"extra_infos": [{"question": 3}]}, r"extra_info\[0\]\['question'\] must be a string or a list of messages"),
        ({"solution_strs": [b"two"]}, r"solution_str\[0\] must be a string, got bytes"),
        ({"solution_strs": ["a", "b"]}, "got 2 solution_strs, 1 ground_truths and 1 extra_infos"),
        ({"ground_truths": "x"}, "ground_truths must be a list with one entry per completion, got str"),
    ],
)
async def test_bad_batches_are_typed_errors(kwargs: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "data_sources": ["grm"],
        "solution_strs": ["two"],
        "ground_truths": ["2"],
        "extra_infos": [{"question": "Q?"}],
    }
    with pytest.raises(InvalidInputError, match=message):
        await VerlGRMReward(ScriptedGRM().judge()).compute_score_batch(**{**arguments, **kwargs})


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="verl needs a number for every completion"):
        VerlGRMReward(ScriptedGRM().judge(), fallback=None)  # pyright: ignore[reportArgumentType]
    with pytest.raises(ConfigurationError, match="max_wait must be a number of seconds >= 0"):
        VerlGRMReward(ScriptedGRM().judge(), max_wait=-1)
    with pytest.raises(ConfigurationError, match="group_size must be a positive integer"):
        VerlGRMReward(ScriptedGRM().judge(), group_size=0)


async def test_collected_groups_share_one_bound_on_judge_calls() -> None:
    in_flight = peak = 0

    async def slow_grm(request: GenerationRequest) -> list[str]:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await anyio.sleep(0.02)
        in_flight -= 1
        return [judgement([score_of(text) for text in shown(request)])] * request.n

    judge = Judge(FunctionBackend(slow_grm), settings=JudgeSettings(max_resample_rounds=0))
    reward = VerlGRMReward(judge, k=1, group_size=2, max_concurrent_calls=2)
    results: dict[tuple[int, str], float] = {}

    async def score(question: int, text: str) -> None:
        info = extra_info(f"Question {question}?", question)
        results[question, text] = await reward.compute_score("grm", text, None, info)

    async with anyio.create_task_group() as tg:
        for question in range(6):
            for text in ("a =1", "b =2"):
                tg.start_soon(score, question, text)
    assert set(results.values()) == {1.0, 2.0} and len(results) == 12
    assert reward.stats.judge_calls == 6 and peak == 2
