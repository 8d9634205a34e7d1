"""Validation at the edge: every way a message can be refused, and what passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas import FeedbackGiven, OutcomeObserved, PredictionMade
from tests.conftest import TEST_MODELS
from workers.errors import RejectedInput
from workers.ingest.batch import sort_batch
from workers.ingest.decode import RawMessage, decode
from workers.settings import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
def settings() -> Settings:
    return Settings(kafka_bootstrap="x:1", database_url="postgresql://x/y", models=TEST_MODELS)


def raw(topic: str, value: bytes, offset: int = 0) -> RawMessage:
    return RawMessage(topic=topic, partition=0, offset=offset, key=None, value=value)


def prediction(**changes: object) -> bytes:
    body = {
        "event_id": "0b6b1f0e-7a39-4c55-9a0e-9a4f6f0c6d11",
        "prediction_id": "p1",
        "model": "ctr",
        "model_version": "v1",
        "prediction": 0.05,
        "features": {"channel": "search", "bid": 1.2},
        "predicted_at": NOW.isoformat(),
    }
    body.update(changes)
    return json.dumps(body).encode()


def rejection(settings: Settings, message: RawMessage) -> RejectedInput:
    with pytest.raises(RejectedInput) as info:
        decode(message, settings, NOW)
    return info.value


def test_valid_prediction_decodes(settings: Settings) -> None:
    event = decode(raw("ol.predictions", prediction()), settings, NOW)
    assert isinstance(event, PredictionMade)
    assert event.features == {"channel": "search", "bid": 1.2}


def test_garbage_bytes_are_invalid_json(settings: Settings) -> None:
    err = rejection(settings, raw("ol.predictions", b"\x00\xffnot json"))
    assert err.error_type == "invalid_json"
    assert "PredictionMade" in err.reason


def test_empty_message_is_refused(settings: Settings) -> None:
    assert rejection(settings, raw("ol.outcomes", b"")).error_type == "invalid_payload"


def test_missing_and_extra_fields_name_the_field(settings: Settings) -> None:
    missing = rejection(settings, raw("ol.predictions", json.dumps({"model": "ctr"}).encode()))
    assert missing.error_type == "schema_violation"
    assert "prediction_id" in missing.reason
    extra = rejection(settings, raw("ol.predictions", prediction(colour="red")))
    assert "colour" in extra.reason


def test_event_id_is_required_on_the_wire(settings: Settings) -> None:
    body = json.loads(prediction())
    del body["event_id"]
    err = rejection(settings, raw("ol.predictions", json.dumps(body).encode()))
    assert err.error_type == "schema_violation" and "event_id" in err.reason


def test_naive_times_are_refused(settings: Settings) -> None:
    err = rejection(settings, raw("ol.predictions", prediction(predicted_at="2026-11-23T12:00:00")))
    assert "predicted_at" in err.reason


def test_nested_features_are_refused(settings: Settings) -> None:
    err = rejection(settings, raw("ol.predictions", prediction(features={"a": {"b": 1}})))
    assert err.error_type == "schema_violation"


def test_unknown_model_lists_the_known_ones(settings: Settings) -> None:
    err = rejection(settings, raw("ol.predictions", prediction(model="nope")))
    assert err.error_type == "unknown_model"
    assert "ctr" in err.reason and "purchase" in err.reason


def test_far_future_time_is_impossible(settings: Settings) -> None:
    future = (NOW + timedelta(hours=2)).isoformat()
    err = rejection(settings, raw("ol.predictions", prediction(predicted_at=future)))
    assert err.error_type == "impossible_time"
    # Within the configured skew is fine.
    near = (NOW + timedelta(seconds=30)).isoformat()
    assert decode(raw("ol.predictions", prediction(predicted_at=near)), settings, NOW)


def test_outcome_needs_a_join_key(settings: Settings) -> None:
    body = {
        "event_id": "0b6b1f0e-7a39-4c55-9a0e-9a4f6f0c6d12",
        "outcome_kind": "click",
        "value": 1.0,
        "observed_at": NOW.isoformat(),
    }
    err = rejection(settings, raw("ol.outcomes", json.dumps(body).encode()))
    assert "prediction_id or entity_id" in err.reason


def test_nan_values_are_refused(settings: Settings) -> None:
    body = b'{"prediction_id": "p", "label": NaN, "given_at": "2026-11-23T12:00:00Z"}'
    assert rejection(settings, raw("ol.feedback", body)).error_type in {
        "invalid_json",
        "schema_violation",
    }


def test_sort_batch_keeps_order_and_origin(settings: Settings) -> None:
    outcome = OutcomeObserved(prediction_id="p1", outcome_kind="click", value=1.0, observed_at=NOW)
    feedback = FeedbackGiven(prediction_id="p1", label=0.0, given_at=NOW)
    batch = sort_batch(
        [
            raw("ol.predictions", prediction(), 0),
            raw("ol.outcomes", outcome.to_bytes(), 1),
            raw("ol.predictions", b"{", 2),
            raw("ol.feedback", feedback.to_bytes(), 3),
        ],
        settings,
        NOW,
    )
    assert [p.prediction_id for p in batch.predictions] == ["p1"]
    assert batch.outcomes == [outcome] and batch.feedback == [feedback]
    assert [(d.offset, d.error_type, d.payload) for d in batch.dead] == [(2, "invalid_json", b"{")]
    assert batch.origin[str(outcome.event_id)].offset == 1
