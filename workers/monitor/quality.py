"""Rolling quality of one model version. Pure: no I/O.

Count windows (`last_500`) use River's metrics in ``utils.Rolling``. Time windows (`1h`,
`7d`) are bucketed sums (see ``time_buckets``), keyed on when the example matured, so a
7-day window on a busy stream takes the same small memory as a 1-hour one.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from river import metrics, stats, utils

from workers.monitor.time_buckets import TimeBucketWindow
from workers.settings import count_window_name, time_window_name

Task = Literal["regression", "binary"]
DECISION_THRESHOLD = 0.5

# metric name -> (River class, what it is fed). "bias" is the mean signed error.
_REGRESSION: dict[str, tuple[Callable[[], Any], str]] = {
    "mae": (metrics.MAE, "value"),
    "rmse": (metrics.RMSE, "value"),
    "bias": (stats.Mean, "error"),
}
_BINARY: dict[str, tuple[Callable[[], Any], str]] = {
    "accuracy": (metrics.Accuracy, "class"),
    "precision": (metrics.Precision, "class"),
    "recall": (metrics.Recall, "class"),
    "f1": (metrics.F1, "class"),
    "log_loss": (metrics.LogLoss, "proba"),
    "roc_auc": (metrics.ROCAUC, "proba"),
}


def metric_names(task: Task) -> list[str]:
    return list(_REGRESSION if task == "regression" else _BINARY)


@dataclass(frozen=True, slots=True)
class Example:
    """A matured example as the monitor sees it."""

    seq: int
    prediction_id: str
    model: str
    version: str
    prediction: float
    label: float
    matured_at: dt.datetime
    features: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Window:
    name: str
    metrics: dict[str, Any]
    n: Any  # a rolling count, so every window reports how many examples it holds


class QualityTracker:
    """Every configured window times every metric of the task, for one key."""

    def __init__(
        self, task: Task, count_windows: Iterable[int], time_windows_seconds: Iterable[float]
    ) -> None:
        self.task = task
        spec = _REGRESSION if task == "regression" else _BINARY
        self._feeds = {name: feed for name, (_, feed) in spec.items()}
        self.windows: list[_Window] = []
        for size in count_windows:
            self.windows.append(
                _Window(
                    count_window_name(size),
                    {n: utils.Rolling(cls, window_size=size) for n, (cls, _) in spec.items()},
                    utils.Rolling(stats.Sum, window_size=size),
                )
            )
        self.timed = {
            time_window_name(seconds): TimeBucketWindow(
                dt.timedelta(seconds=seconds), binary=task == "binary"
            )
            for seconds in time_windows_seconds
        }
        self.total = 0

    def _args(self, feed: str, prediction: float, label: float) -> tuple[Any, ...]:
        if feed == "value":
            return (label, prediction)
        if feed == "error":
            return (prediction - label,)
        positive = label >= DECISION_THRESHOLD
        if feed == "class":
            return (positive, prediction >= DECISION_THRESHOLD)
        return (positive, min(max(prediction, 1e-15), 1 - 1e-15))

    def update(self, prediction: float, label: float, at: dt.datetime) -> None:
        self.total += 1
        for w in self.windows:
            w.n.update(1)
            for name, metric in w.metrics.items():
                metric.update(*self._args(self._feeds[name], prediction, label))
        for window in self.timed.values():
            window.update(prediction, label, at)

    def snapshot(self) -> dict[str, tuple[dict[str, float], int]]:
        """window -> ({metric: value}, n)."""
        out: dict[str, tuple[dict[str, float], int]] = {}
        for w in self.windows:
            n = int(w.n.get())
            if n == 0:
                continue
            out[w.name] = ({name: float(m.get()) for name, m in w.metrics.items()}, n)
        for name, window in self.timed.items():
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
