"""The shared progress reporter: a tqdm bar on a terminal, whole plain lines on a pipe, and the sample counters."""

from __future__ import annotations

import io
import subprocess
import sys

import anyio
import pytest

from grmjudge import Judge, JudgeSettings
from grmjudge.backends.function import FunctionBackend
from grmjudge.progress import ProgressReporter, SampleTally, duration, failure_name
from grmjudge.results import ScoreResult
from grmjudge.types import GenerationRequest
from tests.judges import judgement


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_pipe_each_drawing_is_one_whole_line_at_most_every_interval() -> None:
    now = [0.0]
    stream = io.StringIO()
    count = [0]
    reporter = ProgressReporter(stream, lambda: f"done {count[0]}", every=5.0, stamp=True, clock=lambda: now[0])

    reporter.tick()  # the first tick draws
    count[0], now[0] = 1, 2.0
    reporter.tick()  # too soon
    count[0], now[0] = 2, 65.0
    reporter.tick()
    reporter.close()

    assert stream.getvalue() == "[0.0s] done 0\n[1m05s] done 2\n"


def test_a_patient_reporter_waits_one_interval_before_its_first_line() -> None:
    now = [0.0]
    stream = io.StringIO()
    reporter = ProgressReporter(stream, lambda: f"at {now[0]:.0f}", every=5.0, patient=True, clock=lambda: now[0])
    reporter.tick()
    now[0] = 4.0
    reporter.tick()
    assert stream.getvalue() == "" and not reporter.drawn
    now[0] = 5.0
    reporter.tick()
    assert stream.getvalue() == "at 5\n" and reporter.drawn


def test_on_a_terminal_a_bar_is_redrawn_in_place_and_left_on_its_own_line() -> None:
    stream = Terminal()
    done = [30]
    reporter = ProgressReporter(
        stream, lambda: f"items {done[0]}/120 | failed parse:no_boxed 2", position=lambda: (done[0], 120)
    )
    assert reporter.interval == pytest.approx(0.2)  # a terminal redraws often, whatever ``every`` says

    reporter.draw()
    done[0] = 60
    reporter.draw()
    reporter.close()

    text = stream.getvalue()
    drawings = text.rstrip("\n").split("\r")[1:]
    assert text.startswith("\r") and text.endswith("\n") and "\n" not in text[:-1]
    assert "items 30/120" in drawings[0] and "items 60/120" in drawings[-1]
    assert "| items 60/120 | failed parse:no_boxed 2" in drawings[-1]
    assert drawings[-1].index("|") > drawings[0].index("|") - 1  # the bar comes first, the counters after it


def test_lines_are_redacted_and_a_missing_stream_draws_nothing() -> None:
    stream = io.StringIO()
    ProgressReporter(stream, lambda: "key sk-123 used", redact=lambda t: t.replace("sk-123", "[REDACTED]")).draw()
    assert stream.getvalue() == "key [REDACTED] used\n"
    silent = ProgressReporter(None, lambda: pytest.fail("nothing to describe"))
    silent.draw()
    silent.close()


def test_run_redraws_until_cancelled() -> None:
    stream = io.StringIO()
    reporter = ProgressReporter(stream, lambda: "tick", every=0.01)

    async def main() -> None:
        with anyio.move_on_after(0.2):
            await reporter.run()

    anyio.run(main)
    assert stream.getvalue().count("tick\n") >= 3


def test_the_tally_counts_samples_failures_by_name_and_usage() -> None:
    def half_without_scores(request: GenerationRequest) -> list[str]:
        return [judgement([3, 7]) if i % 2 == 0 else "I cannot decide." for i in range(request.n)]

    async def score() -> ScoreResult:
        settings = JudgeSettings(max_resample_rounds=0)  # a failed sample stays failed
        async with Judge(FunctionBackend(half_without_scores), settings=settings) as judge:
            return await judge.score("Which is better?", ["a", "b"], k=4)

    result = anyio.run(score)
    failed = [s for s in result.samples if s.error is not None]
    assert failed and len(failed) < len(result.samples)
    tally = SampleTally()
    tally.add(result)
    tally.add(result)
    assert (tally.samples, tally.samples_valid) == (8, 2 * (4 - len(failed)))
    assert tally.failures == {f"parse:{failed[0].error.reason}": 2 * len(failed)}  # type: ignore[union-attr]
    assert tally.requests == 2 * result.usage.requests > 0
    assert failure_name("parse", "no_boxed") == "parse:no_boxed" and failure_name("backend", "X") == "X"


def test_durations_read_like_a_clock() -> None:
    assert [duration(s) for s in (4.25, 42, 185, 7380)] == ["4.2s", "42s", "3m05s", "2h03m"]


def test_tqdm_loads_only_when_a_bar_is_drawn() -> None:
    script = (
        "import io, sys\n"
        "import grmjudge\n"
        "from grmjudge.progress import ProgressReporter\n"
        "ProgressReporter(io.StringIO(), lambda: 'x').draw()\n"
        "print('tqdm' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
