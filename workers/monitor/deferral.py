"""While ingestion is behind, the monitor runs a bounded time behind it.

A backlog (after an outage, a burst) drains fastest with the cores to itself. So while
the ingest group's lag is over `monitoring.busy_lag_events`, the monitor feeds only the
examples that had matured `monitoring.busy_defer_seconds` ago: a backlog shorter than
that drains at the speed of ingestion alone and is monitored right after; under a longer
overload the monitor keeps pace, that much behind. Alerts are late by at most that.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field


@dataclass
class Deferral:
    """Marks of the newest matured sequence number over time (pure: the caller passes
    the time and the numbers)."""

    seconds: float
    behind: bool = False
    _marks: deque[tuple[float, int]] = field(default_factory=deque)

    @property
    def active(self) -> bool:
        return self.behind and self.seconds > 0

    def limit(self, now: float, newest: int, fed: int) -> int | None:
        """The highest sequence number to feed now, None for all. ``now`` in seconds,
        ``newest`` the newest matured sequence number, ``fed`` the last one fed."""
        if not self.active:
            self._marks.clear()
            return None
        self._marks.append((now, newest))
        cutoff = now - self.seconds
        # Keep the newest mark that is old enough, and everything after it.
        while len(self._marks) > 1 and self._marks[1][0] <= cutoff:
            self._marks.popleft()
        at, seq = self._marks[0]
        return max(seq, fed) if at <= cutoff else fed
