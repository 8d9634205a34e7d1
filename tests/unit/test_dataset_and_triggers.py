"""The training set's time rules and the retrain trigger decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from workers.retrain.dataset import LeakageError, Row, check_leakage, temporal_split
from workers.retrain.triggers import ControlState, decide, drift_fires, schedule_due
from workers.settings import RetrainConfig, TriggerConfig

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rows(n: int, *, leak: str | None = None, early: int | None = None) -> list[Row]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        x = float(rng.normal())
        label = 0.5 + 0.1 * x + float(rng.normal(0, 0.1))
        features = {"x": x, "channel": "ab"[i % 2], "copy": label if leak == "copy" else x}
        at = T0 + timedelta(minutes=i)
        labeled = at - timedelta(seconds=1) if early == i else at + timedelta(minutes=5)
        out.append(Row(f"p{i}", "v1", features, label, 0.5, at, labeled))
    return out


def test_a_feature_that_copies_the_label_fails_the_run() -> None:
    with pytest.raises(LeakageError, match="'copy' is a near copy of the label"):
        check_leakage(rows(200, leak="copy"), ["x", "channel", "copy"])


def test_a_label_older_than_its_prediction_fails_the_run() -> None:
    with pytest.raises(LeakageError, match=r"older than their prediction, e\.g\. p7"):
        check_leakage(rows(50, early=7), ["x"])


def test_honest_data_passes_and_reports_what_was_checked() -> None:
    checked = check_leakage(rows(200), ["x", "channel"])
    assert set(checked) == {"x"}  # categorical features are not correlations
    assert abs(checked["x"]["correlation"]) < 0.98


def test_the_split_is_by_time_with_a_recent_slice_of_its_own() -> None:
    data = rows(100)[::-1]  # order of arrival does not matter
    split = temporal_split(data, validation_share=0.25, recent_seconds=10 * 60)
    assert [len(split.train), len(split.validation), len(split.recent)] == [68, 22, 10]
    assert split.train[-1].predicted_at < split.validation[0].predicted_at
    assert split.validation[-1].predicted_at < split.recent[0].predicted_at
    assert split.describe()["recent"]["n"] == 10


def cfg(**triggers: object) -> RetrainConfig:
    return RetrainConfig(triggers=TriggerConfig(**triggers))  # type: ignore[arg-type]


CALM = ControlState(paused=False, last_auto_retrain_at=None, running=False)


def test_commands_run_even_when_paused_but_automatic_triggers_do_not() -> None:
    paused = ControlState(paused=True, last_auto_retrain_at=None, running=False)
    assert decide("command", cfg(), paused, T0).go
    verdict = decide("quality_alert", cfg(), paused, T0)
    assert not verdict.go and "paused" in verdict.reason


def test_cooldown_turns_a_bad_hour_into_one_retrain() -> None:
    recent = ControlState(paused=False, last_auto_retrain_at=T0, running=False)
    c = cfg(cooldown_seconds=600)
    assert not decide("quality_alert", c, recent, T0 + timedelta(seconds=599)).go
    assert decide("quality_alert", c, recent, T0 + timedelta(seconds=601)).go


def test_a_running_retrain_blocks_every_trigger() -> None:
    busy = ControlState(paused=False, last_auto_retrain_at=None, running=True)
    assert not decide("command", cfg(), busy, T0).go
    assert not decide("quality_alert", cfg(), busy, T0).go


def test_triggers_that_are_off_do_not_fire() -> None:
    assert not decide("drift", cfg(on_drift=False), CALM, T0).go
    assert decide("drift", cfg(on_drift=True), CALM, T0).go
    assert not decide("schedule", cfg(schedule_seconds=0), CALM, T0).go
    assert not decide("outcome_count", cfg(outcome_count=0), CALM, T0).go
    assert not decide("quality_alert", RetrainConfig(enabled=False), CALM, T0).go


def test_schedule_and_drift_feature_filters() -> None:
    c = cfg(schedule_seconds=30 * 86400)
    assert not schedule_due(c, T0, T0, T0 + timedelta(days=29))
    assert schedule_due(c, T0, T0, T0 + timedelta(days=30))
    assert drift_fires(cfg(drift_features=("visits",)), "visits")
    assert not drift_fires(cfg(drift_features=("visits",)), "device")
    assert drift_fires(cfg(), "__error__")
