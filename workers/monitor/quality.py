"""Rolling quality of one model version. Pure: no I/O.

Count windows (`last_500`) and time windows (`1h`, `7d`) both keep sufficient statistics
(see ``time_buckets``): a count window takes off its oldest example as it adds the
newest; a time window is bucketed on when the example matured, so a 7-day window on a
busy stream takes the same small memory as a 1-hour one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from river import stats

from workers.monitor.time_buckets import CountWindow, TimeBucketWindow
from workers.settings import count_window_name, time_window_name

Task = Literal["regression", "binary"]
DECISION_THRESHOLD = 0.5

# Each window reports these (see time_buckets.Sums.metrics). "bias" is the mean signed error.
_REGRESSION = ("mae", "rmse", "bias")
_BINARY = ("accuracy", "precision", "recall", "f1", "log_loss", "roc_auc")


def metric_names(task: Task) -> list[str]:
    return list(_REGRESSION if task == "regression" else _BINARY)


@dataclass(slots=True)
class Example:
    """A matured example as the monitor sees it. Read only, though not frozen: a frozen
    dataclass's __init__ cost 1 of the monitor's 5.8 µs per example."""

    seq: int
    prediction_id: str
    model: str
    version: str
    prediction: float
    label: float
    matured_at: dt.datetime
    features: dict[str, Any] = field(default_factory=dict)
    # False when its features were not read (the challengers had no budget for it).
    learnable: bool = True


class QualityTracker:
    """Every configured window times every metric of the task, for one key."""

    def __init__(
        self, task: Task, count_windows: Iterable[int], time_windows_seconds: Iterable[float]
    ) -> None:
        self.task = task
        binary = task == "binary"
        self.counted = {count_window_name(n): CountWindow(n, binary) for n in count_windows}
        self.timed = {
            time_window_name(seconds): TimeBucketWindow(
                dt.timedelta(seconds=seconds), binary=binary
            )
            for seconds in time_windows_seconds
        }
        self.total = 0

    def update(self, prediction: float, label: float, at: dt.datetime) -> None:
        self.total += 1
        for counted in self.counted.values():
            counted.update(prediction, label)
        for timed in self.timed.values():
            timed.update(prediction, label, at)

    def update_many(self, predictions: np.ndarray, labels: np.ndarray, at: np.ndarray) -> None:
        """``update`` with each example in turn (``at``: epoch seconds), in numpy."""
        self.total += len(predictions)
        for counted in self.counted.values():
            counted.update_many(predictions, labels)
        for timed in self.timed.values():
            timed.update_many(predictions, labels, at)

    def snapshot(self) -> dict[str, tuple[dict[str, float], int]]:
        """window -> ({metric: value}, n)."""
        out: dict[str, tuple[dict[str, float], int]] = {}
        windows: dict[str, CountWindow | TimeBucketWindow] = {**self.counted, **self.timed}
        for name, window in windows.items():
            taken = window.snapshot()
            if taken is not None:
                out[name] = taken
        return out


def example_loss(metric: str, task: Task, prediction: float, label: float) -> float | None:
    """The per-example quantity whose mean is ``metric`` (squared error for RMSE, whose
    square is that mean); None for metrics that are not means of examples (F1, AUC...)."""
    if task == "regression":
        error = prediction - label
        return {"mae": abs(error), "rmse": error * error}.get(metric)
    positive = label >= DECISION_THRESHOLD
    if metric == "accuracy":
        return float(positive == (prediction >= DECISION_THRESHOLD))
    if metric == "log_loss":
        p = min(max(prediction, 1e-15), 1 - 1e-15)
        return -math.log(p if positive else 1 - p)
    return None


class ReferenceLosses:
    """Mean and variance of each per-example loss over a version's reference, so a
    relative bound can ask whether a window's excess is more than sampling noise."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.vars = {m: stats.Var() for m in metric_names(task) if m in _PER_EXAMPLE}

    def update(self, prediction: float, label: float) -> None:
        for metric, var in self.vars.items():
            value = example_loss(metric, self.task, prediction, label)
            if value is not None:
                var.update(value)

    def significant(
        self, metric: str, value: float, reference: float, n: int, n_ref: int, z: float, up: bool
    ) -> bool:
        """Is the window's ``value`` ``z`` standard errors past ``reference``? Under no
        change both samples share the reference's variance. True for metrics that are
        not means (no test possible: the factor alone decides)."""
        var = self.vars.get(metric)
        if var is None or n < 2 or n_ref < 2:
            return True
        if metric == "rmse":  # test the mean squared error
            value, reference = value * value, reference * reference
        se = math.sqrt(max(var.get(), 0.0) * (1 / n + 1 / n_ref))
        excess = value - reference if up else reference - value
        return se == 0 or excess / se >= z


_PER_EXAMPLE = frozenset({"mae", "rmse", "accuracy", "log_loss"})
