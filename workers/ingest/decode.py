"""Bytes from a topic to a validated event, or a clear reason why not. Pure."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from pydantic import ValidationError

from schemas.events import FeedbackGiven, IngestEvent, OutcomeObserved, PredictionMade, event_time
from workers import metrics
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


def validation_reason(exc: ValidationError) -> str:
    """Where and what, never the input itself (which may be megabytes or forged text)."""
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
    limit = settings.limits.max_message_bytes
    if len(raw.value) > limit:
        raise RejectedInput(
            f"message of {len(raw.value)} bytes is over the {limit}-byte limit "
            "(limits.max_message_bytes)",
            error_type="too_large",
        )
    contract = _CONTRACTS[kind]
    try:
        event = contract.model_validate_json(raw.value)
    except ValidationError as exc:
        json_broken = any(e["type"] == "json_invalid" for e in exc.errors())
        raise RejectedInput(
            f"{contract.__name__}: {validation_reason(exc)}",
            error_type="invalid_json" if json_broken else "schema_violation",
        ) from None
    if "event_id" not in event.model_fields_set:
        raise RejectedInput(
            f"{contract.__name__}: event_id is required, so a redelivery can be recognised",
            error_type="schema_violation",
        )
    return check_event(event, settings, now)


def check_event(event: IngestEvent, settings: Settings, now: datetime) -> IngestEvent:
    """Rules the schema alone cannot express: known models, possible times, and the
    limits; returns the event as it will be stored (undeclared features dropped)."""
    model = event.model if isinstance(event, PredictionMade | OutcomeObserved) else None
    cfg = settings.model(model) if model is not None else None
    if model is not None and cfg is None:
        known = ", ".join(sorted(settings.models)) or "none configured"
        raise RejectedInput(
            f"unknown model {_show(model)} (known: {known})", error_type="unknown_model"
        )
    when = event_time(event)
    skew = timedelta(seconds=settings.time.max_future_skew_seconds)
    if when > now + skew:
        raise RejectedInput(
            f"event time {when.isoformat()} is more than {skew.total_seconds():.0f}s "
            f"after the worker's clock ({now.isoformat()})",
            error_type="impossible_time",
        )
    age = timedelta(seconds=settings.time.max_event_age_seconds)
    if when < now - age:
        raise RejectedInput(
            f"event time {when.isoformat()} is more than {age.total_seconds():.0f}s before "
            f"the worker's clock (time.max_event_age_seconds)",
            error_type="impossible_time",
        )
    limits = settings.limits
    if isinstance(event, PredictionMade):
        assert cfg is not None
        _check_number("prediction", event.prediction, limits.max_abs_number)
        if cfg.task == "binary" and not 0.0 <= event.prediction <= 1.0:
            raise RejectedInput(
                f"prediction {event.prediction!r} of binary model {model!r} is not a "
                "probability in [0, 1]",
                error_type="out_of_range",
            )
        return _checked_features(event, cfg.features, settings)
    if isinstance(event, OutcomeObserved):
        _check_number("value", event.value, limits.max_abs_number)
    else:
        _check_number("label", event.label, limits.max_abs_number)
    return event


def _show(text: str, limit: int = 60) -> str:
    """Producer text as it may appear in a reason or a log line: quoted, escaped, short."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _check_number(name: str, value: float | int, bound: float) -> None:
    # Python ints have no size limit: compare before any float conversion can overflow.
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > bound:
        shown = (
            f"{value:.6g}"
            if isinstance(value, float)
            else f"an integer of {len(str(value))} digits"
        )
        raise RejectedInput(
            f"{name} {shown} is beyond ±{bound:g} (limits.max_abs_number)",
            error_type="out_of_range",
        )


def _checked_features(
    event: PredictionMade, declared: tuple[str, ...], settings: Settings
) -> PredictionMade:
    limits = settings.limits
    features = event.features
    if len(features) > limits.max_features:
        raise RejectedInput(
            f"{len(features)} features, over the limit of {limits.max_features} "
            "(limits.max_features)",
            error_type="too_many_features",
        )
    for name, value in features.items():
        if isinstance(value, str):
            if len(value) > limits.max_string_length:
                raise RejectedInput(
                    f"feature {_show(name)} is a string of {len(value)} characters, over "
                    f"{limits.max_string_length} (limits.max_string_length)",
                    error_type="out_of_range",
                )
        elif isinstance(value, int | float) and not isinstance(value, bool):
            _check_number(f"feature {_show(name)}", value, limits.max_abs_number)
    if not declared:
        return event
    extra = [name for name in features if name not in declared]
    if not extra:
        return event
    if limits.undeclared_features == "refuse":
        raise RejectedInput(
            f"{len(extra)} feature(s) the model does not declare, e.g. {_show(extra[0])} "
            "(limits.undeclared_features = refuse)",
            error_type="undeclared_feature",
        )
    metrics.UNDECLARED_FEATURES.labels(event.model).inc(len(extra))
    kept = {k: v for k, v in features.items() if k in declared}
    return event.model_copy(update={"features": kept})
