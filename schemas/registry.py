"""Events about model versions, published on ol.models, and command results."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from schemas.base import AwareTime, Identifier, Message, utc_now


class ModelRegistered(Message):
    """A retrain produced a version that passed its gates."""

    kind: Literal["registered"] = "registered"
    model: Identifier
    version: Identifier
    status: Literal["candidate", "champion"]
    run_id: int | None = None
    metrics: dict[str, float] = Field(default_factory=dict)
    registered_at: AwareTime = Field(default_factory=utc_now)


class ModelPromoted(Message):
    """The champion alias moved: serving clients reload on this."""

    kind: Literal["promoted"] = "promoted"
    model: Identifier
    version: Identifier
    previous_version: Identifier | None = None
    artifact_dir: str | None = None
    files: dict[str, str] = Field(default_factory=dict, description="file name -> sha256")
    by: Identifier
    reason: str = ""
    rollback: bool = False
    promoted_at: AwareTime = Field(default_factory=utc_now)


class ModelRejected(Message):
    """A version was refused: by its gates, an operator, or an approval that timed out."""

    kind: Literal["rejected"] = "rejected"
    model: Identifier
    version: Identifier | None = None
    run_id: int | None = None
    by: Identifier
    reason: str
    status: Literal["rejected", "expired", "gated"] = "rejected"
    rejected_at: AwareTime = Field(default_factory=utc_now)


class CommandResult(Message):
    """What became of a command, on ol.control.results; `event_id` is new, `command_id` links."""

    command_id: str
    command: Identifier
    model: Identifier
    status: Literal["accepted", "done", "refused", "failed"]
    detail: str = ""
    data: dict[str, Any] = Field(default_factory=dict)
    replayed: bool = False
    at: AwareTime = Field(default_factory=utc_now)


class ChallengerAhead(Message):
    """An online challenger beat the champion by the configured margin on the same
    matured examples: one event per episode."""

    kind: Literal["challenger_ahead"] = "challenger_ahead"
    model: Identifier
    challenger: Identifier
    metric: Identifier
    challenger_value: float
    champion_value: float
    improvement: float = Field(..., description="relative, positive is better")
    examples: int = Field(..., ge=0)
    detected_at: AwareTime = Field(default_factory=utc_now)


LoopState = Literal[
    "healthy",
    "deferred",
    "waiting_for_evidence",
    "training",
    "backoff",
    "awaiting_approval",
    "exhausted",
]


class RetrainStateChanged(Message):
    """The retrain controller of a model moved: healthy → waiting for evidence → training →
    promoted (healthy again) or gated → backoff → retry … → exhausted. On ol.models."""

    kind: Literal["retrain_state"] = "retrain_state"
    model: Identifier
    state: LoopState
    previous: LoopState
    version: Identifier | None = Field(None, description="the version being replaced")
    change_at: AwareTime | None = Field(
        None, description="when the change began, in prediction time: training data starts here"
    )
    attempts: int = Field(0, ge=0)
    post_change_rows: int = Field(0, ge=0, description="matured examples after change_at")
    needed_rows: int = Field(0, ge=0, description="what the next run waits for")
    reason: str = ""
    changed_at: AwareTime = Field(default_factory=utc_now)


class RetrainExhausted(Message):
    """Quality stayed bad through every allowed retrain: a person has to look. On ol.drift,
    once per degradation."""

    kind: Literal["retrain_exhausted"] = "retrain_exhausted"
    model: Identifier
    version: Identifier | None = None
    attempts: int = Field(..., ge=0)
    change_at: AwareTime | None = None
    last_reason: str = ""
    raised_at: AwareTime = Field(default_factory=utc_now)
