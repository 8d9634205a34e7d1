"""One place that turns (labels, predictions) into a named metric, with scikit-learn."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from sklearn import metrics as skm

Array = NDArray[np.float64]
THRESHOLD = 0.5


def _clip(p: Array) -> Array:
    return np.clip(p, 1e-15, 1 - 1e-15)


def _binary(y: Array) -> NDArray[np.int_]:
    return (y >= THRESHOLD).astype(int)


_METRICS: dict[str, Callable[[Array, Array], float]] = {
    "mae": lambda y, p: float(skm.mean_absolute_error(y, p)),
    "rmse": lambda y, p: float(np.sqrt(skm.mean_squared_error(y, p))),
    "accuracy": lambda y, p: float(skm.accuracy_score(_binary(y), _binary(p))),
    "precision": lambda y, p: float(skm.precision_score(_binary(y), _binary(p), zero_division=0)),
    "recall": lambda y, p: float(skm.recall_score(_binary(y), _binary(p), zero_division=0)),
    "f1": lambda y, p: float(skm.f1_score(_binary(y), _binary(p), zero_division=0)),
    "log_loss": lambda y, p: float(skm.log_loss(_binary(y), _clip(p), labels=[0, 1])),
    "roc_auc": lambda y, p: (
        float(skm.roc_auc_score(_binary(y), p)) if len(set(_binary(y))) == 2 else float("nan")
    ),
}
LOWER_IS_BETTER = frozenset({"mae", "rmse", "log_loss"})


def score(metric: str, labels: Array, predictions: Array) -> float:
    try:
        fn = _METRICS[metric]
    except KeyError:
        raise ValueError(
            f"unknown metric {metric!r}; valid: {', '.join(sorted(_METRICS))}"
        ) from None
    return fn(np.asarray(labels, dtype=float), np.asarray(predictions, dtype=float))


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def improvement(metric: str, candidate: float, champion: float) -> float:
    """Relative improvement of the candidate over the champion; positive is better."""
    gain = (champion - candidate) if not higher_is_better(metric) else (candidate - champion)
    if champion == 0:  # no scale to be relative to: report the sign alone
        return float(np.sign(gain))
    return gain / abs(champion)
