"""Time windows in bounded memory: per-bucket sufficient statistics. Pure.

River's ``TimeRolling`` keeps every example of its period, which on a busy stream and a
7-day window does not fit in memory. Every metric here is a sum over examples (MAE, RMSE,
bias, the confusion counts, log loss) or, for ROC AUC, read off per-class score
histograms, so a window is the sum of its buckets: memory is ``buckets`` x a few numbers,
whatever the traffic. The window's edge moves a bucket at a time (period / buckets).
"""

from __future__ import annotations

import datetime as dt
import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

THRESHOLD = 0.5
AUC_BINS = 200


@dataclass
class Sums:
    """Sufficient statistics of a set of (prediction, label) pairs."""

    n: int = 0
    abs_err: float = 0.0
    sq_err: float = 0.0
    err: float = 0.0
    tp: int = 0
    fp: int = 0
    tn: int = 0
    fn: int = 0
    log_loss: float = 0.0
    pos_hist: np.ndarray = field(default_factory=lambda: np.zeros(AUC_BINS, dtype=np.int64))
    neg_hist: np.ndarray = field(default_factory=lambda: np.zeros(AUC_BINS, dtype=np.int64))

    def add(self, prediction: float, label: float, binary: bool) -> None:
        self.n += 1
        e = prediction - label
        self.abs_err += abs(e)
        self.sq_err += e * e
        self.err += e
        if not binary:
            return
        positive, said = label >= THRESHOLD, prediction >= THRESHOLD
        self.tp += positive and said
        self.fp += (not positive) and said
        self.tn += (not positive) and (not said)
        self.fn += positive and (not said)
        p = min(max(prediction, 1e-15), 1 - 1e-15)
        self.log_loss += -math.log(p if positive else 1 - p)
        b = min(int(p * AUC_BINS), AUC_BINS - 1)
        (self.pos_hist if positive else self.neg_hist)[b] += 1

    def merge(self, other: Sums) -> None:
        for name in ("n", "abs_err", "sq_err", "err", "tp", "fp", "tn", "fn", "log_loss"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.pos_hist = self.pos_hist + other.pos_hist
        self.neg_hist = self.neg_hist + other.neg_hist

    def metrics(self, binary: bool) -> dict[str, float]:
        n = self.n
        if not binary:
            return {
                "mae": self.abs_err / n,
                "rmse": math.sqrt(self.sq_err / n),
                "bias": self.err / n,
            }
        precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else 0.0
        recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {
            "accuracy": (self.tp + self.tn) / n,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "log_loss": self.log_loss / n,
            "roc_auc": self._auc(),
        }

    def _auc(self) -> float:
        """Mann-Whitney on the histograms: ties within a bin count a half."""
        pos, neg = self.pos_hist.sum(), self.neg_hist.sum()
        if pos == 0 or neg == 0:
            return 0.0
        below = np.concatenate(([0], np.cumsum(self.neg_hist)[:-1]))
        wins = float((self.pos_hist * (below + 0.5 * self.neg_hist)).sum())
        return wins / float(pos * neg)


class TimeBucketWindow:
    """The examples that matured within `period` of the newest one, in `buckets` slices."""

    def __init__(self, period: dt.timedelta, binary: bool, buckets: int = 120) -> None:
        self.period = period
        self.binary = binary
        self.width = period / buckets
        self._buckets: deque[tuple[dt.datetime, Sums]] = deque()

    def update(self, prediction: float, label: float, at: dt.datetime) -> None:
        start = at - (at - dt.datetime(1970, 1, 1, tzinfo=at.tzinfo)) % self.width
        if self._buckets and self._buckets[-1][0] == start:
            self._buckets[-1][1].add(prediction, label, self.binary)
        elif not self._buckets or start > self._buckets[-1][0]:
            sums = Sums()
            sums.add(prediction, label, self.binary)
            self._buckets.append((start, sums))
        else:  # late within the window: find its bucket (rare; examples arrive in order)
            for bucket_start, sums in self._buckets:
                if bucket_start == start:
                    sums.add(prediction, label, self.binary)
                    break
        newest = self._buckets[-1][0] + self.width
        while self._buckets and self._buckets[0][0] + self.width <= newest - self.period:
            self._buckets.popleft()

    def snapshot(self) -> tuple[dict[str, float], int] | None:
        total = Sums()
        for _, sums in self._buckets:
            total.merge(sums)
        if total.n == 0:
            return None
        return total.metrics(self.binary), total.n
