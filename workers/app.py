"""The Faust app, built from settings. Holds the app and nothing else."""

from __future__ import annotations

import faust

from workers.settings import Settings


def create_app(settings: Settings) -> faust.App:
    if settings.kafka_bootstrap is None:
        raise ValueError("create_app needs a resolved kafka_bootstrap (see infra.ensure_infra)")
    w = settings.worker
    # An ingest-only worker joins a Faust group of its own: in the loop's group it could
    # take the leadership the loop's timers (monitoring, retraining) run under.
    app_id = f"{settings.app_id}-ingest-role" if w.role == "ingest" else settings.app_id
    return faust.App(
        app_id,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        # PostgreSQL is the source of truth: no Faust tables to recover, nothing on disk.
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.topics.partitions,
        broker_session_timeout=w.session_timeout_seconds,
        broker_heartbeat_interval=w.heartbeat_interval_seconds,
        broker_commit_interval=w.commit_interval_seconds,
        consumer_auto_offset_reset="earliest",
        # Don't wait for in-flight events on stop or rebalance: a batch retrying through a
        # PostgreSQL outage would hold SIGTERM for minutes. Offsets are committed only
        # after a batch is durable, so what was in flight is simply delivered again.
        stream_wait_empty=False,
        producer_acks=-1,
        web_enabled=w.web_enabled,
        web_host=w.web_host,
        web_bind=w.web_host,  # Faust listens on web_bind (all interfaces by default)
        web_port=w.web_port,
        web_in_thread=False,
    )
