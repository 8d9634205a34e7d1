"""How `make efficacy` turns what PostgreSQL holds into its numbers, on a made-up run: no
broker, no database, no worker."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from benchmarks import efficacy_sql as esql
from benchmarks.efficacy import (
    SECTION,
    ScenarioResult,
    Sent,
    Timeline,
    evaluate,
    model_name,
    write_section,
)
from workers.settings import ModelConfig
from workers.synth.drift_streams import make_stream

N, ONSET, RATE = 3000, 1500, 100.0
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIMES = [T0 + timedelta(seconds=i / RATE) for i in range(N)]


def at(index: int) -> datetime:
    return TIMES[index] + timedelta(microseconds=1)  # just after that event was sent


@pytest.fixture(scope="module")
def result() -> ScenarioResult:
    stream = make_stream("abrupt", "regression", N, seed=3)
    champion = stream.fit_champion()
    versions = ["initial" if i < 2000 else "r1" for i in range(N)]
    initial = champion.predict(stream.rows)
    logged = np.where(np.arange(N) < 2000, initial, stream.labels + 0.5)
    examples = [
        esql.Example(i, versions[i], float(logged[i]), TIMES[i], TIMES[i], "outcome", float(y))
        for i, y in enumerate(stream.labels)
    ]

    def alert(index: int, metric: str, value: float) -> dict[str, Any]:
        return {
            "at": at(index),
            "model_version": "initial",
            "window_name": "last_500",
            "metric": metric,
            "value": value,
            "n": 500,
        }

    back = esql.ReadBack(
        examples=examples,
        outcomes_stored=N,
        labeled_rows=N,
        dead_letters=0,
        # One alert before the onset (a false alarm), one after it, written with all the
        # window's metrics as the monitor does.
        alerts=[alert(1000, "mae", 1.3), alert(1700, "rmse", 4.0), alert(1700, "mae", 3.0)],
        episodes=[
            {
                "at": at(1750),
                "model_version": "initial",
                "feature": "__error__",
                "method": "adwin",
                "statistic": 3.0,
                "threshold": 1.0,
            }
        ],
        runs=[
            esql.RunRow(
                1,
                "quality_alert",
                "succeeded",
                "r1",
                {
                    "train": {
                        "n": 240,
                        "from": TIMES[1520].isoformat(),
                        "to": TIMES[1759].isoformat(),
                    },
                    "validation": {
                        "n": 60,
                        "from": TIMES[1760].isoformat(),
                        "to": TIMES[1819].isoformat(),
                    },
                },
                None,
                None,
                at(1900),
                at(1980),
            )
        ],
        champion_history=[
            {"version": "initial", "rollback": False, "at": at(1900)},
            {"version": "r1", "rollback": False, "at": at(1990)},
        ],
    )
    cfg = ModelConfig(
        task="regression",
        horizon_seconds=30,
        features=[f"x{i}" for i in range(10)],
        monitor={"alerts": [{"metric": "mae", "window": "last_500", "above_reference": 1.25}]},
        retrain={"candidates": ["linear"], "metric": "mae"},
    )
    sent = Sent(times=TIMES, versions=versions, outcomes=N, seconds=30.0)
    counts = {"stored": N, "pending": 0, "labeled": N}
    return evaluate(
        stream,
        champion,
        cfg,
        model_name("regression", "abrupt"),
        sent,
        back,
        counts,
        rate=RATE,
        delay=1.0,
        schedule_every=100_000,
    )


def test_signals_are_placed_on_the_event_axis(result: ScenarioResult) -> None:
    alerts = [s for s in result.signals if s.kind == "alert"]
    assert [s.index for s in alerts] == [1001, 1701]  # one alert per moment, not per metric
    assert "mae" in alerts[1].detail
    assert result.before_onset == {"alert": 1}
    assert result.detection_delay == 201
    assert result.promotion is not None and result.promotion.version == "r1"
    assert result.promotion_delay == 491
    assert result.promotion.first_served == 2000


def test_the_oracle_learns_from_the_promoted_runs_post_change_rows(result: ScenarioResult) -> None:
    assert result.loop_rows == (1520, 1819)
    assert result.oracle_rows == (1520, 1819)
    assert result.post_window == (2000, N)  # the window is cut at the end of the stream
    assert result.post_loop is not None and result.post_oracle is not None
    assert result.post_loop.value == pytest.approx(0.5)
    assert result.post_oracle.n == N - 2000


def test_whole_stream_quality_and_targets(result: ScenarioResult) -> None:
    assert result.whole_loop.n == result.whole_never.n == N
    assert result.whole_loop.value < result.whole_never.value
    # No retrain within the stream: the fixed schedule is the initial champion throughout.
    assert result.whole_schedule.value == pytest.approx(result.whole_never.value)
    verdicts = {t.name: t.passed for t in result.targets()}
    assert verdicts["detected within 2,000 events"]
    assert verdicts["promoted within 5,000 events"]
    assert verdicts["whole stream better than never retraining"]
    assert verdicts["every prediction stored and labeled, none pending"]
    assert result.delivery.complete and result.delivery.lost == result.delivery.doubled == 0


def test_the_timeline_counts_on_at_the_rate_after_the_last_event() -> None:
    timeline = Timeline(TIMES, RATE)
    assert timeline.sent_by(TIMES[0] - timedelta(seconds=1)) == 0
    assert timeline.sent_by(TIMES[10]) == 11
    assert timeline.first_at(TIMES[10]) == 10
    assert timeline.sent_by(TIMES[-1] + timedelta(seconds=2)) == N + 200


def test_the_section_is_added_then_replaced_in_place(tmp_path: Path) -> None:
    path = tmp_path / "BENCHMARKS.md"
    path.write_text("# Benchmarks\n\n## Serving\n\nfast\n")
    write_section(path, f"{SECTION}\n\nfirst\n")
    assert path.read_text() == f"# Benchmarks\n\n## Serving\n\nfast\n\n{SECTION}\n\nfirst\n"
    path.write_text(path.read_text() + "\n## Later\n\nkept\n")
    write_section(path, f"{SECTION}\n\nsecond\n")
    text = path.read_text()
    assert "first" not in text and "second" in text
    assert text.endswith("## Later\n\nkept\n") and text.count(SECTION) == 1
    assert text.index("## Serving") < text.index(SECTION) < text.index("## Later")
