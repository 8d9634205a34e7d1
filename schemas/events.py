"""Events: facts that happened, named in the past tense."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from schemas.base import AwareTime, Features, Identifier, Message, Number, utc_now


class PredictionMade(Message):
    """A model scored something. `prediction` is the regression value or P(positive)."""

    kind: Literal["prediction"] = "prediction"
    prediction_id: Identifier
    model: Identifier
    model_version: Identifier
    entity_id: Identifier | None = Field(None, description="joins outcomes that carry no id")
    features: Features = Field(default_factory=dict, description="inputs as of prediction time")
    prediction: Number
    predicted_class: Identifier | None = Field(None, description="class label, if a classifier")
    predicted_at: AwareTime = Field(default_factory=utc_now)


class OutcomeObserved(Message):
    """What really happened: a purchase, a click, a measured rate."""

    kind: Literal["outcome"] = "outcome"
    prediction_id: Identifier | None = None
    entity_id: Identifier | None = None
    model: Identifier | None = Field(None, description="limits entity attribution to one model")
    outcome_kind: Identifier = Field(..., description="e.g. purchase, click, measured")
    value: Number = Field(..., description="1.0 for an event, or a rate")
    observed_at: AwareTime = Field(default_factory=utc_now)

    @model_validator(mode="after")
    def _has_join_key(self) -> OutcomeObserved:
        if self.prediction_id is None and self.entity_id is None:
            raise ValueError("an outcome needs prediction_id or entity_id to be joined")
        return self


class FeedbackGiven(Message):
    """A human correction or an override of a prediction's label."""

    kind: Literal["feedback"] = "feedback"
    prediction_id: Identifier
    label: Number
    source: Identifier = Field("human", description="e.g. human, override, audit")
    given_at: AwareTime = Field(default_factory=utc_now)


IngestEvent = PredictionMade | OutcomeObserved | FeedbackGiven


def event_time(event: IngestEvent) -> datetime:
    if isinstance(event, PredictionMade):
        return event.predicted_at
    if isinstance(event, OutcomeObserved):
        return event.observed_at
    return event.given_at
