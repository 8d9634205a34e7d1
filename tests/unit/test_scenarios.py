"""The synthetic scenarios: deterministic, drifting, with late and missing outcomes."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from schemas import FeedbackGiven, OutcomeObserved, PredictionMade
from workers.synth.scenarios import build_schedule
from workers.synth.spec import ScenarioSpec

START = datetime(2026, 11, 23, tzinfo=UTC)


def test_schedule_is_deterministic_and_time_ordered() -> None:
    spec = ScenarioSpec("ctr", count=300, seed=3)
    a, b = build_schedule(spec, START), build_schedule(spec, START)
    assert [s.payload() for s in a] == [s.payload() for s in b]
    other_run = build_schedule(ScenarioSpec("ctr", count=300, seed=3, run_id="other"), START)
    assert {s.event.event_id for s in a if s.event}.isdisjoint(
        {s.event.event_id for s in other_run if s.event}
    )
    assert [s.at for s in a] == sorted(s.at for s in a)
    assert sum(isinstance(s.event, PredictionMade) for s in a) == 300


def test_ctr_champion_error_rises_after_drift() -> None:
    spec = ScenarioSpec("ctr", count=2000, seed=1, malformed_share=0.0)
    sends = build_schedule(spec, START)
    preds = {s.event.prediction_id: s.event for s in sends if isinstance(s.event, PredictionMade)}
    errors: dict[bool, list[float]] = {False: [], True: []}
    for s in sends:
        if isinstance(s.event, OutcomeObserved):
            p = preds[s.event.prediction_id]
            index = int(p.prediction_id.rsplit("-", 1)[1])
            errors[index >= 1000].append(abs(p.prediction - s.event.value))
    before, after = np.mean(errors[False]), np.mean(errors[True])
    assert before < 0.02 < after, (before, after)


def test_purchase_outcomes_join_by_entity_and_some_never_come() -> None:
    sends = build_schedule(ScenarioSpec("purchase", count=500, seed=2), START)
    outcomes = [s.event for s in sends if isinstance(s.event, OutcomeObserved)]
    assert outcomes and all(o.prediction_id is None and o.entity_id for o in outcomes)
    assert len(outcomes) < 500


def test_some_outcomes_are_sent_before_their_prediction() -> None:
    sends = build_schedule(ScenarioSpec("ctr", count=500, seed=4), START)
    sent_at = {s.event.prediction_id: s.at for s in sends if isinstance(s.event, PredictionMade)}
    early = [
        s
        for s in sends
        if isinstance(s.event, OutcomeObserved) and s.at < sent_at[s.event.prediction_id]
    ]
    assert early


def test_feedback_and_malformed_messages_are_sprinkled_in() -> None:
    sends = build_schedule(ScenarioSpec("ctr", count=1000, seed=5, malformed_share=0.02), START)
    assert any(isinstance(s.event, FeedbackGiven) for s in sends)
    assert 5 < sum(s.event is None for s in sends) < 60


def test_unknown_scenario_names_the_choices() -> None:
    with pytest.raises(ValueError, match="ctr, purchase"):
        build_schedule(ScenarioSpec("weather"), START)
