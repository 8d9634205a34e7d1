"""Rolling windows and alert thresholds, checked against direct numpy computations."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import pytest
from pydantic import ValidationError
from sklearn.metrics import f1_score, log_loss, roc_auc_score

from workers.monitor.episodes import EpisodeTracker
from workers.monitor.error_stream import ErrorStreamMonitor
from workers.monitor.quality import QualityTracker
from workers.settings import AlertRule, ModelConfig, MonitorConfig, time_window_name

T0 = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def test_count_window_matches_direct_computation() -> None:
    rng = np.random.default_rng(0)
    p, y = rng.random(1000) * 0.1, rng.random(1000) * 0.1
    q = QualityTracker("regression", [200], [])
    for i in range(1000):
        q.update(float(p[i]), float(y[i]), T0 + dt.timedelta(seconds=i))
    values, n = q.snapshot()["last_200"]
    err = p[-200:] - y[-200:]
    assert n == 200
    assert values["mae"] == pytest.approx(np.abs(err).mean())
    assert values["rmse"] == pytest.approx(np.sqrt((err**2).mean()))
    assert values["bias"] == pytest.approx(err.mean())


@pytest.mark.parametrize("task", ["regression", "binary"])
def test_bulk_updates_give_the_windows_of_one_by_one_updates(task: str) -> None:
    """The monitor's live tail feeds the windows in bulk (numpy); the result must be what
    feeding the same examples one at a time gives, late examples and all."""
    rng = np.random.default_rng(3)
    n = 5_000
    p = rng.random(n)
    y = (rng.random(n) < p).astype(float) if task == "binary" else rng.random(n)
    seconds = np.cumsum(rng.exponential(0.7, n))  # about 1 h of traffic, in order...
    late = rng.choice(n, 40, replace=False)
    seconds[late] -= rng.uniform(0, 2_000, 40)  # ...but for a few late ones
    at = [T0 + dt.timedelta(seconds=float(s)) for s in seconds]
    one = QualityTracker(task, [200, 1_000], [600, 3_600])  # type: ignore[arg-type]
    bulk = QualityTracker(task, [200, 1_000], [600, 3_600])  # type: ignore[arg-type]
    for i in range(n):
        one.update(float(p[i]), float(y[i]), at[i])
    stamps = np.array([t.timestamp() for t in at])
    # Chunks smaller and larger than a window: pairs pushed out, a window made afresh.
    sizes = [1, 6, 143, 1_050, 1, 1_799, *rng.integers(1, 400, 40).tolist()]
    cuts = sorted({0, n, *(c for c in itertools.accumulate(sizes) if c < n)})
    for lo, hi in itertools.pairwise(cuts):
        bulk.update_many(p[lo:hi], y[lo:hi], stamps[lo:hi])
    assert bulk.total == one.total == n
    expected, got = one.snapshot(), bulk.snapshot()
    assert got.keys() == expected.keys() == {"last_200", "last_1000", "10m", "1h"}
    for window, (values, count) in expected.items():
        assert got[window][1] == count, window
        assert got[window][0] == pytest.approx(values, rel=1e-9, abs=1e-12), window


def test_time_window_keeps_only_its_period() -> None:
    q = QualityTracker("regression", [], [60])
    for i in range(120):  # one example a second; the first minute's errors are large
        q.update(1.0 if i < 60 else 0.1, 0.0, T0 + dt.timedelta(seconds=i))
    values, n = q.snapshot()["1m"]
    assert 59 <= n <= 61
    assert values["mae"] == pytest.approx(0.1, abs=0.02)


def test_classification_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    proba = rng.random(400)
    labels = (rng.random(400) < proba).astype(float)
    q = QualityTracker("binary", [400], [])
    for pr, lab in zip(proba, labels, strict=True):
        q.update(float(pr), float(lab), T0)
    values, _ = q.snapshot()["last_400"]
    assert values["f1"] == pytest.approx(f1_score(labels, proba >= 0.5))
    assert values["log_loss"] == pytest.approx(log_loss(labels, proba), rel=1e-6)
    assert values["roc_auc"] == pytest.approx(roc_auc_score(labels, proba), abs=0.03)


def test_window_names() -> None:
    assert [time_window_name(s) for s in (3600, 86400, 604800, 90, 45)] == [
        "1h",
        "1d",
        "7d",
        "90s",
        "45s",
    ]


def test_alert_rules_need_one_bound_and_real_windows() -> None:
    assert AlertRule(metric="mae", window="last_500", above=0.02).breached(0.021, 500)
    assert not AlertRule(metric="mae", window="last_500", above=0.02).breached(0.02, 500)
    assert AlertRule(metric="f1", window="last_500", below=0.72).breached(0.7, 500)
    with pytest.raises(ValidationError, match="exactly one"):
        AlertRule(metric="mae", window="last_500")
    with pytest.raises(ValidationError, match="not configured"):
        ModelConfig(
            horizon_seconds=1,
            monitor=MonitorConfig(alerts=(AlertRule(metric="mae", window="7d", above=1),)),
        )
    with pytest.raises(ValidationError, match="not one of"):
        ModelConfig(
            horizon_seconds=1,
            task="binary",
            monitor=MonitorConfig(alerts=(AlertRule(metric="mae", window="last_500", above=1),)),
        )


def test_episode_opens_once_and_closes_after_clean_checks() -> None:
    t = EpisodeTracker(clear_after=2)
    k = ("m", "v", "x")
    seen = [t.observe(k, b) for b in (False, True, True, False, True, False, False, True)]
    # opens at index 1; one clean check is not enough to close it (index 3);
    # two in a row (5, 6) close it, so index 7 opens a second episode.
    assert seen == [False, True, False, False, False, False, False, True]
    assert t.active(k)


@pytest.mark.parametrize("method", ["adwin", "page_hinkley"])
def test_error_stream_alerts_once_per_rise(method: str) -> None:
    rng = np.random.default_rng(2)
    monitor = ErrorStreamMonitor(method)  # type: ignore[arg-type]
    alerts = []
    for i in range(8000):
        # calm, a fivefold rise, recovery, a second rise
        scale = 0.03 if 2000 <= i < 4000 or i >= 6000 else 0.005
        if monitor.update(float(rng.normal(0, scale))):
            alerts.append(i)
    assert len(alerts) == 2, alerts
    assert 2000 <= alerts[0] < 2300 and 6000 <= alerts[1] < 6300


@pytest.mark.parametrize("method", ["adwin", "page_hinkley"])
def test_error_stream_is_quiet_when_stationary(method: str) -> None:
    rng = np.random.default_rng(3)
    monitor = ErrorStreamMonitor(method)  # type: ignore[arg-type]
    assert not [i for i in range(8000) if monitor.update(float(rng.normal(0, 0.005)))]


def _losses(task: str, p: np.ndarray, y: np.ndarray, metric: str) -> np.ndarray:
    from workers.monitor.quality import example_loss

    return np.array([example_loss(metric, task, a, b) for a, b in zip(p, y, strict=True)])  # type: ignore[arg-type]


def test_relative_bounds_are_judged_beyond_sampling_noise() -> None:
    """A classifier's log loss over 500 examples wanders past 1.15x its reference by chance;
    the z-test keeps such windows quiet and still passes a real 1.5x rise."""
    from workers.monitor.quality import ReferenceLosses

    rng = np.random.default_rng(0)
    p = rng.uniform(0.01, 0.2, 20_500)  # rare positives: a heavy-tailed loss
    y = (rng.random(20_500) < p).astype(float)
    ref = ReferenceLosses("binary")
    for a, b in zip(p[:500], y[:500], strict=True):
        ref.update(float(a), float(b))
    reference = float(_losses("binary", p[:500], y[:500], "log_loss").mean())
    crossings = noisy = 0
    for start in range(500, 20_500, 500):
        value = float(
            _losses("binary", p[start : start + 500], y[start : start + 500], "log_loss").mean()
        )
        if value > 1.15 * reference:
            crossings += 1
            noisy += ref.significant("log_loss", value, reference, 500, 500, 3.0, up=True)
    assert noisy == 0
    assert ref.significant("log_loss", 1.5 * reference, reference, 500, 500, 3.0, up=True)
    # Not a mean of examples: no test, the factor decides.
    assert ReferenceLosses("binary").significant("f1", 0.1, 0.9, 500, 500, 3.0, up=False)
    assert crossings > 0  # the factor alone would have fired on noise


def test_rmse_is_tested_on_squared_errors() -> None:
    from workers.monitor.quality import ReferenceLosses

    rng = np.random.default_rng(1)
    ref = ReferenceLosses("regression")
    for e in rng.normal(0, 1.0, 1000):
        ref.update(float(e), 0.0)
    assert not ref.significant("rmse", 1.05, 1.0, 500, 1000, 3.0, up=True)
    assert ref.significant("rmse", 1.4, 1.0, 500, 1000, 3.0, up=True)


def test_tail_drift_reads_every_event_on_the_drift_topic() -> None:
    from schemas import QualityAlertRaised, RetrainExhausted
    from workers.monitor.tail import format_drift

    alert = QualityAlertRaised(
        model="ctr",
        model_version="v1",
        metric="mae",
        window="last_500",
        value=0.03,
        bound=0.025,
        direction="above",
        n=500,
        reference=0.02,
    )
    assert "above 0.025 = 1.25x its reference (n=500)" in format_drift(alert.to_bytes())
    gave_up = RetrainExhausted(
        model="ctr", version="v1", attempts=3, last_reason="gate improvement"
    )
    line = format_drift(gave_up.to_bytes())
    assert "RETRAIN EXHAUSTED ctr v1: 3 attempt(s)" in line and "gate improvement" in line


def test_a_version_is_held_to_the_better_of_its_first_examples_and_its_validation() -> None:
    from workers.monitor.quality import QualityTracker, ReferenceLosses
    from workers.monitor.service import _Version

    state = _Version(
        reference=QualityTracker("regression", (4,), ()),
        reference_size=4,
        reference_losses=ReferenceLosses("regression"),
    )
    assert state.reference_values() == {}
    # Validation alone sets the reference before its first examples have matured.
    state.validation, state.validation_n = {"mae": 0.5}, 300
    assert state.reference_values() == {"mae": 0.5}
    assert state.reference_for("mae") == (0.5, 300)
    # Its first examples came from a changed concept (MAE 2.0): validation still rules.
    for _ in range(4):
        state.reference.update(2.0, 0.0, None)
    assert state.reference_values()["mae"] == 0.5
    # Better first examples than validation: they are the reference.
    state.validation = {"mae": 3.0}
    assert state.reference_for("mae") == (2.0, 4)
    assert "rmse" in state.reference_values()  # first examples give every metric
