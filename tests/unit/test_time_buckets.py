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


def test_a_late_example_lands_in_its_own_bucket_even_when_that_bucket_was_empty() -> None:
    window = TimeBucketWindow(dt.timedelta(minutes=10), binary=False, buckets=10)
    window.update(1.0, 0.0, T0)
    window.update(1.0, 0.0, T0 + dt.timedelta(minutes=5))
    window.update(0.0, 0.0, T0 + dt.timedelta(minutes=2))  # late, into an empty minute
    window.update(0.0, 0.0, T0 - dt.timedelta(minutes=30))  # older than the window: ignored
    snap = window.snapshot()
    assert snap is not None
    assert snap[1] == 3
    assert snap[0]["mae"] == pytest.approx(2 / 3)
    assert [start for start, _ in window._buckets] == sorted(s for s, _ in window._buckets)


def test_a_count_window_holds_its_last_examples_through_many_refreshes() -> None:
    from workers.monitor.time_buckets import CountWindow

    rng = np.random.default_rng(3)
    proba = rng.random(10_000)
    labels = (rng.random(10_000) < proba).astype(float)
    window = CountWindow(500, binary=True)
    for p, y in zip(proba, labels, strict=True):
        window.update(float(p), float(y))
    snap = window.snapshot()
    assert snap is not None
    values, n = snap
    assert n == 500
    p, y = proba[-500:], labels[-500:]
    said = p >= 0.5
    assert values["accuracy"] == pytest.approx(float((said == y.astype(bool)).mean()))
    assert values["f1"] == pytest.approx(f1_score(y, said))
    assert values["log_loss"] == pytest.approx(log_loss(y, p))
    assert values["roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=0.005)
