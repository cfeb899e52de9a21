"""The progress of a long run (``grmjudge score``, ``grmjudge eval``, the training samplers), drawn on a stream.

On a terminal a tqdm bar is redrawn in place, the run's counters beside it; on a pipe or a file plain lines
are written every few seconds, so a log holds whole lines and no control characters. tqdm is imported only
when a bar is drawn, so ``import grmjudge`` stays light. Each command says what its line shows; the sample
counters every judging command shows (samples, failures by name, tokens) are kept by
[`SampleTally`][grmjudge.progress.SampleTally].
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import anyio

from grmjudge.results import ScoreResult

if TYPE_CHECKING:
    from tqdm import tqdm

TTY_REDRAW_SECONDS = 0.2
"""How often a terminal's bar is redrawn."""

Position = Callable[[], tuple[int, int | None]]
"""Units done and the total (None while unknown): what fills the bar."""


def failure_name(kind: str, reason: str) -> str:
    """``parse:no_boxed`` for parse failures, the exception class name for backend failures."""
    return f"parse:{reason}" if kind == "parse" else reason


@dataclass
class SampleTally:
    """Samples drawn, valid and cached, failures by [`failure_name`][grmjudge.progress.failure_name], and usage."""

    samples: int = 0
    samples_valid: int = 0
    samples_cached: int = 0
    failures: Counter[str] = field(default_factory=Counter[str])
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, result: ScoreResult) -> None:
        """Count a judged item's samples, failures and usage."""
        self.samples += len(result.samples)
        for sample in result.samples:
            self.samples_valid += sample.valid
            self.samples_cached += sample.cached
            if sample.error is not None:
                self.failures[failure_name(sample.error.kind, sample.error.reason)] += 1
        self.requests += result.usage.requests
        self.prompt_tokens += result.usage.prompt_tokens or 0
        self.completion_tokens += result.usage.completion_tokens or 0


class ProgressReporter:
    """Draws ``describe()`` on ``stream``: a bar redrawn in place on a terminal, one line every ``every`` s otherwise.

    ``position`` fills the bar; ``stamp`` starts each plain line with the time elapsed (``[1m05s] ...``);
    ``redact`` sees every line before it is written. With ``patient``, the first ``tick`` draws only once an
    interval has passed, so a run shorter than that writes nothing. With ``stream=None`` nothing is drawn.
    """

    def __init__(
        self,
        stream: TextIO | None,
        describe: Callable[[], str],
        *,
        position: Position | None = None,
        every: float = 5.0,
        tty: bool | None = None,
        stamp: bool = False,
        patient: bool = False,
        redact: Callable[[str], str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._describe = describe
        self._position = position
        self._tty = is_terminal(stream) if tty is None else tty
        self.interval = TTY_REDRAW_SECONDS if self._tty else every
        self._stamp = stamp
        self._redact = redact
        self._clock = clock
        self.started = clock()
        self._patient = patient
        self._last = self.started if patient else float("-inf")
        self.drawn = False
        """Whether anything was drawn yet."""
        self._bar: tqdm[Any] | None = None

    def elapsed(self) -> float:
        """Seconds since the reporter started (or restarted)."""
        return self._clock() - self.started

    def restart(self, describe: Callable[[], str] | None = None, position: Position | None = None) -> None:
        """Begin a new stage: the clock restarts, a bar still open is closed, and the lines show ``describe``."""
        self.close()
        self._describe = describe or self._describe
        self._position = position or self._position
        self.started = self._clock()
        self._last = self.started if self._patient else float("-inf")

    def tick(self) -> None:
        """Draw if the last drawing is older than the interval."""
        if self._clock() - self._last >= self.interval:
            self.draw()

    async def run(self) -> None:
        """Redraw every interval until cancelled."""
        while True:
            await anyio.sleep(self.interval)
            self.draw()

    def draw(self) -> None:
        """Draw once, now."""
        self._last = self._clock()
        if self._stream is None:
            return
        line = self._describe()
        if self._redact is not None:
            line = self._redact(line)
        self.drawn = True
        if self._tty:
            self._draw_bar(line)
        else:
            self._stream.write(f"[{duration(self.elapsed())}] {line}\n" if self._stamp else f"{line}\n")
            self._stream.flush()

    def close(self) -> None:
        """Leave the cursor on a fresh line after a bar (nothing to do for plain lines)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _draw_bar(self, line: str) -> None:
        done, total = self._position() if self._position is not None else (0, None)
        if self._bar is None:
            self._bar = _open_bar(self._stream, line, done, total)  # opening draws it
            return
        self._bar.total, self._bar.n = total, done
        self._bar.set_description_str(line, refresh=False)
        self._bar.refresh()


def _open_bar(stream: TextIO | None, line: str, done: int, total: int | None) -> tqdm[Any]:
    from tqdm import tqdm  # only a terminal draws a bar

    class _Bar(tqdm):  # pyright: ignore[reportMissingTypeArgument]
        monitor_interval = 0  # the reporter redraws on its own clock: no monitor thread

    return _Bar(
        desc=line,
        total=total,
        initial=done,
        file=stream,
        bar_format="{bar:16}| {desc}",
        dynamic_ncols=True,
        mininterval=0,
        miniters=0,
        leave=True,
    )


def is_terminal(stream: TextIO | None) -> bool:
    """Whether ``stream`` is a terminal (a bar can be redrawn in place)."""
    if stream is None:
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def rate(done: int, seconds: float) -> float:
    """Units per second (no division by zero at the start)."""
    return done / max(seconds, 1e-9)


def duration(seconds: float) -> str:
    """``4.2s``, ``42s``, ``3m05s`` or ``2h03m``."""
    whole = int(seconds)
    if whole < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def counts(counter: Counter[str]) -> str:
    """``name n, name n`` from the most common down."""
    return ", ".join(f"{name} {count:,}" for name, count in counter.most_common())


def si(value: int) -> str:
    """``950``, ``1.2k``, ``3.4M``, ``5.6G``."""
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= threshold:
            return f"{value / threshold:.1f}{suffix}"
    return str(value)
