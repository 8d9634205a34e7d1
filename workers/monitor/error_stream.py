"""A change detector on the error stream, so a rise in error is flagged without waiting
for a window to fill. River's ADWIN or Page-Hinkley do the statistics. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from river import drift

Detector = Literal["adwin", "page_hinkley", "none"]


@dataclass(frozen=True)
class ErrorShift:
    method: str
    mean_before: float
    mean_after: float
    n_seen: int


class ErrorStreamMonitor:
    """Feeds |prediction - label| to a detector; reports only rises in error.

    ADWIN also fires when error falls (after a fix); those are not alerts but end the
    episode an alert opened. Until then further rises are part of the same episode: one
    shift, one alert. An episode also ends when the error stays within ``recovery`` times
    its level before the alert for ``warmup`` examples in a row (Page-Hinkley, watching
    only rises, never reports a fall).

    The detectors' bounds assume values in [0, 1], where a regression's errors (0.004 vs
    0.03 on a click rate) would look alike: errors are divided by a scale learned from
    the first ``warmup`` examples (four times their mean) and clipped to 1.
    """

    def __init__(
        self, method: Detector, *, recovery: float = 1.25, warmup: int = 100, scaled: bool = True
    ) -> None:
        self.method = method
        self.recovery = recovery
        self._baseline: float | None = None  # set while an episode is open
        self._calm = 0
        self.warmup = warmup
        self._scale: float | None = None if scaled else 1.0
        self._warm: list[float] = []
        self._detector: Any = self._make()
        self._mean = 0.0
        self._n = 0

    def _make(self) -> Any:
        if self.method == "adwin":
            return drift.ADWIN(delta=0.002)
        if self.method == "page_hinkley":
            # On scaled errors (about 0.2 on average before a shift) this fires within
            # tens of examples of a fivefold rise and not on a stationary stream.
            return drift.PageHinkley(mode="up", threshold=10.0, delta=0.05, min_instances=30)
        return None

    def update(self, error: float) -> ErrorShift | None:
        if self._detector is None:
            return None
        if self._scale is None:
            self._warm.append(abs(error))
            if len(self._warm) < self.warmup:
                return None
            mean = sum(self._warm) / len(self._warm)
            self._scale = 4 * mean if mean > 0 else 1.0
            for e in self._warm:
                self._detector.update(min(e / self._scale, 1.0))
            self._n = len(self._warm)
            self._mean = float(getattr(self._detector, "estimation", 0.25))
            return None
        self._n += 1
        before = self._mean
        self._detector.update(min(abs(error) / self._scale, 1.0))
        # ADWIN's mean of its current window; for Page-Hinkley a slow running mean.
        estimate = getattr(self._detector, "estimation", None)
        scaled = min(abs(error) / self._scale, 1.0)
        self._mean = float(estimate) if estimate is not None else before + (scaled - before) / 50
        after = self._mean
        if self._baseline is not None:
            self._calm = self._calm + 1 if after <= self._baseline * self.recovery else 0
            fell = self._detector.drift_detected and after < before
            if fell or self._calm >= self.warmup:
                self._baseline = None  # recovered: the episode is over
            return None
        if not self._detector.drift_detected or after <= before:
            return None
        self._baseline = before
        self._calm = 0
        return ErrorShift(self.method, before * self._scale, after * self._scale, self._n)
