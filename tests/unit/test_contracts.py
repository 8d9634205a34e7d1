"""The contracts: frozen, strict, and the exported JSON Schema files in step with them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import ValidationError

from schemas import PredictionMade, RetrainModel, command_adapter
from schemas.export import ASYNCAPI_FILE, JSON_DIR, WIRE_CONTRACTS, expected_files, render_asyncapi
from workers.settings import TopicsConfig


def test_json_schema_files_match_the_models() -> None:
    expected = expected_files()
    on_disk = {p.name: p.read_text() for p in JSON_DIR.glob("*.schema.json")}
    assert on_disk.keys() == expected.keys(), "run `make schemas`"
    for name, text in expected.items():
        assert on_disk[name] == text, f"{name} is stale: run `make schemas`"


def test_asyncapi_document_matches_the_models() -> None:
    assert ASYNCAPI_FILE.read_text() == render_asyncapi(), "stale: run `make schemas`"


def _resolve(doc: dict[str, Any], node: Any) -> Any:
    """``node``, or what its local $ref points at (a JSON pointer into ``doc``)."""
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        assert ref.startswith("#/"), ref
        node = doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_asyncapi_document_is_structurally_valid() -> None:
    """AsyncAPI 3.0: every topic is a channel with messages that have a payload schema
    and a Kafka key; every operation names a channel and messages of it; every $ref
    resolves; producers' payloads are the JSON Schema files; examples are valid."""
    doc = json.loads(ASYNCAPI_FILE.read_text())
    assert doc["asyncapi"] == "3.0.0"
    assert doc["info"]["title"] and isinstance(doc["info"]["version"], str)
    for ref in _refs(doc):
        assert _resolve(doc, {"$ref": ref}) is not None, ref
    channels = doc["channels"]
    assert {c["address"] for c in channels.values()} == set(TopicsConfig().all_names())
    for name, channel in channels.items():
        assert channel["bindings"]["kafka"]["topic"] == channel["address"]
        assert channel["messages"], name
        for message in channel["messages"].values():
            message = _resolve(doc, message)
            assert message["contentType"] and message["bindings"]["kafka"]["key"], name
            payload = _resolve(doc, message["payload"])
            assert isinstance(payload, dict) and (payload.get("type") or payload["description"])
            for example in message.get("examples", []):
                Draft202012Validator(payload).validate(example["payload"])
    for name, operation in doc["operations"].items():
        assert operation["action"] in ("send", "receive"), name
        channel = _resolve(doc, operation["channel"])
        for message in operation["messages"]:
            assert message["$ref"].startswith(operation["channel"]["$ref"] + "/messages/")
            assert _resolve(doc, message) in [
                _resolve(doc, m) for m in channel["messages"].values()
            ]
    assert {_resolve(doc, op["channel"])["address"] for op in doc["operations"].values()} == {
        c["address"] for c in channels.values()
    }
    for contract in WIRE_CONTRACTS:
        embedded = doc["components"]["schemas"][contract.__name__]
        on_file = json.loads((JSON_DIR / f"{contract.__name__}.schema.json").read_text())
        assert embedded == {k: v for k, v in on_file.items() if k not in ("$schema", "$id")}


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
