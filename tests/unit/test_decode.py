"""Validation at the edge: every way a message can be refused, and what passes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from schemas import FeedbackGiven, OutcomeObserved, PredictionMade
from tests.conftest import TEST_MODELS
from workers.errors import RejectedInput
from workers.ingest.batch import BatchSorter, sort_batch
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


def test_a_batch_sorted_in_parts_is_the_batch_sorted_at_once(settings: Settings) -> None:
    raws = [
        raw("ol.predictions", prediction(prediction_id=f"p{i}", event_id=str(uuid4())), i)
        if i % 5
        else raw("ol.predictions", b"{", i)
        for i in range(23)
    ]
    whole = sort_batch(raws, settings, NOW)
    sorter = BatchSorter(settings, NOW)
    for start in range(0, len(raws), 4):
        sorter.add(raws[start : start + 4])
    parts = sorter.batch
    assert [p.prediction_id for p in parts.predictions] == [
        p.prediction_id for p in whole.predictions
    ]
    assert len(parts.predictions) == 18
    assert [d.offset for d in parts.dead] == [d.offset for d in whole.dead] == [0, 5, 10, 15, 20]
    assert parts.origin.keys() == whole.origin.keys() and len(parts.origin) == 18


@pytest.mark.parametrize(
    ("changes", "error_type", "says"),
    [
        ({"features": {"n": 10**400}}, "out_of_range", "integer of 401 digits"),
        ({"features": {"n": 1e300}}, "out_of_range", "limits.max_abs_number"),
        ({"prediction": 1e308}, "out_of_range", "limits.max_abs_number"),
        ({"features": {"s": "x" * 5000}}, "out_of_range", "5000 characters"),
        ({"features": {f"f{i}": i for i in range(501)}}, "too_many_features", "501 features"),
        ({"predicted_at": "2001-01-01T00:00:00+00:00"}, "impossible_time", "max_event_age"),
        ({"model": "x\nINFO forged line"}, "unknown_model", "'x\\nINFO forged line'"),
    ],
)
def test_limits_are_checked_at_the_edge(
    settings: Settings, changes: dict[str, object], error_type: str, says: str
) -> None:
    err = rejection(settings, raw("ol.predictions", prediction(**changes)))
    assert err.error_type == error_type
    assert says in err.reason
    assert len(err.reason) < 400  # a reason names the problem; it does not copy the input
    assert "\n" not in err.reason  # nor can it forge a line in a log


def test_a_binary_models_prediction_is_a_probability(settings: Settings) -> None:
    err = rejection(settings, raw("ol.predictions", prediction(model="purchase", prediction=1.5)))
    assert err.error_type == "out_of_range" and "[0, 1]" in err.reason
    ok = decode(raw("ol.predictions", prediction(model="purchase", prediction=1.0)), settings, NOW)
    assert isinstance(ok, PredictionMade)


def test_oversized_messages_are_refused_before_parsing(settings: Settings) -> None:
    huge = prediction(features={"s": "x" * 1000}) + b" " * 1_100_000
    err = rejection(settings, raw("ol.predictions", huge))
    assert err.error_type == "too_large" and "limits.max_message_bytes" in err.reason


def test_undeclared_features_are_dropped_or_refused() -> None:
    declared = {"ctr": TEST_MODELS["ctr"].model_copy(update={"features": ("channel",)})}
    s = Settings(kafka_bootstrap="x:1", database_url="postgresql://x/y", models=declared)
    event = decode(raw("ol.predictions", prediction()), s, NOW)
    assert isinstance(event, PredictionMade) and event.features == {"channel": "search"}
    strict = s.model_copy(
        update={"limits": s.limits.model_copy(update={"undeclared_features": "refuse"})}
    )
    err = rejection(strict, raw("ol.predictions", prediction()))
    assert err.error_type == "undeclared_feature" and "'bid'" in err.reason


def test_outcome_and_feedback_numbers_are_bounded(settings: Settings) -> None:
    outcome = {
        "event_id": "1b6b1f0e-7a39-4c55-9a0e-9a4f6f0c6d11",
        "prediction_id": "p1",
        "outcome_kind": "measured",
        "value": 1e200,
        "observed_at": NOW.isoformat(),
    }
    err = rejection(settings, raw("ol.outcomes", json.dumps(outcome).encode()))
    assert err.error_type == "out_of_range" and "value" in err.reason


def test_a_dead_letter_always_fits(settings: Settings) -> None:
    """5 MB of garbage: the letter keeps the first bytes, the size and sha256 of the
    whole, and a one-line reason within its limit."""
    import hashlib

    from workers.ingest.batch import dead_letter

    value = b"\x00" + b"y" * 5_000_000
    letter = dead_letter(
        raw("ol.predictions", value), "bad\nINFO forged" + "!" * 5000, "x", settings.limits
    )
    assert len(letter.payload) == settings.limits.dead_letter_payload_bytes
    assert letter.payload == value[: len(letter.payload)] and letter.truncated
    assert letter.original_bytes == len(value)
    assert letter.sha256 == hashlib.sha256(value).hexdigest()
    assert len(letter.reason) <= settings.limits.reason_chars and "\n" not in letter.reason
    assert letter.reason.startswith("bad\\nINFO forged")
    small = dead_letter(raw("ol.predictions", b"{}"), "short", "x", settings.limits)
    assert small.payload == b"{}" and not small.truncated and small.reason == "short"


def test_log_lines_cannot_be_forged() -> None:
    from workers import logs

    logs.install()
    rec = logs.record("refused %s from %s", "retrain", "mallory\n2026-01-01 INFO approved by admin")
    assert rec.getMessage() == ("refused retrain from mallory\\n2026-01-01 INFO approved by admin")
    assert logs.record("plain %d", 3).getMessage() == "plain 3"
