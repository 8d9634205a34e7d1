"""Whether a trigger may start a retrain now. Pure: the state comes from PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from workers.settings import RetrainConfig

TriggerKind = Literal[
    "quality_alert", "drift", "schedule", "outcome_count", "challenger", "command"
]


@dataclass(frozen=True)
class ControlState:
    paused: bool
    last_auto_retrain_at: datetime | None
    running: bool


@dataclass(frozen=True)
class Decision:
    go: bool
    reason: str


def decide(kind: TriggerKind, cfg: RetrainConfig, state: ControlState, now: datetime) -> Decision:
    """Commands always run (unless one is running); automatic triggers respect the model's
    switches, a pause, and the cooldown, so one bad hour fires one retrain, not hundreds."""
    if state.running:
        return Decision(False, "a retrain of this model is already running")
    if kind == "command":
        return Decision(True, "requested by an operator")
    if not cfg.enabled:
        return Decision(False, "retraining is disabled for this model")
    if state.paused:
        return Decision(False, "the model is paused: it never retrains on its own")
    t = cfg.triggers
    enabled = {
        "quality_alert": t.on_quality_alert,
        "drift": t.on_drift,
        "schedule": t.schedule_seconds > 0,
        "outcome_count": t.outcome_count > 0,
        "challenger": True,  # the model's shadow policy (on_ahead) already chose this
    }[kind]
    if not enabled:
        return Decision(False, f"the {kind} trigger is off for this model")
    if state.last_auto_retrain_at is not None:
        since = (now - state.last_auto_retrain_at).total_seconds()
        if since < t.cooldown_seconds:
            return Decision(
                False,
                f"cooling down: last automatic retrain {since:.0f}s ago "
                f"(< {t.cooldown_seconds:g}s)",
            )
    return Decision(True, f"{kind} trigger")


def schedule_due(
    cfg: RetrainConfig, last: datetime | None, first_seen: datetime, now: datetime
) -> bool:
    """Every `schedule_seconds`, counted from the last automatic retrain (or first sight)."""
    period = cfg.triggers.schedule_seconds
    if period <= 0:
        return False
    anchor = last or first_seen
    return (now - anchor).total_seconds() >= period


def drift_fires(cfg: RetrainConfig, feature: str) -> bool:
    names = cfg.triggers.drift_features
    return not names or feature in names
