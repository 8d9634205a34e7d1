"""Open Inference Protocol v2 requests: rows from tensors, or a clear 400 reason."""

from __future__ import annotations

from typing import Any

import pytest

from workers.serving.oip import InferenceError, model_metadata, parse_request


def tensor(
    name: str, datatype: str, data: list[Any], shape: list[int] | None = None
) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape or [len(data)], "data": data}


def test_columns_become_rows_and_ids_are_not_features() -> None:
    body = {
        "id": "r1",
        "inputs": [
            tensor("x", "FP64", [0.1, 0.7]),
            tensor("channel", "BYTES", ["search", "social"]),
            tensor("n", "INT64", [3, 4], shape=[2, 1]),
            tensor("entity_id", "BYTES", ["u1", "u2"]),
        ],
    }
    parsed = parse_request(body, features=())
    assert parsed.id == "r1"
    assert parsed.rows == [
        {"x": 0.1, "channel": "search", "n": 3},
        {"x": 0.7, "channel": "social", "n": 4},
    ]
    assert parsed.entity_ids == ["u1", "u2"]
    assert parsed.prediction_ids == [None, None]


def test_nested_row_major_data_is_accepted() -> None:
    parsed = parse_request({"inputs": [tensor("x", "FP32", [[1.0], [2.0]], [2, 1])]}, features=())
    assert parsed.rows == [{"x": 1.0}, {"x": 2.0}]


@pytest.mark.parametrize(
    ("body", "complaint"),
    [
        ([], "JSON object"),
        ({"inputs": []}, "non-empty"),
        ({"inputs": [tensor("x", "FP64", [1.0, 2.0], [3])]}, "shape"),
        ({"inputs": [tensor("x", "FP64", [1.0, 2.0], [1, 2])]}, "shape"),
        ({"inputs": [tensor("x", "FP64", ["1.0"])]}, "not a valid FP64"),
        ({"inputs": [tensor("x", "FP64", [True])]}, "not a valid FP64"),
        ({"inputs": [tensor("x", "BYTES", [1])]}, "not a valid BYTES"),
        ({"inputs": [tensor("x", "COMPLEX", [1])]}, "datatype"),
        ({"inputs": [tensor("x", "FP64", [1.0]), tensor("y", "FP64", [1.0, 2.0])]}, "lengths"),
        ({"inputs": [tensor("x", "FP64", [1.0]), tensor("x", "FP64", [2.0])]}, "twice"),
        ({"inputs": [tensor("entity_id", "BYTES", ["u1"])]}, "no feature"),
        ({"inputs": [{"datatype": "FP64", "shape": [1], "data": [1.0]}]}, "name"),
    ],
)
def test_bad_requests_say_what_is_wrong(body: Any, complaint: str) -> None:
    with pytest.raises(InferenceError, match=complaint):
        parse_request(body, features=())


def test_declared_features_must_match_exactly() -> None:
    with pytest.raises(InferenceError, match=r"\['z'\] are not features"):
        parse_request(
            {"inputs": [tensor("x", "FP64", [1.0]), tensor("z", "FP64", [1.0])]}, features=["x"]
        )
    with pytest.raises(InferenceError, match=r"features \['y'\] are missing"):
        parse_request({"inputs": [tensor("x", "FP64", [1.0])]}, features=["x", "y"])


def test_metadata_lists_inputs_with_their_types_and_the_outputs() -> None:
    meta = model_metadata("ctr", "regression", {"x": "FP64", "channel": "BYTES"}, ["v1"])
    assert meta["versions"] == ["v1"]
    assert {i["name"]: i["datatype"] for i in meta["inputs"]} == {
        "x": "FP64",
        "channel": "BYTES",
        "entity_id": "BYTES",
        "prediction_id": "BYTES",
    }
    assert [o["name"] for o in meta["outputs"]][:2] == ["prediction", "prediction_id"]
