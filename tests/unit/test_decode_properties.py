"""Property-based: no input makes the decoders raise anything but a clear refusal, and
whatever they accept or dead-letter is within the limits."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from schemas import command_adapter
from tests.conftest import TEST_MODELS
from workers.errors import RejectedInput
from workers.ingest.batch import dead_letter, one_line, sort_batch
from workers.ingest.decode import RawMessage, decode
from workers.settings import Settings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SETTINGS = Settings(kafka_bootstrap="x:1", database_url="postgresql://x/y", models=TEST_MODELS)
TOPICS = ("ol.predictions", "ol.outcomes", "ol.feedback")

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=50)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)
times = st.datetimes(timezones=st.just(UTC)).map(lambda t: t.isoformat()) | st.text(max_size=30)
near_valid = st.fixed_dictionaries(
    {
        "event_id": st.uuids().map(str) | st.text(max_size=40),
        "prediction_id": st.text(max_size=30),
        "model": st.sampled_from(["ctr", "purchase", "nope", "", "x\n"]),
        "model_version": st.text(max_size=20),
        "prediction": scalars,
        "features": st.dictionaries(st.text(max_size=20), scalars, max_size=30),
        "predicted_at": times,
    },
    optional={
        "outcome_kind": st.text(max_size=10),
        "value": scalars,
        "entity_id": st.text(max_size=10),
        "label": scalars,
        "given_at": times,
        "observed_at": times,
    },
)


def _bytes(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True, default=str).encode()


def _check_accepted(event: Any) -> None:
    for value in [getattr(event, f, None) for f in ("prediction", "value", "label")]:
        if isinstance(value, float):
            assert math.isfinite(value) and abs(value) <= SETTINGS.limits.max_abs_number
    features = getattr(event, "features", {})
    assert len(features) <= SETTINGS.limits.max_features
    for v in features.values():
        if isinstance(v, int | float) and not isinstance(v, bool):
            assert abs(v) <= SETTINGS.limits.max_abs_number
    if getattr(event, "model", None) == "purchase" and hasattr(event, "prediction"):
        assert 0 <= event.prediction <= 1


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(TOPICS), body=st.binary(max_size=300) | json_values.map(_bytes))
def test_any_bytes_decode_or_are_refused_clearly(topic: str, body: bytes) -> None:
    try:
        event = decode(RawMessage(topic, 0, 0, None, body), SETTINGS, NOW)
    except RejectedInput as exc:
        assert exc.reason and exc.error_type and "\n" not in one_line(exc.reason, 1000)
    else:
        _check_accepted(event)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic=st.sampled_from(TOPICS), body=near_valid.map(_bytes))
def test_near_valid_events_decode_within_limits_or_are_refused(topic: str, body: bytes) -> None:
    batch = sort_batch([RawMessage(topic, 0, 0, None, body)], SETTINGS, NOW)
    assert batch.valid_count + len(batch.dead) == 1
    for event in [*batch.predictions, *batch.outcomes, *batch.feedback]:
        _check_accepted(event)
    for letter in batch.dead:
        assert len(letter.reason) <= SETTINGS.limits.reason_chars
        assert letter.payload == body[: SETTINGS.limits.dead_letter_payload_bytes]


@settings(max_examples=200, deadline=None)
@given(
    value=st.binary(max_size=2000),
    reason=st.text(max_size=3000),
    key=st.none() | st.binary(max_size=3000),
)
def test_a_dead_letter_is_always_within_its_limits(
    value: bytes, reason: str, key: bytes | None
) -> None:
    small = SETTINGS.limits.model_copy(
        update={"dead_letter_payload_bytes": 1024, "reason_chars": 80}
    )
    letter = dead_letter(RawMessage("t", 0, 0, key, value), reason, "x", small)
    assert len(letter.payload) <= 1024 and letter.original_bytes == len(value)
    assert len(letter.reason) <= 80 and letter.reason.isprintable()
    assert letter.key is None or len(letter.key) <= 1024


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300) | json_values.map(_bytes))
def test_command_decoding_only_ever_refuses_with_a_validation_error(body: bytes) -> None:
    try:
        command = command_adapter.validate_json(body)
    except ValidationError as exc:
        assert exc.error_count() > 0
    else:
        assert command.model and command.issued_at.tzinfo is not None
