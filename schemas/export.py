"""Write one JSON Schema file per contract into schemas/json (run: make schemas)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from schemas import (
    ApproveVersion,
    ChallengerAhead,
    CommandResult,
    DriftDetected,
    FeedbackGiven,
    LagMeasured,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    OutcomeObserved,
    PauseModel,
    PredictionMade,
    QualityAlertRaised,
    RejectVersion,
    ResumeModel,
    RetrainExhausted,
    RetrainModel,
    RetrainStateChanged,
    RollbackModel,
)

JSON_DIR = Path(__file__).resolve().parent / "json"
CONTRACTS: tuple[type[BaseModel], ...] = (
    PredictionMade,
    OutcomeObserved,
    FeedbackGiven,
    RetrainModel,
    ApproveVersion,
    RejectVersion,
    RollbackModel,
    PauseModel,
    ResumeModel,
    DriftDetected,
    QualityAlertRaised,
    LagMeasured,
    ModelRegistered,
    ModelPromoted,
    ModelRejected,
    CommandResult,
    ChallengerAhead,
    RetrainStateChanged,
    RetrainExhausted,
)


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = f"outcomeloop/{model.__name__}.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def expected_files() -> dict[str, str]:
    return {f"{model.__name__}.schema.json": render(model) for model in CONTRACTS}


def main() -> None:
    JSON_DIR.mkdir(exist_ok=True)
    expected = expected_files()
    for stale in JSON_DIR.glob("*.schema.json"):
        if stale.name not in expected:
            stale.unlink()
    for name, text in expected.items():
        (JSON_DIR / name).write_text(text)
    print(f"wrote {len(expected)} schema files to {JSON_DIR}")


if __name__ == "__main__":
    main()
