"""Log lines about bad client input, rate-limited per call (issue 11: one client wrote 1.6 MB
of log in 3 s, one line per junk frame).

Each call holds a :class:`LogLimit`. The first :data:`BURST` lines of an event name go out as
they come; after that one line per :data:`INTERVAL` seconds, carrying how many were
``suppressed`` since the last one, so the count is never lost and the log stays small.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["BURST", "INTERVAL", "LogLimit"]

BURST = 5
INTERVAL = 10.0


@dataclass
class _Count:
    sent: int = 0
    suppressed: int = 0
    last: float = float("-inf")


class LogLimit:
    """Decides, per event name, whether a line goes out now."""

    def __init__(
        self,
        burst: int = BURST,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.burst = burst
        self.interval = interval
        self._clock = clock
        self._counts: dict[str, _Count] = {}

    def allow(self, event: str) -> int | None:
        """None: suppress this line. Otherwise the number of lines suppressed before it."""
        count = self._counts.setdefault(event, _Count())
        now = self._clock()
        if count.sent < self.burst or now - count.last >= self.interval:
            count.sent += 1
            count.last = now
            suppressed, count.suppressed = count.suppressed, 0
            return suppressed
        count.suppressed += 1
        return None
