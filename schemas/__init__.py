"""Outcome Loop's event contracts, importable by producers.

Every message is a frozen pydantic model that rejects unknown fields and carries an
``event_id``, a tz-aware time and a ``schema_version``. JSON Schema files for producers
in other languages live in ``schemas/json`` (``make schemas`` re-exports them).
"""

from schemas.base import Message
from schemas.commands import (
    ApproveVersion,
    Command,
    ControlCommand,
    PauseModel,
    RejectVersion,
    ResumeModel,
    RetrainModel,
    RollbackModel,
    command_adapter,
)
from schemas.events import FeedbackGiven, IngestEvent, OutcomeObserved, PredictionMade
from schemas.monitoring import DriftDetected, LagMeasured, PartitionLag, QualityAlertRaised
from schemas.registry import (
    ChallengerAhead,
    CommandResult,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    RetrainExhausted,
    RetrainStateChanged,
)

__all__ = [
    "ApproveVersion",
    "ChallengerAhead",
    "Command",
    "CommandResult",
    "ControlCommand",
    "DriftDetected",
    "FeedbackGiven",
    "IngestEvent",
    "LagMeasured",
    "Message",
    "ModelPromoted",
    "ModelRegistered",
    "ModelRejected",
    "OutcomeObserved",
    "PartitionLag",
    "PauseModel",
    "PredictionMade",
    "QualityAlertRaised",
    "RejectVersion",
    "ResumeModel",
    "RetrainExhausted",
    "RetrainModel",
    "RetrainStateChanged",
    "RollbackModel",
    "command_adapter",
]
