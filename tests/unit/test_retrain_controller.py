"""The retrain controller's decisions, the change point, and an error detector that stays
awake. Pure: no broker, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from workers.monitor.error_stream import ErrorStreamMonitor
from workers.retrain import controller
from workers.retrain.controller import Facts, Loop, advance, after_run, change_point
from workers.settings import RetrainConfig

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CFG = RetrainConfig(
    min_post_change=500,
    triggers={"cooldown_seconds": 60, "max_attempts": 3, "backoff_seconds": 10},
)


def facts(**kw: object) -> Facts:
    base: dict[str, object] = {
        "now": T0,
        "paused": False,
        "last_auto_retrain_at": None,
        "running": False,
        "degraded": True,
        "post_change_rows": 0,
    }
    base.update(kw)
    return Facts(**base)  # type: ignore[arg-type]


def opened() -> Loop:
    loop = controller.open_degradation(
        Loop(), trigger="quality_alert", detail={}, version="v1", change_at=T0
    )
    assert loop is not None
    return loop


def test_a_degradation_opens_once_per_version() -> None:
    loop = opened()
    assert loop.state == "waiting_for_evidence" and loop.change_at == T0
    again = controller.open_degradation(
        loop, trigger="drift", detail={}, version="v1", change_at=T0 + timedelta(hours=1)
    )
    assert again is None
    assert controller.open_degradation(loop, trigger="drift", detail={}, version="v2", change_at=T0)


def test_it_waits_for_post_change_evidence_then_trains() -> None:
    loop = opened()
    step = advance(loop, facts(post_change_rows=499), CFG)
    assert not step.start_run and step.loop.state == "waiting_for_evidence"
    assert "499 of 500" in step.loop.reason
    step = advance(step.loop, facts(post_change_rows=500), CFG)
    assert step.start_run and step.loop.state == "training"


def test_a_trigger_in_the_cooldown_is_deferred_not_dropped() -> None:
    loop = opened()
    last = T0 - timedelta(seconds=30)
    step = advance(loop, facts(post_change_rows=900, last_auto_retrain_at=last), CFG)
    assert not step.start_run and step.loop.state == "deferred"
    later = facts(post_change_rows=900, last_auto_retrain_at=last, now=T0 + timedelta(seconds=31))
    assert advance(step.loop, later, CFG).start_run


def test_paused_and_running_models_do_not_start() -> None:
    loop = opened()
    assert advance(loop, facts(post_change_rows=900, paused=True), CFG).loop.state == "deferred"
    assert not advance(loop, facts(post_change_rows=900, running=True), CFG).start_run


def test_gated_runs_back_off_need_more_rows_and_give_up_once() -> None:
    loop = advance(opened(), facts(post_change_rows=600), CFG).loop
    step = after_run(loop, status="gated", promoted=False, rows=600, now=T0, cfg=CFG)
    loop = step.loop
    assert loop.state == "backoff" and loop.attempts == 1 and not step.exhausted
    assert loop.next_attempt_at == T0 + timedelta(seconds=10)
    # Too early, then not enough new evidence (1.5x the 600 rows of the last run).
    assert not advance(loop, facts(post_change_rows=2000, now=T0), CFG).start_run
    waiting = advance(loop, facts(post_change_rows=899, now=T0 + timedelta(seconds=11)), CFG)
    assert not waiting.start_run and "899 of 900" in waiting.loop.reason
    step = advance(loop, facts(post_change_rows=900, now=T0 + timedelta(seconds=11)), CFG)
    assert step.start_run
    # The second failure doubles the wait; the third is the last.
    step = after_run(step.loop, status="failed", promoted=False, rows=900, now=T0, cfg=CFG)
    assert step.loop.next_attempt_at == T0 + timedelta(seconds=20)
    third = advance(step.loop, facts(post_change_rows=1350, now=T0 + timedelta(seconds=21)), CFG)
    assert third.start_run
    final = after_run(third.loop, status="gated", promoted=False, rows=1350, now=T0, cfg=CFG)
    assert final.exhausted and final.loop.state == "exhausted" and final.loop.attempts == 3
    # Exhausted stays put (no second alert) while quality is bad...
    stay = advance(final.loop, facts(post_change_rows=99999), CFG)
    assert not stay.start_run and not stay.exhausted and stay.loop.state == "exhausted"
    # ... and closes when it recovers.
    assert advance(final.loop, facts(degraded=False), CFG).loop.state == "healthy"


def test_retries_stop_when_quality_recovers_on_its_own() -> None:
    loop = after_run(opened(), status="gated", promoted=False, rows=600, now=T0, cfg=CFG).loop
    step = advance(loop, facts(degraded=False, now=T0 + timedelta(hours=1)), CFG)
    assert step.loop.state == "healthy" and not step.start_run


def test_promotion_closes_the_loop_and_approval_waits() -> None:
    loop = advance(opened(), facts(post_change_rows=600), CFG).loop
    assert after_run(loop, status="succeeded", promoted=True, rows=600, now=T0, cfg=CFG).loop == (
        Loop(reason="promoted")
    )
    waiting = after_run(loop, status="succeeded", promoted=False, rows=600, now=T0, cfg=CFG)
    assert waiting.loop.state == "awaiting_approval"
    assert not advance(waiting.loop, facts(post_change_rows=10**6), CFG).start_run


@pytest.mark.parametrize("seed", range(5))
def test_change_point_finds_an_abrupt_shift(seed: int) -> None:
    rng = np.random.default_rng(seed)
    errors = np.concatenate([rng.normal(0, 1.0, 1500), rng.normal(0, 1.6, 700)])
    assert abs(change_point(errors) - 1500) < 120


@pytest.mark.parametrize("after", [10, 40, 70])
def test_a_change_with_few_examples_after_it_is_not_placed_before_it(after: int) -> None:
    """An alert sees a change early, a few dozen matured examples after it, among thousands
    before it: the point must not land among the old concept's examples (a guard that kept
    n/50 examples on the right once placed it up to 20 examples early)."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        errors = np.concatenate([rng.gamma(1.5, 1.0, 3000), rng.gamma(1.5, 2.5, after)])
        assert 3000 <= change_point(errors) <= 3000 + after, seed


def test_change_point_is_rarely_early_and_never_far_late() -> None:
    """A modest shift (half a standard deviation) in 300 seeds: the split's uncertainty
    moves the point late enough that it falls before the change in at most 2% of them."""
    cuts = []
    for seed in range(300):
        rng = np.random.default_rng(seed)
        cuts.append(change_point(np.concatenate([rng.normal(5, 1, 1000), rng.normal(5.5, 1, 600)])))
    offsets = np.array(cuts) - 1000
    assert np.mean(offsets < 0) <= 0.02, np.sort(offsets)[:10]
    assert np.median(offsets) < 150 and offsets.max() < 400, np.sort(offsets)[-10:]


def test_change_point_with_too_few_errors_takes_them_all() -> None:
    assert change_point([1.0] * 10) == 0


def test_change_point_of_a_gradual_shift_lies_inside_the_ramp() -> None:
    rng = np.random.default_rng(1)
    scale = np.concatenate([np.ones(1000), np.linspace(1, 2, 1000), np.full(1000, 2.0)])
    cut = change_point(rng.normal(0, scale))
    assert 1000 <= cut <= 2000


@pytest.mark.parametrize("seed", range(4))
def test_error_detector_is_quiet_on_a_long_stationary_stream(seed: int) -> None:
    rng = np.random.default_rng(seed)
    monitor = ErrorStreamMonitor("adwin")
    # Skewed, heavy-ish errors as a regression really makes, 30,000 of them.
    errors = rng.gamma(1.5, 1.4, 30_000) * rng.choice([-1, 1], 30_000)
    assert not [i for i, e in enumerate(errors) if monitor.update(float(e))]


def test_error_detector_catches_each_of_several_rises() -> None:
    """A rise, a return to the reference, and a second rise: two episodes, each found
    soon after it starts (a fresh detector after the first closes)."""
    rng = np.random.default_rng(11)
    monitor = ErrorStreamMonitor("adwin")
    level = np.concatenate([np.ones(6000), np.full(4000, 1.6), np.ones(6000), np.full(4000, 1.6)])
    raised = [i for i, s in enumerate(level) if monitor.update(float(rng.normal(0, s)))]
    assert len(raised) == 2, raised
    assert 6000 <= raised[0] < 7000 and 16000 <= raised[1] < 17000
    assert monitor.reference is not None and 0.7 < monitor.reference < 0.9


def test_a_small_false_alarm_does_not_open_an_episode() -> None:
    """A 5% wobble may make ADWIN fire; it is not material, so nothing opens and the real
    rise later is still caught."""
    rng = np.random.default_rng(5)
    monitor = ErrorStreamMonitor("adwin")
    level = np.concatenate([np.ones(3000), np.full(3000, 1.05), np.full(3000, 1.8)])
    raised = [i for i, s in enumerate(level) if monitor.update(float(rng.normal(0, s)))]
    assert len(raised) == 1 and 6000 <= raised[0] < 6800, raised


def test_a_classifiers_change_is_placed_by_its_log_loss() -> None:
    """Labels flip for a confident classifier: per-example log loss shows where."""
    rng = np.random.default_rng(8)
    p = rng.uniform(0.05, 0.95, 3000)
    y = (rng.random(3000) < p).astype(float)
    y[2000:] = (rng.random(1000) < 1 - p[2000:]).astype(float)  # the concept inverts
    losses = controller.example_losses("binary", p, y)
    assert abs(change_point(losses) - 2000) < 100


def test_training_never_starts_before_the_alerts_own_window() -> None:
    """A change point placed too early (noise) is moved up to the alerting window's start:
    those examples are bad enough to have crossed the bound."""
    flat = np.ones(2000)
    assert controller.change_start(flat, not_before=1500) >= 1500
    rng = np.random.default_rng(3)
    errors = np.concatenate([rng.normal(0, 1, 1000), rng.normal(0, 3, 1000)])
    # The real change (1000) lies inside the window (which starts at 500): kept.
    assert abs(controller.change_start(errors, not_before=500) - 1000) < 60


def test_a_promotion_on_few_rows_is_refreshed_as_post_change_data_grows() -> None:
    training = advance(opened(), facts(post_change_rows=500), CFG).loop
    after = controller.promoted(training, rows=500, cfg=CFG, reason="run 1", champion="r1")
    assert after.state == "healthy" and after.refresh_rows == 2000 and after.change_at == T0
    assert after.version == "r1"
    assert not advance(after, facts(post_change_rows=1999, degraded=False), CFG).start_run
    # Not while the champion shows a problem (the data may hold a new change).
    assert not advance(after, facts(post_change_rows=2000, degraded=True), CFG).start_run
    step = advance(after, facts(post_change_rows=2000, degraded=False), CFG)
    assert step.start_run and step.loop.trigger == "refresh" and step.loop.state == "training"
    # Promoted again: the next refresh waits for 4x more; not promoted: refreshing stops.
    again = controller.promoted(step.loop, rows=2000, cfg=CFG, reason="run 2")
    assert again.refresh_rows == 8000
    gated = after_run(step.loop, status="gated", promoted=False, rows=2000, now=T0, cfg=CFG)
    assert gated.loop == Loop(reason=gated.loop.reason) and not gated.exhausted
    # Off, or with no change point, nothing is due.
    off = RetrainConfig(triggers={"refresh_growth": 0})
    assert controller.promoted(training, rows=500, cfg=off, reason="x").refresh_rows is None
    assert controller.promoted(Loop(), rows=500, cfg=CFG, reason="x").refresh_rows is None


def refreshing() -> Loop:
    """r1, promoted by the loop on few rows, being refreshed now that more have matured."""
    training = advance(opened(), facts(post_change_rows=500), CFG).loop
    after = controller.promoted(training, rows=500, cfg=CFG, reason="run 1", champion="r1")
    return advance(after, facts(post_change_rows=2000, degraded=False), CFG).loop


def test_an_alert_during_a_refresh_opens_the_loop() -> None:
    """A refresh retrains a healthy champion. If that champion degrades meanwhile (a concept
    came back), the alert must open a degradation: a refresh that is then gated closes the
    loop, and the alert would never be acted on."""
    refresh = refreshing()
    assert refresh.state == "training" and refresh.version == "r1"
    later = T0 + timedelta(minutes=5)
    alert = controller.open_degradation(
        refresh, trigger="quality_alert", detail={}, version="r1", change_at=later
    )
    assert alert is not None
    assert (alert.state, alert.version, alert.change_at) == ("waiting_for_evidence", "r1", later)
    # The same alert during the degradation's own run adds nothing.
    own = advance(alert, facts(post_change_rows=600), CFG).loop
    assert own.state == "training"
    assert (
        controller.open_degradation(
            own, trigger="quality_alert", detail={}, version="r1", change_at=later
        )
        is None
    )


def test_a_refresh_passes_its_last_gate_only_while_its_champion_is_steady() -> None:
    """The gate asks the loop (an alert opened it) and the monitor (whose alert may still
    be on its way); a refresh passes only when neither reports the champion degraded."""
    refresh = refreshing()
    assert controller.champion_steady(refresh, monitor_degraded=False).passed
    told = controller.champion_steady(refresh, monitor_degraded=True)
    assert not told.passed and "monitor" in told.reason
    alert = controller.open_degradation(
        refresh, trigger="quality_alert", detail={}, version="r1", change_at=T0
    )
    assert alert is not None
    opened_meanwhile = controller.champion_steady(alert, monitor_degraded=False)
    assert not opened_meanwhile.passed and "quality_alert" in opened_meanwhile.reason
    # A degradation's own run is no refresh: the gate never passes one.
    training = advance(opened(), facts(post_change_rows=500), CFG).loop
    assert not controller.champion_steady(training, monitor_degraded=False).passed


def test_recall_is_tried_while_a_degradation_waits_with_enough_rows() -> None:
    loop = opened()
    need = CFG.recall.min_rows
    assert not controller.recall_due(loop, facts(post_change_rows=need - 1), CFG)
    assert controller.recall_due(loop, facts(post_change_rows=need), CFG)
    # Not while paused or running, not without a known change, not for a healthy model,
    # and not when promotions wait for a person (a recall replaces the champion at once).
    assert not controller.recall_due(loop, facts(post_change_rows=need, paused=True), CFG)
    assert not controller.recall_due(loop, facts(post_change_rows=need, running=True), CFG)
    unknown = Loop(state="waiting_for_evidence", version="v1", change_at=None)
    assert not controller.recall_due(unknown, facts(post_change_rows=need), CFG)
    assert not controller.recall_due(Loop(), facts(post_change_rows=need), CFG)
    approval = CFG.model_copy(update={"promotion": "approval"})
    assert not controller.recall_due(loop, facts(post_change_rows=need), approval)
    off = RetrainConfig(recall={"enabled": False})
    assert not controller.recall_due(loop, facts(post_change_rows=10_000), off)


def test_recall_picks_the_best_finite_score_for_the_metric() -> None:
    from workers.retrain.recall import best_version

    assert best_version("mae", {"v1": 0.4, "v2": 0.2, "v3": float("nan")}) == "v2"
    assert best_version("roc_auc", {"v1": 0.7, "v2": 0.9}) == "v2"
    assert best_version("mae", {"v1": float("inf")}) is None
    assert best_version("mae", {}) is None


def test_a_retry_is_paced_by_its_backoff_not_the_cooldown() -> None:
    """The cooldown (60 s) spaces degradations; the retry of a gated run waits its backoff
    (10 s) and its rows, else backoff_seconds would mean nothing under a longer cooldown."""
    loop = advance(opened(), facts(post_change_rows=600), CFG).loop
    gated = after_run(loop, status="gated", promoted=False, rows=600, now=T0, cfg=CFG).loop
    retry = facts(post_change_rows=900, last_auto_retrain_at=T0, now=T0 + timedelta(seconds=11))
    assert advance(gated, retry, CFG).start_run


def test_an_inconclusive_recall_is_tried_again_on_twice_the_rows() -> None:
    loop = opened()
    first = controller.next_recall_rows(loop, None, CFG)
    assert first == CFG.recall.min_rows
    again = controller.next_recall_rows(loop, (loop.version, loop.change_at, first), CFG)
    assert again == 2 * first
    # A new degradation (another version or change) starts over.
    other = controller.next_recall_rows(loop, ("v0", loop.change_at, 800), CFG)
    assert other == first
    # Never more than a retrain waits for, so the first recall comes before training.
    few = RetrainConfig(min_post_change=50)
    assert controller.next_recall_rows(loop, None, few) == 50
