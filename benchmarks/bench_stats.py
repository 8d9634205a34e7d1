"""Pure helpers of `make bench`: /proc parsing, CPU accounting, rates, percentiles.

Nothing here touches a process, a socket or a clock: callers read /proc and time, these
functions turn what was read into numbers.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# -- /proc/<pid>/stat and /proc/<pid>/status -----------------------------------------------


def stat_fields(text: str) -> list[str]:
    """Fields of a /proc/<pid>/stat line after the command name (which may hold spaces and
    parentheses): [0] is the state, [1] the parent pid, [11:15] utime, stime, cutime,
    cstime in clock ticks."""
    return text.rsplit(")", 1)[1].split()


def parent_pid(fields: Sequence[str]) -> int:
    return int(fields[1])


def cpu_ticks(fields: Sequence[str]) -> int:
    """utime + stime of the process, and of its children it has waited for: a backend
    PostgreSQL reaped, a worker's finished training process."""
    return sum(int(v) for v in fields[11:15])


def vmrss_kib(status: str) -> int | None:
    """Resident set size from /proc/<pid>/status, in KiB."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


# -- CPU over a span, from samples ----------------------------------------------------------


@dataclass(frozen=True)
class Series:
    """A cumulative counter (CPU seconds) sampled at wall-clock times, in time order."""

    times: tuple[float, ...]
    values: tuple[float, ...]

    def at(self, t: float) -> float:
        """The counter at ``t``, interpolated linearly between the samples around it (held
        flat beyond the first and the last)."""
        if not self.times:
            raise ValueError("no samples")
        k = bisect_left(self.times, t)
        if k == 0:
            return self.values[0]
        if k >= len(self.times):
            return self.values[-1]
        t0, t1 = self.times[k - 1], self.times[k]
        v0, v1 = self.values[k - 1], self.values[k]
        return v0 if t1 == t0 else v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def between(self, t0: float, t1: float) -> float:
        return self.at(t1) - self.at(t0)

    def covers(self, t0: float, t1: float) -> bool:
        return bool(self.times) and self.times[0] <= t0 and t1 <= self.times[-1]


def idle_from(series: Series, start: float, window: float, cores: float) -> float | None:
    """The first sample time at or after ``start`` from which the counter grew by less
    than ``cores`` CPU seconds per second over the following ``window`` seconds; None if
    that never happened within the samples."""
    times = series.times
    for k in range(bisect_left(times, start), len(times)):
        end = times[k] + window
        if end > times[-1]:
            return None
        if series.between(times[k], end) < cores * window:
            return times[k]
    return None


# -- rates and summaries ---------------------------------------------------------------------


def per_second(events: int, seconds: float | None) -> float | None:
    if seconds is None or seconds <= 0:
        return None
    return events / seconds


def us_per_event(cpu_seconds: float | None, events: int) -> float | None:
    if cpu_seconds is None or events <= 0:
        return None
    return cpu_seconds * 1e6 / events


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def percentile(values: Sequence[float] | np.ndarray, q: float) -> float | None:
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        return None
    return float(np.percentile(array, q))


def slope_per_minute(times: Sequence[float], values: Sequence[float]) -> float | None:
    """Least-squares slope of ``values`` per minute of ``times`` (seconds)."""
    if len(times) < 3:
        return None
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    if float(np.ptp(t)) == 0:
        return None
    return float(np.polyfit(t, v, 1)[0] * 60.0)


@dataclass(frozen=True)
class Latencies:
    """Seconds from each outcome's send to its labeled example. An outcome never matured
    counts with the time it had waited when the benchmark gave up (``censored``), so a
    percentile over them is a lower bound, and exact when none is censored."""

    seconds: tuple[float, ...] = ()
    censored: int = 0

    def percentile(self, q: float) -> float | None:
        return percentile(self.seconds, q)

    def __len__(self) -> int:
        return len(self.seconds)


def latencies(
    sent_at: np.ndarray,
    matured: Sequence[tuple[int, float]],
    read_at: float,
    until: float = math.inf,
) -> Latencies:
    """Latency of every outcome sent (``sent_at[i]``, NaN if not sent) up to ``until``, from
    the times their examples matured (``(i, time)``), as of ``read_at``."""
    done = dict(matured)
    found: list[float] = []
    censored = 0
    for i, sent in enumerate(sent_at.tolist()):
        if math.isnan(sent) or sent > until:
            continue
        at = done.get(i)
        if at is None:
            censored += 1
            at = read_at
        found.append(at - sent)
    return Latencies(tuple(found), censored)


def metric_total(text: str, name: str) -> float:
    """Sum of every sample of one metric in Prometheus text output (all label sets)."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith((f"{name}{{", f"{name} ")):
            total += float(line.split()[-1])
    return total


# -- formatting ------------------------------------------------------------------------------


def fmt_int(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.0f}"


def fmt_float(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}x"


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "met" if ok else "NOT met"
