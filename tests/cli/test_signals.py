"""While a run writes its finished items, a further Ctrl-C or kill is noted, never raised mid-write."""

from __future__ import annotations

import signal

import anyio

from grmjudge.cli.signals import StopSignals


def test_the_first_signal_cancels_the_work_and_later_ones_do_not_interrupt_the_cleanup() -> None:
    cleanup: list[str] = []

    async def work(signals: StopSignals) -> bool:
        with anyio.CancelScope() as stopping:
            signals.arm(stopping.cancel)
            try:
                signal.raise_signal(signal.SIGTERM)
                await anyio.sleep_forever()
            finally:  # the flush: more signals arrive while it writes
                for line, signum in (("one", signal.SIGINT), ("two", signal.SIGTERM), ("three", signal.SIGINT)):
                    signal.raise_signal(signum)
                    cleanup.append(line)
                signals.disarm()
        return stopping.cancelled_caught

    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with StopSignals() as signals:
        stopped = anyio.run(work, signals)
        signal.raise_signal(signal.SIGINT)  # after the loop: still only noted

    assert stopped and signals.received == signal.SIGTERM
    assert cleanup == ["one", "two", "three"]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_signal_before_the_work_starts_stops_it_at_once() -> None:
    async def work(signals: StopSignals) -> bool:
        with anyio.CancelScope() as stopping:
            signals.arm(stopping.cancel)
            await anyio.sleep_forever()
        return stopping.cancelled_caught

    with StopSignals() as signals:
        signal.raise_signal(signal.SIGINT)
        assert anyio.run(work, signals)
