"""Bytes from a topic to a validated event, or a clear reason why not. Pure."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, NamedTuple

from pydantic import ValidationError

from schemas.base import FeatureValue
from schemas.events import FeedbackGiven, IngestEvent, OutcomeObserved, PredictionMade
from workers import metrics
from workers.errors import RejectedInput
from workers.settings import LimitsConfig, ModelConfig, Settings

Kind = Literal["prediction", "outcome", "feedback"]
CONTRACTS: dict[Kind, type[PredictionMade] | type[OutcomeObserved] | type[FeedbackGiven]] = {
    "prediction": PredictionMade,
    "outcome": OutcomeObserved,
    "feedback": FeedbackGiven,
}


class RawMessage(NamedTuple):
    """A message as it came off Kafka: enough to dead-letter it faithfully. (A named
    tuple: one is made per consumed message, at a third of a frozen dataclass's cost.)"""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes


def validation_reason(exc: ValidationError) -> str:
    """Where and what, never the input itself (which may be megabytes or forged text)."""
    parts = []
    for err in exc.errors(include_url=False)[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "message"
        parts.append(f"{where}: {err['msg']}")
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


@dataclass(frozen=True, slots=True)
class Checks:
    """``decode``'s checks before parsing and its rules after, with what they need from
    the settings and the clock worked out once (per batch) rather than per message.
    Shared by ``decode`` and ``fast_decode``, so both apply the very same rules."""

    settings: Settings
    now: datetime
    contracts: Mapping[str, type[IngestEvent]]  # by topic
    models: Mapping[str, ModelConfig]
    declared: Mapping[str, frozenset[str]]  # each model's declared features, for lookups
    limits: LimitsConfig
    skew: timedelta
    age: timedelta
    latest: datetime  # an event time past this is impossible
    earliest: datetime  # and before this

    @classmethod
    def at(cls, settings: Settings, now: datetime) -> Checks:
        """The checks for ``settings`` at ``now``; the last ones are reused, as a batch
        decodes every message with the same settings and clock."""
        global _last_checks
        last = _last_checks
        if last is not None and last.settings is settings and last.now == now:
            return last
        _last_checks = cls._work_out(settings, now)
        return _last_checks

    @classmethod
    def _work_out(cls, settings: Settings, now: datetime) -> Checks:
        names = settings.topics
        skew = timedelta(seconds=settings.time.max_future_skew_seconds)
        age = timedelta(seconds=settings.time.max_event_age_seconds)
        try:
            earliest = now - age
        except OverflowError:  # an age longer than the calendar: no time is too old
            earliest = datetime.min.replace(tzinfo=UTC)
        return cls(
            settings=settings,
            now=now,
            contracts={
                names.predictions: CONTRACTS["prediction"],
                names.outcomes: CONTRACTS["outcome"],
                names.feedback: CONTRACTS["feedback"],
            },
            models=settings.models,
            declared={name: frozenset(m.features) for name, m in settings.models.items()},
            limits=settings.limits,
            skew=skew,
            age=age,
            latest=now + skew,
            earliest=earliest,
        )

    def contract_of(self, raw: RawMessage) -> type[IngestEvent]:
        """The contract ``raw`` must meet, once it is known to be worth parsing at all."""
        contract = self.contracts.get(raw.topic)
        if contract is None:
            raise RejectedInput(f"no contract for topic {raw.topic!r}", error_type="unknown_topic")
        if not raw.value:
            raise RejectedInput("empty message", error_type="invalid_payload")
        limit = self.limits.max_message_bytes
        if len(raw.value) > limit:
            raise RejectedInput(
                f"message of {len(raw.value)} bytes is over the {limit}-byte limit "
                "(limits.max_message_bytes)",
                error_type="too_large",
            )
        return contract

    def check_event(self, event: IngestEvent) -> IngestEvent:
        """Rules the schema alone cannot express: known models, possible times, and the
        limits; returns the event as it will be stored (undeclared features dropped)."""
        bound = self.limits.max_abs_number
        if isinstance(event, PredictionMade):
            cfg = self._model(event.model)
            self._check_time(event.predicted_at)
            prediction = event.prediction
            if not -bound <= prediction <= bound:  # NaN and ±inf fail this too
                _check_number("prediction", prediction, bound)
            if cfg.task == "binary" and not 0.0 <= prediction <= 1.0:
                raise RejectedInput(
                    f"prediction {prediction!r} of binary model {event.model!r} is not a "
                    "probability in [0, 1]",
                    error_type="out_of_range",
                )
            return self._checked_features(event, self.declared[event.model])
        if isinstance(event, OutcomeObserved):
            if event.model is not None:
                self._model(event.model)
            self._check_time(event.observed_at)
            if not -bound <= event.value <= bound:
                _check_number("value", event.value, bound)
            return event
        self._check_time(event.given_at)
        if not -bound <= event.label <= bound:
            _check_number("label", event.label, bound)
        return event

    def _model(self, name: str) -> ModelConfig:
        cfg = self.models.get(name)
        if cfg is None:
            known = ", ".join(sorted(self.models)) or "none configured"
            raise RejectedInput(
                f"unknown model {_show(name)} (known: {known})", error_type="unknown_model"
            )
        return cfg

    def _check_time(self, when: datetime) -> None:
        if when > self.latest:
            raise RejectedInput(
                f"event time {when.isoformat()} is more than {self.skew.total_seconds():.0f}s "
                f"after the worker's clock ({self.now.isoformat()})",
                error_type="impossible_time",
            )
        if when < self.earliest:
            raise RejectedInput(
                f"event time {when.isoformat()} is more than {self.age.total_seconds():.0f}s "
                "before the worker's clock (time.max_event_age_seconds)",
                error_type="impossible_time",
            )

    def _checked_features(self, event: PredictionMade, declared: frozenset[str]) -> PredictionMade:
        limits = self.limits
        features = event.features
        if len(features) > limits.max_features:
            raise RejectedInput(
                f"{len(features)} features, over the limit of {limits.max_features} "
                "(limits.max_features)",
                error_type="too_many_features",
            )
        # One tight pass over the values, exact types as JSON decodes them (NaN and ±inf
        # fail the range test); a feature it does not pass gets the full check, by name.
        high = limits.max_abs_number
        low = -high
        longest = limits.max_string_length
        for value in features.values():
            kind = value.__class__
            if kind is float or kind is int:
                if low <= value <= high:  # type: ignore[operator]
                    continue
            elif kind is str:
                if len(value) <= longest:  # type: ignore[arg-type]
                    continue
            elif kind is bool or value is None:
                continue
            for name, each in features.items():
                _check_feature(name, each, limits)
            break
        if not declared or features.keys() <= declared:
            return event
        extra = [name for name in features if name not in declared]
        if limits.undeclared_features == "refuse":
            raise RejectedInput(
                f"{len(extra)} feature(s) the model does not declare, e.g. {_show(extra[0])} "
                "(limits.undeclared_features = refuse)",
                error_type="undeclared_feature",
            )
        metrics.UNDECLARED_FEATURES.labels(event.model).inc(len(extra))
        kept = {k: v for k, v in features.items() if k in declared}
        return event.model_copy(update={"features": kept})


_last_checks: Checks | None = None


def decode(raw: RawMessage, settings: Settings, now: datetime) -> IngestEvent:
    """Validate ``raw`` against the contract of its topic, or raise ``RejectedInput``.

    The reference decoder: ``fast_decode`` must give the same verdict on every message
    (tests/unit/test_decode_parity.py), and hands it every message it does not accept."""
    return decode_with(raw, Checks.at(settings, now))


def decode_with(raw: RawMessage, checks: Checks) -> IngestEvent:
    """``decode`` with its checks already worked out."""
    contract = checks.contract_of(raw)
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
    return checks.check_event(event)


def check_event(event: IngestEvent, settings: Settings, now: datetime) -> IngestEvent:
    """``Checks.check_event`` for one event."""
    return Checks.at(settings, now).check_event(event)


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


def _check_feature(name: str, value: FeatureValue, limits: LimitsConfig) -> None:
    """Raise if one feature value is beyond the limits; the reason is only built here,
    for a value that needs it, never for every feature of every event."""
    if isinstance(value, str):
        if len(value) > limits.max_string_length:
            raise RejectedInput(
                f"feature {_show(name)} is a string of {len(value)} characters, over "
                f"{limits.max_string_length} (limits.max_string_length)",
                error_type="out_of_range",
            )
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(f"feature {_show(name)}", value, limits.max_abs_number)
