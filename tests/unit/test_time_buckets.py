"""Bucketed time windows: the same numbers as a direct computation, in bounded memory."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from sklearn.metrics import f1_score, log_loss, precision_score, recall_score, roc_auc_score

from workers.monitor.time_buckets import TimeBucketWindow

T0 = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def test_regression_window_matches_numpy_over_the_period() -> None:
    rng = np.random.default_rng(0)
    window = TimeBucketWindow(dt.timedelta(hours=1), binary=False, buckets=60)
    p, y = rng.random(7200), rng.random(7200)
    for i in range(7200):  # two hours, one example a second
        window.update(float(p[i]), float(y[i]), T0 + dt.timedelta(seconds=i))
    snap = window.snapshot()
    assert snap is not None
    values, n = snap
    # The last hour, to the bucket (one minute): 3600 examples, give or take a bucket.
    assert 3540 <= n <= 3660
    err = (p - y)[-n:]
    assert values["mae"] == pytest.approx(np.abs(err).mean())
    assert values["rmse"] == pytest.approx(np.sqrt((err**2).mean()))
    assert values["bias"] == pytest.approx(err.mean())


def test_binary_window_matches_sklearn() -> None:
    rng = np.random.default_rng(1)
    proba = rng.random(5000)
    labels = (rng.random(5000) < proba).astype(float)
    window = TimeBucketWindow(dt.timedelta(days=7), binary=True)
    for i in range(5000):
        window.update(float(proba[i]), float(labels[i]), T0 + dt.timedelta(minutes=i))
    snap = window.snapshot()
    assert snap is not None
    values, n = snap
    assert n == 5000  # 5000 minutes < 7 days
    said = proba >= 0.5
    assert values["accuracy"] == pytest.approx(float((said == labels.astype(bool)).mean()))
    assert values["precision"] == pytest.approx(precision_score(labels, said))
    assert values["recall"] == pytest.approx(recall_score(labels, said))
    assert values["f1"] == pytest.approx(f1_score(labels, said))
    assert values["log_loss"] == pytest.approx(log_loss(labels, proba))
    assert values["roc_auc"] == pytest.approx(roc_auc_score(labels, proba), abs=0.002)


def test_memory_stays_bounded_on_a_long_busy_stream() -> None:
    window = TimeBucketWindow(dt.timedelta(days=7), binary=False, buckets=120)
    for i in range(200_000):  # 200k examples over 23 days
        window.update(0.1, 0.0, T0 + dt.timedelta(seconds=10 * i))
    assert len(window._buckets) <= 121
    snap = window.snapshot()
    assert snap is not None and snap[0]["mae"] == pytest.approx(0.1)


def test_an_empty_window_has_no_snapshot() -> None:
    assert TimeBucketWindow(dt.timedelta(hours=1), binary=True).snapshot() is None
