"""The contracts: frozen, strict, and the exported JSON Schema files in step with them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas import PredictionMade, RetrainModel, command_adapter
from schemas.export import JSON_DIR, expected_files


def test_json_schema_files_match_the_models() -> None:
    expected = expected_files()
    on_disk = {p.name: p.read_text() for p in JSON_DIR.glob("*.schema.json")}
    assert on_disk.keys() == expected.keys(), "run `make schemas`"
    for name, text in expected.items():
        assert on_disk[name] == text, f"{name} is stale: run `make schemas`"


def test_schema_files_forbid_unknown_fields() -> None:
    schema = json.loads((JSON_DIR / "PredictionMade.schema.json").read_text())
    assert schema["additionalProperties"] is False
    assert {"prediction_id", "model", "model_version", "prediction"} <= set(schema["required"])


def test_events_are_frozen() -> None:
    event = PredictionMade(prediction_id="p", model="m", model_version="1", prediction=0.1)
    with pytest.raises(ValidationError):
        event.prediction = 0.2  # type: ignore[misc]


def test_event_round_trips_through_bytes() -> None:
    event = PredictionMade(
        prediction_id="p",
        model="m",
        model_version="1",
        prediction=0.1,
        predicted_at=datetime(2026, 1, 1, tzinfo=UTC),
        features={"a": 1, "b": "x", "c": None},
    )
    assert PredictionMade.model_validate_json(event.to_bytes()) == event


def test_commands_decode_by_their_verb() -> None:
    cmd = RetrainModel(model="ctr", issued_by="alice", reason="MAE too high")
    decoded = command_adapter.validate_json(cmd.to_bytes())
    assert isinstance(decoded, RetrainModel)
    assert decoded.command_id == str(cmd.event_id)
    with pytest.raises(ValidationError):
        command_adapter.validate_json(b'{"command": "explode", "model": "x", "issued_by": "y"}')
