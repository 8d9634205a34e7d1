"""Challengers: progressive validation, being ahead honestly, sampling, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest

from workers.errors import ConfigError
from workers.settings import ModelConfig, ShadowConfig
from workers.shadow import challengers
from workers.shadow.checkpoint import CheckpointError, dump, load
from workers.shadow.tracker import ShadowTracker


def cfg(*keys: str, **shadow: object) -> ModelConfig:
    shadow.setdefault("max_learn_per_second", 1e9)  # no rate budget unless a test sets one
    # Nor a CPU budget (one thread never uses 4 cores): a loaded CI machine made the depth
    # cap's test skip examples and fail on the count.
    shadow.setdefault("max_cpu_share", 4.0)
    return ModelConfig(
        horizon_seconds=60,
        shadow=ShadowConfig(challengers=keys, window=300, min_examples=300, margin=0.1, **shadow),
    )


def stream(n: int, drift_at: int, seed: int = 0):  # type: ignore[no-untyped-def]
    """label = 0.5 + 0.3x before the drift, 0.5 - 0.3x after; the champion never learns it."""
    rng = np.random.default_rng(seed)
    for i in range(n):
        x = float(rng.normal())
        slope = 0.3 if i < drift_at else -0.3
        label = 0.5 + slope * x + float(rng.normal(0, 0.02))
        champion = 0.5 + 0.3 * x
        yield i, {"x": x, "channel": "ab"[i % 2]}, champion, label


def test_a_better_challenger_gets_ahead_once_after_the_drift() -> None:
    tracker = ShadowTracker("ctr", cfg("linear", "hoeffding"))
    events = []
    for i, x, champ, label in stream(3000, drift_at=1000):
        tracker.observe(i + 1, f"p{i}", x, champ, label)
        if i % 50 == 0:
            events += [(i, a) for a in tracker.ahead()]
    linear = [(i, a) for i, a in events if a.challenger == "linear"]
    assert len(linear) == 1, events
    at, event = linear[0]
    assert 1000 < at < 1600
    assert event.challenger_value < event.champion_value and event.improvement >= 0.1
    assert event.examples >= 300


def test_a_worse_challenger_never_gets_ahead() -> None:
    tracker = ShadowTracker("ctr", cfg("linear", "hoeffding"))
    rng = np.random.default_rng(1)
    for i, x, _, label in stream(3000, drift_at=1000):
        tracker.observe(i + 1, f"p{i}", x, label + float(rng.normal(0, 0.001)), label)
        assert tracker.ahead() == []
    standings = tracker.standings()
    assert all(mine > champ for mine, champ, _ in standings.values())


def test_predictions_come_before_learning() -> None:
    tracker = ShadowTracker("ctr", cfg("linear"))
    tracker.observe(1, "p1", {"x": 1.0}, 0.9, 0.7)
    mine, champ, n = tracker.standings()["linear"]
    # A fresh linear model predicts 0 for its first example: scored before it learns.
    assert (mine, n) == (pytest.approx(0.7), 1)
    assert champ == pytest.approx(0.2)


def test_sampling_scores_both_sides_on_the_same_examples() -> None:
    tracker = ShadowTracker("ctr", cfg("linear", sample_share=0.25))
    for i, x, champ, label in stream(2000, drift_at=10_000):
        tracker.observe(i + 1, f"p{i}", x, champ, label)
    learned = tracker.challengers["linear"].learned
    assert 400 < learned < 600 and tracker.skipped == 2000 - learned


def test_under_load_challengers_learn_at_their_rate_and_count_the_rest() -> None:
    now = [0.0]
    tracker = ShadowTracker("ctr", cfg("linear", max_learn_per_second=100), clock=lambda: now[0])
    # 1,000 examples a second for 10 s: a burst of 200 first, then 100 a second.
    for i, x, champ, label in stream(10_000, drift_at=10**9):
        now[0] = i / 1000
        tracker.observe(i + 1, f"p{i}", x, champ, label)
    learned = tracker.challengers["linear"].learned
    assert 200 + 100 * 9 <= learned <= 200 + 100 * 10 + 1
    assert tracker.skipped == 10_000 - learned
    # Back under the rate, every example is learned again.
    before = learned
    for i, x, champ, label in stream(50, drift_at=10**9):
        now[0] = 20 + i / 10
        tracker.observe(20_000 + i, f"q{i}", x, champ, label)
    assert tracker.challengers["linear"].learned == before + 50


def test_examples_before_a_checkpoint_are_not_learned_twice() -> None:
    tracker = ShadowTracker("ctr", cfg("linear"))
    for i, x, champ, label in stream(100, drift_at=10_000):
        tracker.observe(i + 1, f"p{i}", x, champ, label)
    for i, x, champ, label in stream(100, drift_at=10_000):  # redelivered
        tracker.observe(i + 1, f"p{i}", x, champ, label)
    assert tracker.challengers["linear"].learned == 100


def test_unknown_challenger_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="hoeffding, logistic"):
        challengers.build("forest", "binary")


def test_checkpoints_round_trip_and_refuse_tampering() -> None:
    tracker = ShadowTracker("ctr", cfg("linear"))
    for i, x, champ, label in stream(200, drift_at=10_000):
        tracker.observe(i + 1, f"p{i}", x, champ, label)
    blob, digest = dump(tracker.challengers["linear"].state(), b"key")
    state = load(blob, digest, b"key")
    probe = challengers.encode({"x": 0.3, "channel": "a"}, "linear")
    original = tracker.challengers["linear"].model.predict_one(probe)
    assert state["model"].predict_one(probe) == pytest.approx(original)
    assert state["learned"] == 200
    with pytest.raises(CheckpointError):
        load(blob + b"x", digest, b"key")
    with pytest.raises(CheckpointError):
        load(blob, digest, b"other key")


def test_challengers_learn_within_their_share_of_a_cpu_core() -> None:
    now = [0.0]
    tracker = ShadowTracker("ctr", cfg("linear", max_cpu_share=0.2), clock=lambda: now[0])
    # A fake CPU clock on which each learned example costs 10 ms.
    tracker.cpu_clock = lambda: 0.01 * tracker.challengers["linear"].learned
    # 1,000 examples a second for 10 s at 10 ms each would need 10 cores; 0.2 of one
    # affords 20 a second, after a burst of two seconds' worth (40).
    for i, x, champ, label in stream(10_000, drift_at=10**9):
        now[0] = i / 1000
        tracker.observe(i + 1, f"p{i}", x, champ, label)
    learned = tracker.challengers["linear"].learned
    assert 40 + 20 * 9 <= learned <= 40 + 20 * 10 + 2, learned
    assert tracker.skipped == 10_000 - learned


def test_while_ingestion_is_behind_challengers_learn_within_the_busy_share() -> None:
    now = [0.0]
    tracker = ShadowTracker(
        "ctr", cfg("linear", max_cpu_share=0.2, busy_cpu_share=0.05), clock=lambda: now[0]
    )
    tracker.cpu_clock = lambda: 0.01 * tracker.challengers["linear"].learned  # 10 ms each

    def learned_over(start: int, seconds: int) -> int:
        before = tracker.challengers["linear"].learned
        for i in range(start, start + 1000 * seconds):
            now[0] = i / 1000
            tracker.observe(i + 1, f"p{i}", {"x": 1.0}, 0.5, 0.5)
        return tracker.challengers["linear"].learned - before

    tracker.busy = True
    # 0.05 of a core at 10 ms an example: 5 a second (after a burst of two seconds' worth).
    assert 10 + 5 * 9 <= learned_over(0, 10) <= 10 + 5 * 10 + 2
    tracker.busy = False  # caught up: the full share again
    assert 20 * 9 <= learned_over(10_000, 10) <= 40 + 20 * 10 + 2


def test_the_allowance_is_what_the_budget_would_take_now() -> None:
    """The monitor reads features only for this many examples: never fewer than the
    budget takes, and not many more."""
    now = [0.0]
    tracker = ShadowTracker(
        "ctr", cfg("linear", max_learn_per_second=100, max_cpu_share=0.25), clock=lambda: now[0]
    )
    tracker.cpu_clock = lambda: tracker.challengers["linear"].learned / 64  # 1/64 s each
    # what learning costs is not known yet: the rate's burst, twice
    assert tracker.allowance() == 2 * 200
    tracker.observe(1, "p1", {"x": 1.0}, 0.5, 0.5)
    allowed = tracker.allowance()  # 0.5 s of CPU burst less one example: 31 more, twice
    assert allowed in (62, 64)
    for i in range(allowed):
        tracker.observe(i + 2, f"p{i + 2}", {"x": 1.0}, 0.5, 0.5)
    # observe() kept to the budget: 32 learned in all, the rest skipped
    learned = tracker.challengers["linear"].learned
    assert learned in (32, 33) and tracker.skipped == 1 + allowed - learned
    assert tracker.allowance() == 0
    tracker.skip()  # an example whose features were not read
    assert tracker.skipped == 2 + allowed - learned
    now[0] = 1.0
    assert tracker.allowance() in (32, 34)  # a second of 0.25 core at 1/64 s each, twice


def test_a_busy_share_of_zero_pauses_the_challengers_and_counts_what_they_skip() -> None:
    tracker = ShadowTracker("ctr", cfg("linear", busy_cpu_share=0.0))
    tracker.busy = True
    for i, x, champ, label in stream(500, drift_at=10**9):
        tracker.observe(i + 1, f"p{i}", x, champ, label)
    assert tracker.challengers["linear"].learned == 0
    assert tracker.skipped == 500


def test_the_monitor_marks_challengers_busy_from_the_ingest_lag() -> None:
    from workers.monitor.service import MonitorService
    from workers.settings import Settings

    settings = Settings(
        models={
            "a": cfg("linear", busy_lag_events=1000),
            "b": cfg("linear", busy_lag_events=50_000),
            "c": cfg(),  # no challengers: nothing to mark
        }
    )
    monitor = MonitorService(settings, pool=None, publisher=None, checkpoint_key=b"k")  # type: ignore[arg-type]
    busy = lambda: {name: s.busy for name, s in monitor.shadows.items()}  # noqa: E731
    assert busy() == {"a": False, "b": False}
    monitor.ingestion_lag(10_000)
    assert busy() == {"a": True, "b": False}
    monitor.ingestion_lag(100_000)
    assert busy() == {"a": True, "b": True}
    monitor.ingestion_lag(None)  # lag unknown: learn as usual
    assert busy() == {"a": False, "b": False}


def test_tree_challengers_stop_growing_at_their_depth_cap() -> None:
    tracker = ShadowTracker("ctr", cfg("hoeffding", max_tree_depth=3))
    rng = np.random.default_rng(5)
    for i in range(6000):  # a continuous target: an uncapped tree keeps splitting
        x = {f"f{k}": float(v) for k, v in enumerate(rng.normal(size=4))}
        tracker.observe(i + 1, f"p{i}", x, 0.0, sum(x.values()))
    model = tracker.challengers["hoeffding"].model
    assert tracker.challengers["hoeffding"].learned == 6000
    assert model.n_nodes > 1  # it did learn splits
    assert model.height <= 4  # the root and three levels below it
