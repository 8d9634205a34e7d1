"""Bytes from a topic to a validated event, or a clear reason why not. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from schemas.events import FeedbackGiven, IngestEvent, OutcomeObserved, PredictionMade, event_time
from workers.errors import RejectedInput
from workers.settings import Settings

Kind = Literal["prediction", "outcome", "feedback"]
_CONTRACTS: dict[Kind, type[PredictionMade] | type[OutcomeObserved] | type[FeedbackGiven]] = {
    "prediction": PredictionMade,
    "outcome": OutcomeObserved,
    "feedback": FeedbackGiven,
}


@dataclass(frozen=True, slots=True)
class RawMessage:
    """A message as it came off Kafka: enough to dead-letter it faithfully."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def kind_of_topic(topic: str, settings: Settings) -> Kind | None:
    names = settings.topics
    return {
        names.predictions: "prediction",
        names.outcomes: "outcome",
        names.feedback: "feedback",
    }.get(
        topic  # type: ignore[return-value]
    )


def _validation_reason(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def decode(raw: RawMessage, settings: Settings, now: datetime) -> IngestEvent:
    """Validate ``raw`` against the contract of its topic, or raise ``RejectedInput``."""
    kind = kind_of_topic(raw.topic, settings)
    if kind is None:
        raise RejectedInput(f"no contract for topic {raw.topic!r}", error_type="unknown_topic")
    if not raw.value:
        raise RejectedInput("empty message", error_type="invalid_payload")
    contract = _CONTRACTS[kind]
    try:
        event = contract.model_validate_json(raw.value)
    except ValidationError as exc:
        json_broken = any(e["type"] == "json_invalid" for e in exc.errors())
        raise RejectedInput(
            f"{contract.__name__}: {_validation_reason(exc)}",
            error_type="invalid_json" if json_broken else "schema_violation",
        ) from None
    if "event_id" not in event.model_fields_set:
        raise RejectedInput(
            f"{contract.__name__}: event_id is required, so a redelivery can be recognised",
            error_type="schema_violation",
        )
    check_event(event, settings, now)
    return event


def check_event(event: IngestEvent, settings: Settings, now: datetime) -> None:
    """Rules the schema alone cannot express: known models and possible times."""
    model = event.model if isinstance(event, PredictionMade | OutcomeObserved) else None
    if model is not None and settings.model(model) is None:
        known = ", ".join(sorted(settings.models)) or "none configured"
        raise RejectedInput(f"unknown model {model!r} (known: {known})", error_type="unknown_model")
    when = event_time(event)
    skew = timedelta(seconds=settings.time.max_future_skew_seconds)
    if when > now + skew:
        raise RejectedInput(
            f"event time {when.isoformat()} is more than {skew.total_seconds():.0f}s "
            f"after the worker's clock ({now.isoformat()})",
            error_type="impossible_time",
        )
