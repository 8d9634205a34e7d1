"""Events the worker publishes for operators: drift alerts, lag reports, quality alerts."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.base import AwareTime, Identifier, Message, utc_now


class DriftDetected(Message):
    """A feature, the prediction or the error stream left its reference: one per episode."""

    kind: Literal["drift"] = "drift"
    model: Identifier
    model_version: Identifier
    feature: Identifier = Field(..., description="a feature name, __prediction__ or __error__")
    method: Identifier = Field(
        ..., description="ks, psi, wasserstein, chi2, jensen_shannon, adwin…"
    )
    statistic: float
    p_value: float | None = None
    threshold: float = Field(..., description="effective threshold for these sample sizes")
    n_reference: int = Field(..., ge=0)
    n_current: int = Field(..., ge=0)
    window_start: AwareTime | None = None
    window_end: AwareTime | None = None
    detected_at: AwareTime = Field(default_factory=utc_now)


class QualityAlertRaised(Message):
    """A rolling metric crossed its configured bound (e.g. MAE above 0.02)."""

    kind: Literal["quality_alert"] = "quality_alert"
    model: Identifier
    model_version: Identifier
    metric: Identifier
    window: Identifier
    value: float
    bound: float
    direction: Literal["above", "below"]
    n: int = Field(..., ge=0)
    reference: float | None = Field(
        None, description="the version's reference value a relative bound is a factor of"
    )
    raised_at: AwareTime = Field(default_factory=utc_now)


class PartitionLag(Message):
    topic: Identifier
    partition: int = Field(..., ge=0)
    end_offset: int
    committed: int | None
    lag: int | None


class LagMeasured(Message):
    """How far behind the stream and the labels are, published at a cadence."""

    kind: Literal["lag"] = "lag"
    consumer_group: Identifier
    partitions: list[PartitionLag] = Field(default_factory=list)
    label_delay_p50_seconds: float | None = None
    label_delay_p90_seconds: float | None = None
    label_delay_p99_seconds: float | None = None
    window_seconds: float = Field(..., gt=0, description="predictions made in this recent span")
    predictions_in_window: int = Field(..., ge=0)
    share_with_outcome: float | None = Field(None, description="labeled by outcome or feedback")
    share_no_outcome: float | None = Field(None, description="matured with no outcome")
    share_pending: float | None = None
    oldest_pending_at: AwareTime | None = None
    pending_total: int = Field(..., ge=0)
    measured_at: AwareTime = Field(default_factory=utc_now)
