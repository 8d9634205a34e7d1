"""Which events become notifications, and their Slack-compatible text. Pure."""

from __future__ import annotations

import json
from typing import Any

from schemas import (
    DriftDetected,
    Message,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    QualityAlertRaised,
    RetrainExhausted,
)
from workers.settings import NotifyKindName, Settings

NotifyKind = NotifyKindName


def kind_of(event: Message, settings: Settings) -> NotifyKind | None:
    if isinstance(event, DriftDetected):
        return "drift"
    if isinstance(event, QualityAlertRaised):
        return "quality_alert"
    if isinstance(event, RetrainExhausted):
        return "retrain_exhausted"
    if isinstance(event, ModelPromoted):
        return "rollback" if event.rollback else "promotion"
    if isinstance(event, ModelRejected):
        return "retrain_result"
    if isinstance(event, ModelRegistered) and event.status == "candidate":
        cfg = settings.models.get(event.model)
        if cfg is not None and cfg.retrain.promotion == "approval":
            return "pending_approval"
    return None


def model_of(event: Message) -> str | None:
    model = getattr(event, "model", None)
    return model if isinstance(model, str) else None


def text_of(event: Message, kind: NotifyKind) -> str:
    if isinstance(event, DriftDetected):
        if event.feature == "__error__":
            return (
                f":warning: {event.model} {event.model_version}: errors rose "
                f"{event.threshold:.4g} -> {event.statistic:.4g} ({event.method})"
            )
        return (
            f":warning: {event.model} {event.model_version}: drift in {event.feature} "
            f"({event.method} {event.statistic:.4g} > {event.threshold:.4g})"
        )
    if isinstance(event, QualityAlertRaised):
        return (
            f":rotating_light: {event.model} {event.model_version}: {event.metric} over "
            f"{event.window} = {event.value:.4g}, {event.direction} {event.bound:.4g} "
            f"(n={event.n})"
        )
    if isinstance(event, RetrainExhausted):
        return (
            f":x: {event.model}: retraining gave up after {event.attempts} attempt(s); "
            f"{event.last_reason}"
        )
    if isinstance(event, ModelPromoted):
        verb = "rolled back to" if event.rollback else "promoted"
        return (
            f":white_check_mark: {event.model}: {verb} {event.version} (was "
            f"{event.previous_version or 'none'}) by {event.by}: {event.reason}"
        )
    if isinstance(event, ModelRejected):
        what = event.version or f"run {event.run_id}"
        return f":no_entry: {event.model}: {what} {event.status} by {event.by}: {event.reason}"
    if isinstance(event, ModelRegistered):
        metrics = ", ".join(f"{k} {v:.4g}" for k, v in event.metrics.items())
        return (
            f":hourglass: {event.model}: {event.version} passed its gates and waits for "
            f"approval (`outcomeloop approve {event.model} {event.version}`); {metrics}"
        )
    return f"{kind}: {type(event).__name__}"


def body_of(event: Message, kind: NotifyKind) -> dict[str, Any]:
    """Slack's incoming-webhook shape (`text`), plus the event itself for other receivers."""
    return {
        "text": text_of(event, kind),
        "kind": kind,
        "event_type": type(event).__name__,
        "event": json.loads(event.to_bytes()),
    }
