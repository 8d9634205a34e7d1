"""The one settings object: config file defaults, overridden by OL_ environment variables.

This is the only module that reads the environment. Everything else receives a
``Settings`` instance (frozen) from its caller.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
# The demo's profile: short horizons and windows so `make demo` shows the loop in minutes.
# It is read only when asked for (OL_CONFIG_FILE, or by `outcomeloop demo`); without a
# file every value is the code's default below, which is what the README documents.
DEMO_CONFIG_FILE = REPO_ROOT / "config" / "demo.toml"
CONFIG_FILE_ENV = "OL_CONFIG_FILE"

LabelSource = Literal["feedback", "outcome"]


class _Frozen(BaseModel):
    # NaN or infinity in a config value is refused at load time with its key: a NaN bound
    # compares false with everything, so a rule holding one could never fire.
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class TopicsConfig(_Frozen):
    predictions: str = "ol.predictions"
    outcomes: str = "ol.outcomes"
    feedback: str = "ol.feedback"
    control: str = "ol.control"
    control_results: str = "ol.control.results"
    dlq: str = "ol.dlq"
    drift: str = "ol.drift"
    lag: str = "ol.lag"
    models: str = "ol.models"
    partitions: int = Field(4, ge=1, description="partitions for topics the worker creates")
    replication_factor: int = Field(1, ge=1, description="for topics the worker creates")

    def all_names(self) -> list[str]:
        return [
            self.predictions,
            self.outcomes,
            self.feedback,
            self.control,
            self.control_results,
            self.dlq,
            self.drift,
            self.lag,
            self.models,
        ]

    def ingest_names(self) -> list[str]:
        return [self.predictions, self.outcomes, self.feedback]


Role = Literal["all", "ingest", "loop"]


class WorkerConfig(_Frozen):
    role: Role = Field(
        "all",
        description="ingest: consume and join only; loop: monitoring, challengers, retraining "
        "and commands; all: both, ingestion in a child process (see ingest_process)",
    )
    ingest_process: bool = Field(
        True,
        description="role all: ingest in a supervised child process with its own CPU and "
        "GIL, so the loop's work cannot slow the hot path; false: one process does both",
    )
    ingest_web_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="role all: the ingest process's /health and /metrics, on 127.0.0.1; "
        "0 picks a free port",
    )
    session_timeout_seconds: float = Field(8.0, gt=0)
    heartbeat_interval_seconds: float = Field(1.0, gt=0)
    commit_interval_seconds: float = Field(1.0, gt=0)
    batch_max: int = Field(2000, ge=1)
    batch_within_seconds: float = Field(0.25, gt=0)
    batches_in_flight: int = Field(
        3,
        ge=1,
        le=6,
        description="ingest batches written at once (each on its own connection); while one "
        "waits on PostgreSQL the next are fetched, decoded and inserted",
    )
    fetch_max_wait_seconds: float = Field(
        0.05,
        gt=0,
        description="longest a fetch waits for new messages (aiokafka's fetch_max_wait_ms; "
        "some brokers hold every fetch this long, which would add it to each event's latency)",
    )
    sweep_interval_seconds: float = Field(2.0, gt=0)
    sweep_batch: int = Field(20000, ge=1)
    pending_recount_seconds: float = Field(
        1800.0,
        gt=0,
        description="how often the leader checks the kept pending counts against the rows "
        "(one scan of pending_predictions) and corrects any drift, e.g. from a worker of an "
        "older version still running during an upgrade",
    )
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = Field(6066, ge=0, le=65535)
    shutdown_timeout_seconds: float = Field(
        15.0, gt=0, description="after SIGTERM, exit anyway; uncommitted events are redelivered"
    )
    db_connect_timeout_seconds: float = Field(10.0, gt=0)
    db_command_timeout_seconds: float = Field(
        300.0, gt=0, description="longest one SQL statement may run (dataset loads included)"
    )


class HealthConfig(_Frozen):
    """When /health says the worker is not ready (503, with reasons)."""

    stall_seconds: float = Field(
        120.0, gt=0, description="no batch stored for this long while messages wait: stalled"
    )
    monitor_stale_seconds: float = Field(
        60.0, gt=0, description="the leader's monitor has not ticked successfully for this long"
    )
    database_timeout_seconds: float = Field(2.0, gt=0, description="for the PostgreSQL probe")


class TimeConfig(_Frozen):
    max_future_skew_seconds: float = Field(300.0, ge=0)
    max_outcome_before_prediction_seconds: float = Field(60.0, ge=0)
    max_event_age_seconds: float = Field(
        31_536_000.0, gt=0, description="an event stamped longer ago than this is refused"
    )


class LimitsConfig(_Frozen):
    """What one message may carry, checked at the edge: past a limit it is dead-lettered
    with a reason naming the limit, so no single message can blind or stop the worker."""

    max_message_bytes: int = Field(1_048_576, ge=256, description="larger messages are refused")
    max_features: int = Field(500, ge=1, description="features per event")
    max_string_length: int = Field(1024, ge=1, description="characters in a string feature")
    max_abs_number: float = Field(
        1e15, gt=0, description="largest magnitude of a number (features, predictions, labels)"
    )
    undeclared_features: Literal["drop", "refuse"] = Field(
        "drop",
        description="features a model does not declare: dropped and counted, or the event "
        "refused (models that declare no features keep them all)",
    )
    dead_letter_payload_bytes: int = Field(
        262_144,
        ge=1024,
        description="raw bytes kept in a dead letter; beyond, its size and sha256 stand in",
    )
    reason_chars: int = Field(1000, ge=80, description="a dead letter's reason is cut here")


METRICS_BY_TASK: dict[str, tuple[str, ...]] = {
    "regression": ("mae", "rmse", "bias"),
    "binary": ("accuracy", "precision", "recall", "f1", "log_loss", "roc_auc"),
}


def count_window_name(size: int) -> str:
    return f"last_{size}"


def time_window_name(seconds: float) -> str:
    for unit, span in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= span and seconds % span == 0:
            return f"{int(seconds // span)}{unit}"
    return f"{seconds:g}s"


NumericMethod = Literal["ks", "psi", "wasserstein"]
CategoricalMethod = Literal["chi2", "jensen_shannon", "psi"]


class DriftConfig(_Frozen):
    """How input and output drift is judged. Thresholds account for sample size: p-value
    tests get stricter evidence from more rows, distances are compared above the level
    that sampling noise alone produces for the two sample sizes."""

    numeric_method: NumericMethod = "ks"
    categorical_method: CategoricalMethod = "chi2"
    prediction_method: NumericMethod = "ks"
    alpha: float = Field(0.001, gt=0, lt=1, description="p-value below which a test may fire")
    min_effect: float = Field(
        0.1, ge=0, description="KS statistic or Cramér's V below which a test never fires"
    )
    psi_threshold: float = Field(0.2, gt=0)
    js_threshold: float = Field(0.1, gt=0, description="Jensen-Shannon distance (base 2)")
    wasserstein_threshold: float = Field(
        0.25, gt=0, description="in units of the reference standard deviation"
    )
    bins: int = Field(10, ge=2, description="quantile bins for PSI on numbers")
    min_samples: int = Field(100, ge=2, description="fewer rows on either side: no verdict")
    reference_size: int = Field(1000, ge=2, description="first predictions of a version")
    window_size: int = Field(1000, ge=2, description="latest predictions compared")
    clear_after: int = Field(
        3, ge=1, description="evaluations below threshold that end a drift episode"
    )


# Metrics that live in [0, 1]: a bound outside it can never be crossed.
UNIT_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc"})
# Metrics that are never negative: "below 0" can never be crossed.
ERROR_METRICS = frozenset({"mae", "rmse", "log_loss"})


class AlertRule(_Frozen):
    """A rolling metric past a bound, e.g. MAE above 0.02 over the last 500 examples, or
    MAE above 1.25x the version's reference MAE (its first matured examples).

    Exactly one bound: ``above`` / ``below`` are absolute, ``above_reference`` /
    ``below_reference`` are factors of the version's reference value of the metric.
    A window holding fewer than ``min_samples`` examples never alerts."""

    metric: str
    window: str = Field(..., description="a configured window name, e.g. last_500 or 7d")
    above: float | None = None
    below: float | None = None
    above_reference: float | None = Field(None, gt=1, description="e.g. 1.25: 25% worse")
    below_reference: float | None = Field(None, gt=0, lt=1, description="e.g. 0.9")
    min_samples: int = Field(200, ge=1, description="fewer examples in the window: no alert")
    z: float = Field(
        4.0,
        ge=0,
        description="relative bounds on a mean (MAE, RMSE, log loss, accuracy): the excess "
        "must also be this many standard errors, given both sample sizes (4: a window is "
        "judged at every check of a long stream, so 3 would fire on noise now and then)",
    )

    @model_validator(mode="after")
    def _one_sensible_bound(self) -> AlertRule:
        bounds = [self.above, self.below, self.above_reference, self.below_reference]
        if sum(b is not None for b in bounds) != 1:
            raise ValueError(
                "an alert rule needs exactly one of 'above', 'below', 'above_reference' "
                "or 'below_reference'"
            )
        absolute = self.above if self.above is not None else self.below
        if self.metric in UNIT_METRICS and absolute is not None and not 0 <= absolute <= 1:
            raise ValueError(f"{self.metric} lies in [0, 1]: bound {absolute} can never be crossed")
        if self.metric in ERROR_METRICS and self.below is not None and self.below <= 0:
            raise ValueError(f"{self.metric} is never negative: 'below {self.below}' never fires")
        if self.metric == "bias" and self.relative:
            raise ValueError("bias is near 0 by design: give it an absolute bound")
        return self

    @property
    def relative(self) -> bool:
        return self.above_reference is not None or self.below_reference is not None

    @property
    def direction(self) -> Literal["above", "below"]:
        return "above" if self.above is not None or self.above_reference is not None else "below"

    def bound(self, reference: float | None) -> float | None:
        """The bound in the metric's units; None while a relative rule has no reference."""
        if self.above is not None:
            return self.above
        if self.below is not None:
            return self.below
        if reference is None:
            return None
        factor = self.above_reference if self.above_reference is not None else self.below_reference
        assert factor is not None
        return factor * reference

    def breached(
        self, value: float, n: int, reference: float | None = None, significant: bool = True
    ) -> bool:
        """Past the bound with enough examples (and, for a relative bound, beyond noise)."""
        bound = self.bound(reference)
        if bound is None or n < self.min_samples or (self.relative and not significant):
            return False
        return value > bound if self.direction == "above" else value < bound


class MonitorConfig(_Frozen):
    count_windows: tuple[int, ...] = (500,)
    time_windows_seconds: tuple[float, ...] = (3600.0,)
    segments: tuple[str, ...] = Field((), description="features whose values get their own rows")
    alerts: tuple[AlertRule, ...] = ()
    reference_size: int = Field(
        500,
        ge=10,
        description="a version's first matured examples: the reference for relative alert "
        "bounds and the error-stream detector",
    )
    drift: DriftConfig = DriftConfig()
    error_detector: Literal["adwin", "page_hinkley", "none"] = "adwin"

    @model_validator(mode="before")
    @classmethod
    def _min_samples_fit_small_windows(cls, data: Any) -> Any:
        """A rule on a count window smaller than the default min_samples waits for a full
        window instead; a min_samples set larger than its window is refused later."""
        if not isinstance(data, dict) or not data.get("alerts"):
            return data
        sizes = {count_window_name(n): n for n in data.get("count_windows", (500,))}
        rules = []
        for rule in data["alerts"]:
            given = rule if isinstance(rule, dict) else rule.model_fields_set
            size = sizes.get(rule["window"] if isinstance(rule, dict) else rule.window)
            default = AlertRule.model_fields["min_samples"].default
            if "min_samples" not in given and size is not None and size < default:
                if isinstance(rule, dict):
                    rule = {**rule, "min_samples": size}
                else:
                    rule = rule.model_copy(update={"min_samples": size})
            rules.append(rule)
        return {**data, "alerts": tuple(rules)}


class TriggerConfig(_Frozen):
    """What fires a retrain on its own (a RetrainModel command always can)."""

    on_quality_alert: bool = True
    on_drift: bool = False
    drift_features: tuple[str, ...] = Field(
        (), description="features whose drift fires; empty means any, __error__ included"
    )
    schedule_seconds: float = Field(0.0, ge=0, description="every so often; 0 is off")
    outcome_count: int = Field(0, ge=0, description="after this many new outcomes; 0 is off")
    cooldown_seconds: float = Field(
        600.0, ge=0, description="no automatic retrain sooner; a trigger meanwhile waits"
    )
    max_attempts: int = Field(
        3, ge=1, description="runs per degradation before one 'retrain exhausted' alert"
    )
    backoff_seconds: float = Field(
        60.0, ge=0, description="wait after a gated run, doubled for each further attempt"
    )
    retry_growth: float = Field(
        1.5, ge=1, description="each retry needs this many times the last run's post-change rows"
    )
    refresh_growth: float = Field(
        4.0,
        ge=0,
        description="after a promotion on post-change rows, retrain again (gated) once this "
        "many times as many have matured, up to max_rows; 0 is off",
    )


class RecallConfig(_Frozen):
    """Before training, try the model's earlier champions on the first post-change rows: a
    concept that comes back (a season, a campaign ending, a sensor fixed) is served again
    by the version that knew it, long before a retrain has enough rows. Needs automatic
    promotion and earlier versions with artifacts."""

    enabled: bool = True
    min_rows: int = Field(
        200,
        ge=30,
        description="matured post-change examples the earlier versions are first tried on "
        "(again on twice as many while the loop waits for min_post_change)",
    )
    versions: int = Field(3, ge=1, description="how many of the latest earlier champions")
    min_improvement: float = Field(
        0.1,
        gt=0,
        description="relative improvement over the champion on those rows that the lower "
        "end of the bootstrap interval must clear",
    )


class StabilityGate(_Frozen):
    """Each feature's effect must point the same way in most time buckets."""

    enabled: bool = False
    bucket_seconds: float = Field(15_552_000.0, gt=0, description="180 days by default")
    min_buckets: int = Field(4, ge=2)
    min_agreement: float = Field(0.75, gt=0, le=1)
    min_bucket_samples: int = Field(20, ge=2)


class AbsoluteGate(_Frozen):
    """A bar the candidate must clear on its own, e.g. F1 of at least 0.72."""

    metric: str
    min: float | None = None
    max: float | None = None

    @model_validator(mode="after")
    def _a_bar_that_can_be_cleared(self) -> AbsoluteGate:
        if self.min is None and self.max is None:
            raise ValueError("an absolute gate needs 'min' or 'max'")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"absolute gate min {self.min} > max {self.max}: nothing passes")
        return self


class GatesConfig(_Frozen):
    min_samples: int = Field(200, ge=1)
    min_positives: int = Field(0, ge=0, description="binary only")
    min_negatives: int = Field(0, ge=0, description="binary only")
    positive_rate: tuple[float, float] | None = Field(None, description="binary only: [lo, hi]")
    stability: StabilityGate = StabilityGate()
    absolute: AbsoluteGate | None = None
    min_improvement: float = Field(
        0.02, description="relative improvement over the champion required"
    )
    bootstrap_resamples: int = Field(200, ge=0, description="for the improvement interval")
    improvement_confidence: float = Field(0.9, gt=0, lt=1)
    require_significant: bool = Field(
        False, description="the interval's lower end, not its centre, must clear the floor"
    )
    recent_regression_tolerance: float | None = Field(
        0.0, description="how much worse on the most recent slice is allowed; None is off"
    )
    contract: bool = True

    @model_validator(mode="after")
    def _rates_in_order(self) -> GatesConfig:
        if self.positive_rate is not None:
            lo, hi = self.positive_rate
            if not 0 <= lo <= hi <= 1:
                raise ValueError(f"positive_rate [{lo}, {hi}] must satisfy 0 <= lo <= hi <= 1")
        return self


class RetrainConfig(_Frozen):
    enabled: bool = True
    candidates: tuple[str, ...] = ("lightgbm", "linear")
    metric: str | None = Field(
        None, description="picks the best candidate and compares champions; None: mae / log_loss"
    )
    promotion: Literal["auto", "approval"] = "auto"
    approval_timeout_seconds: float = Field(86400.0, gt=0)
    lookback_seconds: float = Field(
        2_592_000.0,
        gt=0,
        description="training window in example time: predicted at most this long before the "
        "newest matured example (never the wall clock)",
    )
    min_post_change: int = Field(
        500,
        ge=1,
        description="matured examples predicted after a change began that a retrain started "
        "by an alert or drift waits for; it then trains on them only",
    )
    validation_share: float = Field(0.2, gt=0, lt=1, description="newest share held out")
    recent_seconds: float = Field(
        0.0, ge=0, description="most recent span kept as its own evaluation slice; 0 is off"
    )
    max_rows: int = Field(200_000, ge=10)
    recall: RecallConfig = RecallConfig()
    triggers: TriggerConfig = TriggerConfig()
    gates: GatesConfig = GatesConfig()
    params: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="extra LightGBM parameters"
    )


class ShadowConfig(_Frozen):
    """Online River challengers that learn from matured examples beside the champion."""

    challengers: tuple[str, ...] = Field(
        (), description="keys: linear, hoeffding (regression); logistic, hoeffding (binary)"
    )
    window: int = Field(500, ge=10, description="rolling window both sides are scored on")
    min_examples: int = Field(500, ge=1, description="before a challenger can be ahead")
    margin: float = Field(0.05, ge=0, description="relative improvement that counts as ahead")
    sample_share: float = Field(1.0, gt=0, le=1, description="share of examples learned from")
    max_learn_per_second: float = Field(
        1000.0,
        gt=0,
        description="challengers learn from at most this many examples a second (short bursts "
        "up to two seconds' worth); under more load the rest are skipped and counted, so "
        "challengers sample rather than fall behind or slow ingestion",
    )
    max_cpu_share: float = Field(
        0.25,
        gt=0,
        le=4,
        description="challengers learn with at most this share of one CPU core, measured "
        "(a Hoeffding tree costs 20x a linear model per example); beyond, examples are "
        "skipped and counted like those over max_learn_per_second",
    )
    busy_cpu_share: float = Field(
        0.02,
        ge=0,
        le=4,
        description="the share of a core challengers learn with while ingestion is behind by "
        "more than busy_lag_events (a backlog after an outage, a burst): they give the CPU to "
        "ingestion and sample; 0 pauses them",
    )
    busy_lag_events: int = Field(
        20_000,
        ge=0,
        description="consumer lag of the ingest group (messages) above which ingestion counts "
        "as behind, probed every monitoring.load_probe_seconds",
    )
    max_tree_depth: int = Field(
        8,
        ge=1,
        le=30,
        description="depth cap of the hoeffding challengers: bounds their memory, CPU per "
        "example and checkpoint size (uncapped, a tree on a continuous target keeps growing)",
    )
    on_ahead: Literal["none", "retrain"] = "none"
    checkpoint_every: int = Field(1000, ge=1, description="examples between checkpoints")


class ModelConfig(_Frozen):
    task: Literal["regression", "binary"] = "regression"
    horizon_seconds: float = Field(..., gt=0, description="how long an outcome may take to arrive")
    no_outcome: Literal["negative", "drop"] = "drop"
    no_outcome_label: float = 0.0
    label_precedence: tuple[LabelSource, ...] = ("feedback", "outcome")
    features: tuple[str, ...] = ()
    monitor: MonitorConfig = MonitorConfig()
    retrain: RetrainConfig = RetrainConfig()
    shadow: ShadowConfig = ShadowConfig()

    @field_validator("label_precedence")
    @classmethod
    def _both_sources_once(cls, value: tuple[LabelSource, ...]) -> tuple[LabelSource, ...]:
        if sorted(value) != ["feedback", "outcome"]:
            raise ValueError("label_precedence must list 'feedback' and 'outcome' once each")
        return value

    @model_validator(mode="after")
    def _alerts_name_real_windows(self) -> ModelConfig:
        m = self.monitor
        windows = [count_window_name(n) for n in m.count_windows]
        windows += [time_window_name(t) for t in m.time_windows_seconds]
        metrics = METRICS_BY_TASK[self.task]
        for rule in m.alerts:
            if rule.window not in windows:
                raise ValueError(f"alert window {rule.window!r} is not configured: {windows}")
            if rule.metric not in metrics:
                raise ValueError(f"alert metric {rule.metric!r} is not one of {list(metrics)}")
            size = next((n for n in m.count_windows if count_window_name(n) == rule.window), None)
            if size is not None and rule.min_samples > size:
                raise ValueError(
                    f"alert on {rule.window} needs min_samples {rule.min_samples}, more than "
                    "the window holds: it could never fire"
                )
        return self

    @model_validator(mode="after")
    def _retrain_metric_fits_the_task(self) -> ModelConfig:
        names = [m for m in METRICS_BY_TASK[self.task] if m != "bias"]
        for metric in (
            self.retrain.metric,
            self.retrain.gates.absolute and self.retrain.gates.absolute.metric,
        ):
            if metric and metric not in names:
                raise ValueError(f"retrain metric {metric!r} is not one of {names}")
        return self

    @property
    def retrain_metric(self) -> str:
        return self.retrain.metric or ("mae" if self.task == "regression" else "log_loss")

    @property
    def feedback_wins(self) -> bool:
        return self.label_precedence[0] == "feedback"


class MonitoringConfig(_Frozen):
    """How often the leader's monitor runs; what each model watches is in its own table."""

    snapshot_interval_seconds: float = Field(10.0, gt=0, description="quality rows cadence")
    quality_interval_seconds: float = Field(1.0, gt=0, description="tailing matured examples")
    drift_interval_seconds: float = Field(5.0, gt=0)
    lag_interval_seconds: float = Field(10.0, gt=0)
    load_probe_seconds: float = Field(
        2.0, gt=0, description="how often the ingest group's consumer lag is probed (load shedding)"
    )
    lag_window_seconds: float = Field(3600.0, gt=0, description="recent span lag reports cover")
    active_version_seconds: float = Field(
        86400.0, gt=0, description="versions with predictions this recent are checked for drift"
    )
    tail_batch: int = Field(5000, ge=1)
    alert_clear_after: int = Field(
        3, ge=1, description="checks back within its bound that end a quality alert episode"
    )


class ControlConfig(_Frozen):
    """Who may command the worker. A command passes when it carries a valid HMAC signature
    (OL_CONTROL_SECRET, or OL_CONTROL_PREVIOUS_SECRET while rotating) or, with `auth` set
    to "allow_list" or "either", when its issuer is on `allowed_issuers`."""

    auth: Literal["hmac", "allow_list", "either", "both"] = "hmac"
    allowed_issuers: tuple[str, ...] = ()
    result_timeout_seconds: float = Field(30.0, gt=0, description="CLI wait for a result")
    max_command_age_seconds: float = Field(
        600.0,
        gt=0,
        description="a command issued longer ago is refused (and audited), so a replayed "
        "topic or a fresh consumer group never runs old commands",
    )


NotifyKindName = Literal[
    "drift",
    "quality_alert",
    "retrain_result",
    "pending_approval",
    "promotion",
    "rollback",
    "retrain_exhausted",
]


class WebhookConfig(_Frozen):
    """One receiver: Slack incoming webhooks work as they are (the body has `text`)."""

    url: str = Field(..., pattern=r"^https?://", description="http(s) URL to POST JSON to")
    events: tuple[NotifyKindName, ...] = Field(
        get_args(NotifyKindName),
        description="which kinds of events go to this receiver",
    )
    models: tuple[str, ...] = Field((), description="only these models; empty: all")


class NotificationsConfig(_Frozen):
    """Optional webhooks for drift, alerts, retrain results, approvals and promotions."""

    webhooks: tuple[WebhookConfig, ...] = ()
    timeout_seconds: float = Field(5.0, gt=0)
    max_attempts: int = Field(8, ge=1, description="then the notification is given up")
    backoff_seconds: float = Field(5.0, gt=0, description="doubled after each failure")
    interval_seconds: float = Field(2.0, gt=0, description="how often due ones are sent")


class Settings(BaseSettings):
    """All configuration. Field docs name their environment variables (OL_ + upper name)."""

    model_config = SettingsConfigDict(
        env_prefix="OL_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        allow_inf_nan=False,
    )

    app_id: str = "outcomeloop"
    kafka_bootstrap: str | None = Field(
        None, description="OL_KAFKA_BOOTSTRAP: host:port[,host:port]; unset starts embedded Tansu"
    )
    database_url: SecretStr | None = Field(
        None, description="OL_DATABASE_URL: postgresql:// DSN; unset starts embedded PostgreSQL"
    )
    data_dir: Path = Field(Path(".outcomeloop"), description="OL_DATA_DIR: embedded infra data")
    registry_dir: Path | None = Field(
        None, description="OL_REGISTRY_DIR: model artifacts; default <data_dir>/registry"
    )
    control_secret: SecretStr | None = Field(
        None, description="OL_CONTROL_SECRET: HMAC key for commands; default a local key file"
    )
    control_previous_secret: SecretStr | None = Field(
        None, description="OL_CONTROL_PREVIOUS_SECRET: still accepted while rotating"
    )
    dashboard_token: SecretStr | None = Field(
        None,
        description="OL_DASHBOARD_TOKEN: operators send it as a bearer token to act from "
        "/dashboard (approve, reject, rollback); unset: the dashboard is read-only",
    )
    migrations_dir: Path = REPO_ROOT / "migrations"
    log_level: str = "INFO"
    topics: TopicsConfig = TopicsConfig()
    worker: WorkerConfig = WorkerConfig()
    time: TimeConfig = TimeConfig()
    limits: LimitsConfig = LimitsConfig()
    health: HealthConfig = HealthConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    control: ControlConfig = ControlConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    models: dict[str, ModelConfig] = Field(default_factory=dict)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        named = os.environ.get(CONFIG_FILE_ENV)
        if not named:
            return (init_settings, env_settings)
        toml_file = Path(named)
        if not toml_file.is_file():
            raise FileNotFoundError(f"{CONFIG_FILE_ENV}={toml_file} is not a file")
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
        # Earlier sources win: explicit arguments, then the environment, then the file,
        # then the code's defaults.
        return (init_settings, env_settings, toml)

    @property
    def artifacts_dir(self) -> Path:
        return self.registry_dir or self.data_dir / "registry"

    @property
    def embedded(self) -> bool:
        return self.kafka_bootstrap is None or self.database_url is None

    def model(self, name: str) -> ModelConfig | None:
        return self.models.get(name)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()


def use_config_file(path: Path) -> None:
    """Read ``path`` over the code's defaults from now on, in this process and the ones it
    starts (the CLI's --config, the demo's profile)."""
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} is not a file")
    os.environ[CONFIG_FILE_ENV] = str(path.resolve())
    get_settings.cache_clear()


def config_file_named() -> bool:
    return bool(os.environ.get(CONFIG_FILE_ENV))


def child_env(settings: Settings, **overrides: str) -> dict[str, str]:
    """Environment for a child process (a worker the demo starts) with resolved addresses.

    ``overrides`` are extra OL_ variables, e.g. ``OL_WORKER__WEB_PORT="0"``.
    """
    env = dict(os.environ)
    env.update(overrides)
    if settings.kafka_bootstrap:
        env["OL_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    if settings.database_url:
        env["OL_DATABASE_URL"] = settings.database_url.get_secret_value()
    env["OL_DATA_DIR"] = str(settings.data_dir)
    return env
