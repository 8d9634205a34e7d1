"""The monitor's live tail feeds a version's windows in bulk; it must end where feeding
the same rows one by one ends: windows, error-stream alerts and challenger counts."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pytest

from workers.monitor.service import MonitorService, _example
from workers.settings import ModelConfig, MonitorConfig, Settings, ShadowConfig

T0 = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)


def _settings() -> Settings:
    model = ModelConfig(
        task="regression",
        horizon_seconds=60,
        no_outcome="drop",
        monitor=MonitorConfig(count_windows=(200,), time_windows_seconds=(600.0,)),
        shadow=ShadowConfig(challengers=("linear",)),
    )
    return Settings(models={"m": model, "other": model})


def _rows() -> list[dict[str, Any]]:
    """Two versions of `m` in long runs, `other` in short ones between them, and an error
    that jumps half way (so the error-stream detector alerts)."""
    rng = np.random.default_rng(5)
    rows: list[dict[str, Any]] = []
    pattern = [("m", "v1", 300), ("other", "v1", 3), ("m", "v2", 40), ("m", "v1", 5)]
    seq = 0
    while seq < 12_000:
        for model, version, n in pattern:
            for _ in range(n):
                seq += 1
                jump = 2.0 if seq > 6_000 and model == "m" else 0.0
                label = float(rng.normal())
                rows.append(
                    {
                        "matured_seq": seq,
                        "prediction_id": f"p{seq}",
                        "model": model,
                        "model_version": version,
                        "prediction": label + jump + float(rng.normal(0, 0.1)),
                        "label": label,
                        "matured_at": T0 + dt.timedelta(seconds=seq * 0.1),
                        "features": None,
                    }
                )
    return rows


def test_bulk_feed_ends_where_one_by_one_ends() -> None:
    settings = _settings()
    bulk = MonitorService(settings, pool=None, publisher=None, checkpoint_key=b"k")  # type: ignore[arg-type]
    single = MonitorService(settings, pool=None, publisher=None, checkpoint_key=b"k")  # type: ignore[arg-type]
    rows = _rows()
    # No features were read for any row: the challengers skip each one, in both.
    found_bulk = []
    for start in range(0, len(rows), 5_000):  # as the tail reads them
        found_bulk += bulk._feed_rows(rows[start : start + 5_000], alerting=True, features={})
    found_single = []
    for row in rows:
        found_single += single._feed(_example(row, {}), alerting=True)

    assert found_single, "the jump in error should raise an error-stream alert"
    assert [(a.model, a.model_version, a.window_end) for a in found_bulk] == [
        (a.model, a.model_version, a.window_end) for a in found_single
    ]
    assert (
        set(bulk._versions) == set(single._versions) == {("m", "v1"), ("m", "v2"), ("other", "v1")}
    )
    for key, state in single._versions.items():
        other = bulk._versions[key]
        assert other.reference.total == state.reference.total
        assert other.trackers.keys() == state.trackers.keys()
        for segment, tracker in state.trackers.items():
            expected, got = tracker.snapshot(), other.trackers[segment].snapshot()
            assert got.keys() == expected.keys()
            for window, (values, n) in expected.items():
                assert got[window][1] == n, (key, window)
                assert got[window][0] == pytest.approx(values, rel=1e-9, abs=1e-12)
    for name, shadow in single.shadows.items():
        assert bulk.shadows[name].skipped == shadow.skipped > 0
