"""Quality windows as sufficient statistics. Pure.

Every metric here is a sum over examples (MAE, RMSE, bias, the confusion counts, log
loss) or, for ROC AUC, read off per-class score histograms. So a time window is the sum
of its buckets (River's ``TimeRolling`` keeps every example of its period, which on a busy
stream and a 7-day window does not fit in memory): memory is ``buckets`` x a few numbers,
whatever the traffic, and its edge moves a bucket at a time (period / buckets). A count
window adds the newest example and takes off the oldest: one pass per example for every
metric (River's ``Rolling`` reverts each metric on its own, several times the CPU on the
monitor's hot loop).
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

    def remove(self, prediction: float, label: float, binary: bool) -> None:
        """Undo ``add`` of the same pair."""
        self.add(prediction, label, binary, -1)

    def add(self, prediction: float, label: float, binary: bool, sign: int = 1) -> None:
        self.n += sign
        e = prediction - label
        self.abs_err += sign * abs(e)
        self.sq_err += sign * e * e
        self.err += sign * e
        if not binary:
            return
        positive, said = label >= THRESHOLD, prediction >= THRESHOLD
        self.tp += sign * (positive and said)
        self.fp += sign * ((not positive) and said)
        self.tn += sign * ((not positive) and (not said))
        self.fn += sign * (positive and (not said))
        p = min(max(prediction, 1e-15), 1 - 1e-15)
        self.log_loss -= sign * math.log(p if positive else 1 - p)
        b = min(int(p * AUC_BINS), AUC_BINS - 1)
        (self.pos_hist if positive else self.neg_hist)[b] += sign

    @classmethod
    def of(cls, predictions: np.ndarray, labels: np.ndarray, binary: bool) -> Sums:
        """The sums of many pairs at once: what ``add`` of each gives, but in numpy."""
        e = predictions - labels
        s = cls(len(e), float(np.abs(e).sum()), float((e * e).sum()), float(e.sum()))
        if not binary:
            return s
        positive, said = labels >= THRESHOLD, predictions >= THRESHOLD
        s.tp = int((positive & said).sum())
        s.fp = int((~positive & said).sum())
        s.tn = int((~positive & ~said).sum())
        s.fn = int((positive & ~said).sum())
        p = np.clip(predictions, 1e-15, 1 - 1e-15)
        s.log_loss = float(-np.log(np.where(positive, p, 1 - p)).sum())
        bins = np.minimum((p * AUC_BINS).astype(np.int64), AUC_BINS - 1)
        s.pos_hist = np.bincount(bins[positive], minlength=AUC_BINS).astype(np.int64)
        s.neg_hist = np.bincount(bins[~positive], minlength=AUC_BINS).astype(np.int64)
        return s

    def merge(self, other: Sums, sign: int = 1) -> None:
        """Add ``other``'s pairs (``sign`` -1: take them off)."""
        for name in ("n", "abs_err", "sq_err", "err", "tp", "fp", "tn", "fn", "log_loss"):
            setattr(self, name, getattr(self, name) + sign * getattr(other, name))
        self.pos_hist = self.pos_hist + sign * other.pos_hist
        self.neg_hist = self.neg_hist + sign * other.neg_hist

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


class CountWindow:
    """The last `size` examples."""

    def __init__(self, size: int, binary: bool) -> None:
        self.size = size
        self.binary = binary
        self.sums = Sums()
        self._pairs: deque[tuple[float, float]] = deque()
        self._removed = 0

    def update(self, prediction: float, label: float) -> None:
        self.sums.add(prediction, label, self.binary)
        self._pairs.append((prediction, label))
        if len(self._pairs) > self.size:
            self.sums.remove(*self._pairs.popleft(), self.binary)
            self._removed += 1
            if self._removed >= self.size:
                self._afresh()

    def update_many(self, predictions: np.ndarray, labels: np.ndarray) -> None:
        """``update`` with each pair in turn, at once: the new pairs' sums in, those of the
        pairs they push out taken off (O(pairs), whatever the window's size)."""
        if len(predictions) >= self.size:  # the window is these pairs' last `size` alone
            p, y = predictions[-self.size :], labels[-self.size :]
            self._pairs = deque(zip(p.tolist(), y.tolist(), strict=True))
            self.sums, self._removed = Sums.of(p, y, self.binary), 0
            return
        self._pairs.extend(zip(predictions.tolist(), labels.tolist(), strict=True))
        self.sums.merge(Sums.of(predictions, labels, self.binary))
        out = len(self._pairs) - self.size
        if out <= 0:
            return
        gone = np.array([self._pairs.popleft() for _ in range(out)], dtype=np.float64)
        self.sums.merge(Sums.of(gone[:, 0], gone[:, 1], self.binary), sign=-1)
        self._removed += out
        if self._removed >= self.size:
            self._afresh()

    def _afresh(self) -> None:
        """The sums made again from the pairs held: no rounding builds up from taking
        pairs off."""
        pairs = np.array(self._pairs, dtype=np.float64).reshape(-1, 2)
        self.sums, self._removed = Sums.of(pairs[:, 0], pairs[:, 1], self.binary), 0

    def snapshot(self) -> tuple[dict[str, float], int] | None:
        if self.sums.n == 0:
            return None
        return self.sums.metrics(self.binary), self.sums.n


class TimeBucketWindow:
    """The examples that matured within `period` of the newest one, in `buckets` slices."""

    def __init__(self, period: dt.timedelta, binary: bool, buckets: int = 120) -> None:
        self.period = period.total_seconds()
        self.binary = binary
        self.width = self.period / buckets
        # (bucket start in epoch seconds, its sums): floats, since datetime arithmetic
        # per example was a tenth of the monitor's CPU.
        self._buckets: deque[tuple[float, Sums]] = deque()

    def update(self, prediction: float, label: float, at: dt.datetime) -> None:
        t = at.timestamp()
        start = t - t % self.width
        if self._buckets and self._buckets[-1][0] == start:
            self._buckets[-1][1].add(prediction, label, self.binary)
        else:
            sums = Sums()
            sums.add(prediction, label, self.binary)
            self._place(start, sums)
        self._evict()

    def update_many(self, predictions: np.ndarray, labels: np.ndarray, at: np.ndarray) -> None:
        """``update`` with each example in turn (``at``: epoch seconds), a bucket's run of
        examples at a time."""
        starts = at - at % self.width
        cuts = (np.flatnonzero(np.diff(starts)) + 1).tolist()
        for lo, hi in zip([0, *cuts], [*cuts, len(starts)], strict=True):
            sums = Sums.of(predictions[lo:hi], labels[lo:hi], self.binary)
            self._place(float(starts[lo]), sums)
            self._evict()

    def _place(self, start: float, sums: Sums) -> None:
        """Add ``sums`` to the bucket starting at ``start``: the newest, a new one, or
        (late: rare, examples arrive in order) an older one, made if missing."""
        if self._buckets and self._buckets[-1][0] == start:
            self._buckets[-1][1].merge(sums)
        elif not self._buckets or start > self._buckets[-1][0]:
            self._buckets.append((start, sums))
        else:
            self._add_late(sums, start)

    def _evict(self) -> None:
        newest = self._buckets[-1][0] + self.width
        while self._buckets and self._buckets[0][0] + self.width <= newest - self.period:
            self._buckets.popleft()

    def _add_late(self, late: Sums, start: float) -> None:
        if start <= self._buckets[-1][0] - self.period:
            return  # already out of the window (the rule update evicts by)
        for i, (bucket_start, sums) in enumerate(self._buckets):
            if bucket_start >= start:
                if bucket_start > start:
                    sums = Sums()
                    self._buckets.insert(i, (start, sums))
                sums.merge(late)
                return

    def snapshot(self) -> tuple[dict[str, float], int] | None:
        total = Sums()
        for _, sums in self._buckets:
            total.merge(sums)
        if total.n == 0:
            return None
        return total.metrics(self.binary), total.n
