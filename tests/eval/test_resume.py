"""Resumable runs: per-call results are written as they arrive, and a rerun skips finished calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grmjudge import Judge
from grmjudge.backends import FunctionBackend
from grmjudge.eval import load_benchmark
from grmjudge.exceptions import ConfigurationError, ServerError
from grmjudge.types import GenerationRequest
from tests.eval.conftest import DATA, run, scripted_judge
from tests.eval.judges import scripted

pytestmark = pytest.mark.anyio

RB = DATA / "rewardbench" / "filtered.jsonl"


class Counting:
    """The scripted judge, counting the requests it answers; ``down`` makes it fail like a server outage."""

    def __init__(self, *, down: bool = False) -> None:
        self.requests = 0
        self.down = down

    def __call__(self, request: GenerationRequest) -> list[str]:
        self.requests += 1
        if self.down:
            raise ServerError("503 from the judge server", status_code=503)
        return scripted(request)


def lines(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "items.jsonl").read_text().splitlines()]


async def test_a_rerun_makes_no_request_and_gives_the_same_scores(tmp_path: Path) -> None:
    benchmark = load_benchmark("rewardbench", RB)
    first_backend = Counting()
    first = await run(benchmark, tmp_path, Judge(FunctionBackend(first_backend)), ks=[1, 4])
    # greedy; k=4 in two balanced orders per pair; the unparseable item is re-asked once at temperature 0.5
    assert first_backend.requests == 11 + 2 * 11 + 2
    again_backend = Counting()
    again = await run(benchmark, tmp_path, Judge(FunctionBackend(again_backend)), ks=[1, 4])
    assert again_backend.requests == 0
    assert again.passes["greedy"].resumed_calls == 11
    assert {k: v.overall for k, v in again.settings.items()} == {k: v.overall for k, v in first.settings.items()}
    assert len(lines(tmp_path)) == 22


async def test_an_interrupted_run_picks_up_where_it_stopped(tmp_path: Path) -> None:
    await run(load_benchmark("rewardbench", RB, limit=4), tmp_path, scripted_judge())
    backend = Counting()
    report = await run(load_benchmark("rewardbench", RB), tmp_path, Judge(FunctionBackend(backend)))
    assert backend.requests == 7
    assert report.passes["greedy"].resumed_calls == 4
    assert [line["call_id"] for line in lines(tmp_path)] == [f"rb:{i}" for i in range(1, 12)]


async def test_calls_lost_to_an_outage_are_judged_again(tmp_path: Path) -> None:
    benchmark = load_benchmark("rewardbench", RB, limit=3)
    outage = await run(benchmark, tmp_path, Judge(FunctionBackend(Counting(down=True))))
    assert outage.passes["greedy"].sample_failures == {"ServerError": 3}
    assert outage.settings["greedy"].no_verdict_calls == 3
    backend = Counting()
    report = await run(benchmark, tmp_path, Judge(FunctionBackend(backend)))
    assert backend.requests == 3
    assert report.settings["greedy"].no_verdict_calls == 0
    assert report.settings["greedy"].subsets["alpacaeval-easy"].value == 0.75


async def test_a_line_cut_off_by_a_kill_is_dropped_and_redone(tmp_path: Path) -> None:
    benchmark = load_benchmark("rewardbench", RB, limit=3)
    await run(benchmark, tmp_path, scripted_judge())
    journal = tmp_path / "items.jsonl"
    text = journal.read_text()
    journal.write_text(text[: len(text) - 40])  # the last line loses its end and its newline
    backend = Counting()
    await run(benchmark, tmp_path, Judge(FunctionBackend(backend)))
    assert backend.requests == 1
    assert [line["call_id"] for line in lines(tmp_path)] == ["rb:1", "rb:2", "rb:3"]


async def test_another_configuration_refuses_to_mix_results(tmp_path: Path) -> None:
    benchmark = load_benchmark("rewardbench", RB, limit=2)
    await run(benchmark, tmp_path, scripted_judge(), ks=[1, 4])
    with pytest.raises(ConfigurationError, match="line 1 holds results of another configuration"):
        await run(benchmark, tmp_path, scripted_judge(seed=1))
    with pytest.raises(ConfigurationError, match="line 3 holds results of another configuration"):
        await run(benchmark, tmp_path, scripted_judge(), ks=[1, 8])
    # greedy alone reuses the greedy pass and leaves the sampled pass's lines for a later --k 1,4
    backend = Counting()
    await run(benchmark, tmp_path, Judge(FunctionBackend(backend)), ks=[1])
    await run(benchmark, tmp_path, Judge(FunctionBackend(backend)), ks=[1, 4])
    assert backend.requests == 0


async def test_texts_can_be_left_out(tmp_path: Path) -> None:
    await run(load_benchmark("rewardbench", RB, limit=1), tmp_path, scripted_judge(), texts=False)
    sample = lines(tmp_path)[0]["result"]["samples"][0]  # type: ignore[index]
    assert "text" not in sample and "critique" not in sample and sample["scores"] == [9, 3]
