"""Prometheus metrics the worker exposes on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_IN = Counter("ol_events_in_total", "Messages consumed", ["topic"])
DEAD_LETTERS = Counter("ol_dead_letters_total", "Messages dead-lettered", ["topic", "error_type"])
MATURED = Counter("ol_examples_matured_total", "Predictions matured with a label", ["how"])
BATCH_RETRIES = Counter("ol_batch_retries_total", "Batches retried after a transient failure")
PENDING = Gauge("ol_pending_predictions", "Predictions waiting for an outcome or their horizon")
ROLLING = Gauge(
    "ol_rolling_metric",
    "Rolling quality on matured examples",
    ["model", "version", "window", "metric"],
)
DRIFT_ACTIVE = Gauge(
    "ol_drift_active", "1 while a drift episode is open", ["model", "version", "feature"]
)
DRIFT_EPISODES = Counter("ol_drift_episodes_total", "Drift episodes started", ["model", "feature"])
QUALITY_ALERTS = Counter("ol_quality_alerts_total", "Alert rules crossed", ["model", "metric"])
CONSUMER_LAG = Gauge("ol_consumer_lag", "Messages not yet consumed", ["topic", "partition"])
# "quantile" is reserved for summaries (promtool refuses it on a gauge).
LABEL_DELAY = Gauge(
    "ol_label_delay_seconds", "Outcome delay after prediction, by percentile", ["percentile"]
)
CHALLENGER = Gauge(
    "ol_challenger_metric",
    "Rolling metric of each challenger and of the champion on the same examples",
    ["model", "challenger", "side"],
)
SHADOW_SKIPPED = Gauge(
    "ol_shadow_skipped_examples",
    "Matured examples challengers did not learn from (sampled out, or over their rate budget)",
    ["model"],
)
UNDECLARED_FEATURES = Counter(
    "ol_undeclared_features_total",
    "Features dropped because the model does not declare them",
    ["model"],
)
MONITOR_FAILURES = Counter(
    "ol_monitor_failures_total", "Monitoring steps that failed for one model", ["model", "step"]
)
RETRAIN_RUNS = Counter(
    "ol_retrain_runs_total", "Retrain runs by how they ended", ["model", "status"]
)
RETRAIN_EXHAUSTED = Counter(
    "ol_retrain_exhausted_total", "Degradations the retrain loop gave up on", ["model"]
)
LAST_RETRAIN = Gauge(
    "ol_last_successful_retrain_timestamp_seconds",
    "When a model's last retrain run succeeded (from PostgreSQL)",
    ["model"],
)
MONITOR_LAST_TICK = Gauge(
    "ol_monitor_last_tick_timestamp_seconds", "When the quality monitor last ticked without error"
)
