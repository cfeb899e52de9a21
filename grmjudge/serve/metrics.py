"""The service's counters in the Prometheus text format (0.0.4), written by hand: a few counters, one histogram.

Labels hold route templates, status codes and error class or failure reason names only, never request content
or keys.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from grmjudge.integrations.rewarder import RewardStats
from grmjudge.results import ScoreResult

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
"""Latency buckets in seconds: from a cached answer to a long k=32 judgement."""

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.buckets[i] += 1
        self.total += value
        self.count += 1


@dataclass
class Metrics:
    """Counts kept by the app; `render` writes them with the gauges read at scrape time."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter[tuple[str, str]])
    latency: dict[tuple[str, str], _Histogram] = field(default_factory=dict[tuple[str, str], _Histogram])
    samples: int = 0
    no_verdicts: Counter[str] = field(default_factory=Counter[str])
    backend_errors: Counter[str] = field(default_factory=Counter[str])

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """One answered request."""
        key = (route, str(status))
        self.requests[key] += 1
        self.latency.setdefault(key, _Histogram()).observe(seconds)

    def observe_result(self, result: ScoreResult) -> None:
        """A judge call's samples, backend errors, and its no-verdict reason (the most common failure)."""
        self.samples += len(result.samples)
        for sample in result.samples:
            if sample.error is not None and sample.error.kind == "backend":
                self.backend_errors[sample.error.reason] += 1
        verdictless = result.no_verdict
        if verdictless is not None and verdictless.failures:
            self.no_verdicts[max(sorted(verdictless.failures), key=verdictless.failures.__getitem__)] += 1

    def render(self, *, queue_depth: int, groups_waiting: int, rewards: RewardStats) -> str:
        """The exposition text; reward calls add their samples, backend failures and no-verdict calls."""
        backend = Counter(self.backend_errors)
        backend.update({r: n for r, n in rewards.failures.items() if r[:1].isupper()})  # class names, not parse reasons
        no_verdicts = Counter(self.no_verdicts)
        if rewards.no_verdict_calls:
            no_verdicts["reward_call"] += rewards.no_verdict_calls
        lines: list[str] = []
        _family(lines, "grmjudge_requests_total", "counter", "Requests answered, by route and status.")
        lines += (
            _sample("grmjudge_requests_total", _labels(route=r, status=s), n) for (r, s), n in self.requests.items()
        )
        _family(lines, "grmjudge_request_duration_seconds", "histogram", "Request latency, by route and status.")
        for (route, status), hist in self.latency.items():
            lines += _histogram("grmjudge_request_duration_seconds", _labels(route=route, status=status), hist)
        _family(lines, "grmjudge_samples_total", "counter", "GRM samples drawn.")
        lines.append(_sample("grmjudge_samples_total", (), self.samples + rewards.samples))
        _family(lines, "grmjudge_no_verdicts_total", "counter", "Judge calls without a verdict, by main failure.")
        lines += (_sample("grmjudge_no_verdicts_total", _labels(reason=r), n) for r, n in sorted(no_verdicts.items()))
        _family(lines, "grmjudge_backend_errors_total", "counter", "Samples failed at the backend, by error type.")
        lines += (_sample("grmjudge_backend_errors_total", _labels(type=t), n) for t, n in sorted(backend.items()))
        _family(lines, "grmjudge_reward_fallbacks_total", "counter", "Completions given the no-verdict fallback.")
        lines.append(_sample("grmjudge_reward_fallbacks_total", (), rewards.fallback_rewards))
        _family(lines, "grmjudge_queue_depth", "gauge", "Judging requests admitted and not yet answered.")
        lines.append(_sample("grmjudge_queue_depth", (), queue_depth))
        _family(lines, "grmjudge_groups_waiting", "gauge", "Reward groups collecting their completions.")
        lines.append(_sample("grmjudge_groups_waiting", (), groups_waiting))
        return "\n".join(lines) + "\n"


def _labels(**values: str) -> Labels:
    return tuple(values.items())


def _family(lines: list[str], name: str, kind: str, text: str) -> None:
    lines += (f"# HELP {name} {text}", f"# TYPE {name} {kind}")


def _sample(name: str, labels: Iterable[tuple[str, str]], value: float) -> str:
    shown = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
    return f"{name}{{{shown}}} {_number(value)}" if shown else f"{name} {_number(value)}"


def _histogram(name: str, labels: Labels, hist: _Histogram) -> list[str]:
    rows = [
        _sample(f"{name}_bucket", (*labels, ("le", _number(b))), n) for b, n in zip(BUCKETS, hist.buckets, strict=True)
    ]
    rows.append(_sample(f"{name}_bucket", (*labels, ("le", "+Inf")), hist.count))
    rows += (_sample(f"{name}_sum", labels, hist.total), _sample(f"{name}_count", labels, hist.count))
    return rows


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))
