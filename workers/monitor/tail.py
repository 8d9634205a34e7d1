"""`outcomeloop tail drift|lag`: follow the operator topics in a readable form."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from pydantic import TypeAdapter, ValidationError

from schemas import DriftDetected, LagMeasured, QualityAlertRaised, RetrainExhausted
from workers.settings import Settings

_drift_or_alert: TypeAdapter[DriftDetected | QualityAlertRaised | RetrainExhausted] = TypeAdapter(
    DriftDetected | QualityAlertRaised | RetrainExhausted
)


def _when(value: Any) -> str:
    return value.strftime("%H:%M:%S") if value is not None else "-"


def format_drift(raw: bytes) -> str:
    try:
        event = _drift_or_alert.validate_json(raw)
    except ValidationError:
        return f"(unreadable: {raw[:120]!r})"
    if isinstance(event, RetrainExhausted):
        return (
            f"{_when(event.raised_at)} RETRAIN EXHAUSTED {event.model} {event.version}: "
            f"{event.attempts} attempt(s) since the change at {_when(event.change_at)}; "
            f"{event.last_reason}"
        )
    if isinstance(event, QualityAlertRaised):
        relative = (
            f" = {event.bound / event.reference:.2f}x its reference" if event.reference else ""
        )
        return (
            f"{_when(event.raised_at)} QUALITY {event.model} {event.model_version}: "
            f"{event.metric} over {event.window} = {event.value:.4f}, "
            f"{event.direction} {event.bound:g}{relative} (n={event.n})"
        )
    if event.feature == "__error__":
        # The error-stream detector: the error level before and after the change it found.
        return (
            f"{_when(event.detected_at)} ERRORS ROSE {event.model} {event.model_version}: "
            f"mean error {event.threshold:.4f} -> {event.statistic:.4f} ({event.method}, "
            f"after {event.n_reference} examples)"
        )
    p = f", p={event.p_value:.2g}" if event.p_value is not None else ""
    return (
        f"{_when(event.detected_at)} DRIFT {event.model} {event.model_version}: "
        f"{event.feature} {event.method}={event.statistic:.4f} > {event.threshold:.4f}{p} "
        f"(reference {event.n_reference}, current {event.n_current})"
    )


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _secs(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}s"


def format_lag(raw: bytes) -> str:
    try:
        e = LagMeasured.model_validate_json(raw)
    except ValidationError:
        return f"(unreadable: {raw[:120]!r})"
    lag = sum(p.lag or 0 for p in e.partitions)
    return (
        f"{_when(e.measured_at)} LAG {e.consumer_group}: {lag} messages behind; "
        f"label delay p50 {_secs(e.label_delay_p50_seconds)} "
        f"p90 {_secs(e.label_delay_p90_seconds)} p99 {_secs(e.label_delay_p99_seconds)}; "
        f"last {e.window_seconds:g}s: {e.predictions_in_window} predictions, "
        f"{_pct(e.share_with_outcome)} labeled, {_pct(e.share_no_outcome)} no outcome, "
        f"{_pct(e.share_pending)} pending; {e.pending_total} pending in all, "
        f"oldest {_when(e.oldest_pending_at)}"
    )


FORMATTERS: dict[str, Callable[[bytes], str]] = {"drift": format_drift, "lag": format_lag}


async def tail(
    settings: Settings,
    what: str,
    *,
    from_beginning: bool,
    limit: int | None,
    idle_seconds: float | None,
    out: Callable[[str], None] = print,
) -> int:
    """Print messages until ``limit`` or ``idle_seconds`` without one; returns the count."""
    topic = settings.topics.drift if what == "drift" else settings.topics.lag
    fmt = FORMATTERS[what]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    shown = 0
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
        if not parts:
            parts = [TopicPartition(topic, p) for p in range(settings.topics.partitions)]
        consumer.assign(parts)
        if from_beginning:
            await consumer.seek_to_beginning(*parts)
        else:
            await consumer.seek_to_end(*parts)
        idle = 0.0
        while limit is None or shown < limit:
            batch = await consumer.getmany(timeout_ms=500)
            records = sorted((r for rs in batch.values() for r in rs), key=lambda r: r.timestamp)
            if not records:
                idle += 0.5
                if idle_seconds is not None and idle >= idle_seconds:
                    break
                continue
            idle = 0.0
            for r in records:
                out(fmt(r.value))
                shown += 1
                if limit is not None and shown >= limit:
                    break
    except asyncio.CancelledError:
        pass
    finally:
        await consumer.stop()
    return shown
