"""Prometheus metrics the worker exposes on /metrics."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

EVENTS_IN = Counter("ol_events_in_total", "Messages consumed", ["topic"])
DEAD_LETTERS = Counter("ol_dead_letters_total", "Messages dead-lettered", ["topic", "error_type"])
MATURED = Counter("ol_examples_matured_total", "Predictions matured with a label", ["how"])
BATCH_RETRIES = Counter("ol_batch_retries_total", "Batches retried after a transient failure")
PENDING = Gauge("ol_pending_predictions", "Predictions waiting for an outcome or their horizon")
