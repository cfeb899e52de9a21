"""Several replicas of one server: send each request to the least busy healthy one.

A replica that fails to answer (connection error, timeout, 5xx) is taken out of rotation for a while; the
retry of its request then goes to another replica. When every replica is out, the one due back first is used.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from grmjudge.backends.limits import Clock
from grmjudge.exceptions import ConfigurationError


@dataclass
class Replica:
    """One base URL and what the pool knows of it."""

    url: str
    outstanding: int = 0
    out_until: float = 0.0
    failures: int = 0
    picked: int = 0


class ReplicaPool:
    """Least-outstanding-requests balancing over base URLs, with a cool-down for failing replicas."""

    def __init__(self, urls: Sequence[str], *, cool_down: float = 10.0, clock: Clock = time.monotonic) -> None:
        if not urls:
            raise ConfigurationError("at least one base URL is needed")
        self.replicas = [Replica(url.rstrip("/")) for url in urls]
        self.cool_down = cool_down
        self._clock = clock

    def pick(self) -> Replica:
        """The healthy replica with the fewest requests in flight; on a tie, the one picked least so far."""
        if len(self.replicas) == 1:
            return self.replicas[0]
        now = self._clock()
        healthy = [r for r in self.replicas if r.out_until <= now]
        chosen = min(healthy, key=lambda r: (r.outstanding, r.picked)) if healthy else self._due_back_first()
        chosen.picked += 1
        return chosen

    def _due_back_first(self) -> Replica:
        return min(self.replicas, key=lambda r: r.out_until)

    def failed(self, replica: Replica) -> None:
        """Take ``replica`` out of rotation for ``cool_down`` seconds."""
        replica.failures += 1
        replica.out_until = self._clock() + self.cool_down
