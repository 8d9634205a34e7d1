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
    mean_before: float  # the version's reference error
    mean_after: float  # the detector's estimate when it fired
    n_seen: int


class ErrorStreamMonitor:
    """Feeds |prediction - label| to a detector; reports material rises in error.

    Calibrated on a reference of the version's own errors (its first ``reference_size``
    matured examples): their mean is the level every later judgement is made against.

    - A rise opens an episode only when the detector has fired *and* its estimate is at
      least ``min_rise`` times the reference: a detector's small false alarm on a
      stationary stream opens nothing, so it cannot hold an episode open.
    - An episode closes once the estimate has stayed within ``recovery`` times the
      reference for ``calm`` examples in a row; the detector then starts afresh, so the
      next rise is caught like the first.

    The detectors' bounds assume values in [0, 1]: errors are divided by four times the
    reference mean and clipped to 1, so a click rate's 0.004 and a price's 2.1 look alike.
    """

    def __init__(
        self,
        method: Detector,
        *,
        reference_size: int = 500,
        min_rise: float = 1.2,
        recovery: float = 1.1,
        calm: int = 100,
    ) -> None:
        self.method = method
        self.reference_size = reference_size
        self.min_rise = min_rise
        self.recovery = recovery
        self.calm = calm
        self.reference: float | None = None  # mean absolute error of the reference
        self._scale = 1.0
        self._warm: list[float] = []
        self._detector: Any = None
        self._estimate = 0.0
        self._open = False
        self._armed = False
        self._calm_run = 0
        self._n = 0

    @property
    def in_episode(self) -> bool:
        return self._open

    def _make(self) -> Any:
        if self.method == "adwin":
            return drift.ADWIN(delta=0.002)
        if self.method == "page_hinkley":
            # On scaled errors (about 0.25 on average at the reference) this fires within
            # tens of examples of a fivefold rise and not on a stationary stream.
            return drift.PageHinkley(mode="up", threshold=10.0, delta=0.05, min_instances=30)
        return None

    def _restart(self) -> None:
        self._detector = self._make()
        self._estimate = self.reference / self._scale if self.reference else 0.0

    def update(self, error: float) -> ErrorShift | None:
        if self.method == "none":
            return None
        self._n += 1
        value = abs(error)
        if self.reference is None:
            self._warm.append(value)
            if len(self._warm) >= self.reference_size:
                self.reference = sum(self._warm) / len(self._warm)
                self._scale = 4 * self.reference if self.reference > 0 else 1.0
                self._warm = []
                self._restart()
            return None
        scaled = min(value / self._scale, 1.0)
        self._detector.update(scaled)
        # ADWIN's mean of its current window; for Page-Hinkley a slow running mean.
        estimate = getattr(self._detector, "estimation", None)
        if estimate is not None and self.method == "adwin":
            self._estimate = float(estimate)
        else:
            self._estimate += (scaled - self._estimate) / 50
        level = self._estimate * self._scale
        if self._open:
            self._calm_run = self._calm_run + 1 if level <= self.reference * self.recovery else 0
            if self._calm_run >= self.calm:
                self._open = False  # back at the reference: the episode is over
                self._restart()
            return None
        # A detector's cut can come before its estimate has climbed: it stays armed until
        # the level is material (or forever, harmlessly, after a false alarm).
        self._armed = self._armed or bool(self._detector.drift_detected)
        if not self._armed or level < self.reference * self.min_rise:
            return None
        self._open = True
        self._armed = False
        self._calm_run = 0
        return ErrorShift(self.method, self.reference, level, self._n)
