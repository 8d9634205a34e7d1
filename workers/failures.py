"""Timers that keep failing (PostgreSQL down, the broker away) log as an operator wants
to read them: each kind of failure once with its traceback, then one line a minute with
the count, and one line when the work goes through again; not a traceback every tick."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FailureLog:
    """The failures of one timer's work, ``what`` (e.g. "horizon sweep")."""

    what: str
    logger: logging.Logger
    every: float = 60.0  # seconds between "still failing" lines
    level: int = logging.ERROR  # of a failure's first line, with its traceback
    clock: Callable[[], float] = time.monotonic
    failures: int = 0  # in a row
    _since: float = 0.0
    _said: float = 0.0
    _last: float = 0.0
    _kinds: set[type[BaseException]] = field(default_factory=set)

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        if self.failures and now - self._last > self.every:
            self.failures = 0  # it did not run for a while (another leader): a new outage
        self._last = now
        self.failures += 1
        if self.failures == 1:
            self._since = self._said = now
            self._kinds = set()
        if type(exc) not in self._kinds:  # a new kind of failure shows its traceback
            self._kinds.add(type(exc))
            self._said = now
            self.logger.log(
                self.level, "%s failed; retrying at the next tick", self.what, exc_info=exc
            )
        elif now - self._said >= self.every:
            self._said = now
            self.logger.warning(
                "%s still failing: %d times in %.0f s; the last: %s",
                self.what,
                self.failures,
                now - self._since,
                f"{type(exc).__name__}: {exc}"[:300],
            )

    def ok(self) -> None:
        if self.failures:
            self.logger.info(
                "%s works again after %d failure(s) in %.0f s",
                self.what,
                self.failures,
                self.clock() - self._since,
            )
            self.failures = 0
