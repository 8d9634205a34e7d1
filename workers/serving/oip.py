"""Open Inference Protocol v2 requests and responses (the KServe / MLServer / Triton REST
convention), for tabular models: one input tensor per feature, one row per element. Pure.

Request::

    {"id": "r1", "inputs": [
        {"name": "x", "shape": [2], "datatype": "FP64", "data": [0.1, 0.7]},
        {"name": "channel", "shape": [2], "datatype": "BYTES", "data": ["search", "social"]},
        {"name": "entity_id", "shape": [2], "datatype": "BYTES", "data": ["u1", "u2"]}]}

``entity_id`` and ``prediction_id`` are optional inputs that are not features: the logged
``PredictionMade`` carries them (a prediction_id is made when none is given).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NUMERIC = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32"}
DATATYPES = NUMERIC | {"BOOL", "BYTES"}
ID_INPUTS = ("entity_id", "prediction_id")
MAX_ROWS = 10_000


class InferenceError(ValueError):
    """A request the protocol or the model cannot take: answered 400 with this message."""


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    rows: list[dict[str, Any]]
    entity_ids: list[str | None]
    prediction_ids: list[str | None]


def _column(tensor: Mapping[str, Any]) -> tuple[str, list[Any]]:
    name = tensor.get("name")
    if not isinstance(name, str) or not name:
        raise InferenceError("every input needs a non-empty 'name'")
    datatype = tensor.get("datatype")
    if datatype not in DATATYPES:
        raise InferenceError(f"input {name!r}: datatype {datatype!r} is not one of the OIP types")
    data = tensor.get("data")
    if not isinstance(data, list):
        raise InferenceError(f"input {name!r}: 'data' must be a list")
    # OIP allows nested (row-major) data; a tabular feature is one value per row.
    flat = [v for row in data for v in row] if data and isinstance(data[0], list) else data
    shape = tensor.get("shape")
    if (
        not isinstance(shape, list)
        or not all(isinstance(d, int) for d in shape)
        or math.prod(shape) != len(flat)
        or any(d != 1 for d in shape[1:])
    ):
        raise InferenceError(
            f"input {name!r}: shape {shape!r} must be [rows] or [rows, 1] and match the "
            f"{len(flat)} values given"
        )
    for value in flat:
        if datatype == "BYTES":
            ok = isinstance(value, str)
        elif datatype == "BOOL":
            ok = isinstance(value, bool)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            ok = ok and math.isfinite(value)
        if not ok:
            raise InferenceError(f"input {name!r}: {value!r} is not a valid {datatype} value")
    return name, flat


def parse_request(body: Any, *, features: Sequence[str]) -> InferRequest:
    """The request's rows, or InferenceError naming what is wrong. ``features`` are the
    model's declared inputs (empty: any input that is not an id is a feature)."""
    if not isinstance(body, dict):
        raise InferenceError("the request body must be a JSON object")
    inputs = body.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise InferenceError("'inputs' must be a non-empty list of tensors")
    columns: dict[str, list[Any]] = {}
    for tensor in inputs:
        if not isinstance(tensor, dict):
            raise InferenceError("each input must be an object")
        name, values = _column(tensor)
        if name in columns:
            raise InferenceError(f"input {name!r} is given twice")
        columns[name] = values
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise InferenceError(f"inputs have different lengths: {sorted(lengths)}")
    n = lengths.pop()
    if not 1 <= n <= MAX_ROWS:
        raise InferenceError(f"{n} rows: a request carries 1 to {MAX_ROWS}")
    ids = {k: columns.pop(k) for k in ID_INPUTS if k in columns}
    if features:
        unknown = sorted(set(columns) - set(features))
        if unknown:
            raise InferenceError(f"inputs {unknown} are not features of this model")
        missing = sorted(set(features) - set(columns))
        if missing:
            raise InferenceError(f"features {missing} are missing")
    if not columns:
        raise InferenceError("no feature inputs")
    names = list(columns)
    rows = [{name: columns[name][i] for name in names} for i in range(n)]
    request_id = body.get("id")
    return InferRequest(
        id=str(request_id) if request_id is not None else None,
        rows=rows,
        entity_ids=list(ids.get("entity_id", [None] * n)),
        prediction_ids=list(ids.get("prediction_id", [None] * n)),
    )


def tensor(name: str, datatype: str, data: list[Any]) -> dict[str, Any]:
    return {"name": name, "shape": [len(data)], "datatype": datatype, "data": data}


def model_metadata(
    model: str, task: str, features: Mapping[str, str], versions: Sequence[str]
) -> dict[str, Any]:
    """``features``: name -> OIP datatype (FP64 for numbers, BYTES for categories)."""
    return {
        "name": model,
        "versions": list(versions),
        "platform": f"outcomeloop-{task}",
        "inputs": [{"name": f, "datatype": t, "shape": [-1]} for f, t in features.items()]
        + [{"name": k, "datatype": "BYTES", "shape": [-1], "optional": True} for k in ID_INPUTS],
        "outputs": [
            {"name": "prediction", "datatype": "FP64", "shape": [-1]},
            {"name": "prediction_id", "datatype": "BYTES", "shape": [-1]},
            {"name": "model_version", "datatype": "BYTES", "shape": [-1]},
            {"name": "source", "datatype": "BYTES", "shape": [-1]},
            {"name": "uncertain", "datatype": "BOOL", "shape": [-1]},
        ],
    }
