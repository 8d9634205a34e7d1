"""Monitoring timers (leader only) and the web endpoints: /metrics, /health, /status."""

from __future__ import annotations

import logging

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from schemas.base import utc_now
from workers.exposition import merged_text
from workers.failures import FailureLog
from workers.health import Observed, assess
from workers.monitor.kafka_lag import ConsumerLagProbe
from workers.monitor.status import stale_after, summary
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def register(app: faust.App, runtime: Runtime) -> None:
    """The leader's monitoring timers (roles loop and all)."""
    cadence = runtime.settings.monitoring
    probe = ConsumerLagProbe(runtime.settings)

    quality = FailureLog("quality tick", log)
    drift = FailureLog("drift tick", log)
    lag = FailureLog("lag report", log)
    load = FailureLog("consumer lag probe", log, level=logging.WARNING)

    @app.timer(interval=cadence.quality_interval_seconds, on_leader=True)
    async def watch_quality() -> None:
        try:
            monitor = await runtime.monitor()
            await monitor.tick_quality()
        except Exception as exc:
            runtime.monitor_ran(exc)
            quality.failed(exc)
        else:
            runtime.monitor_ran(None)
            quality.ok()

    @app.timer(interval=cadence.drift_interval_seconds, on_leader=True)
    async def watch_drift() -> None:
        monitor = await runtime.monitor()
        try:
            await monitor.drift.tick()
        except Exception as exc:
            drift.failed(exc)
        else:
            drift.ok()

    @app.timer(interval=cadence.load_probe_seconds, on_leader=True)
    async def probe_load() -> None:
        # Frequent and cheap (offsets only): the challengers step back while a backlog
        # drains, and /health sees a fresh lag. The lag report below adds the rates.
        monitor = await runtime.monitor()
        try:
            runtime.consumer_lag = sum(p.lag or 0 for p in await probe.measure())
        except Exception as exc:
            load.failed(exc)
            return
        load.ok()
        monitor.ingestion_lag(runtime.consumer_lag)

    @app.timer(interval=cadence.lag_interval_seconds, on_leader=True)
    async def report_lag() -> None:
        monitor = await runtime.monitor()
        try:
            partitions = await probe.measure()
            runtime.consumer_lag = sum(p.lag or 0 for p in partitions)
            await monitor.lag_report(partitions)
        except Exception as exc:
            lag.failed(exc)
        else:
            lag.ok()


def register_web(app: faust.App, runtime: Runtime) -> None:
    """Every role serves /metrics, /health and /status."""

    def assigned() -> int:
        if runtime.ingest_consumer is not None:
            return runtime.ingest_consumer.assigned()
        return len(app.consumer.assignment()) if app.consumer else 0

    @app.page("/metrics")
    async def prometheus(web: View, request: Request) -> Response:
        # aiohttp wants the charset apart from the media type.
        media_type = CONTENT_TYPE_LATEST.split(";")[0]
        child = runtime.ingest_child
        other = await child.metrics() if child is not None else None
        # Role all: the ingest process's samples too, so one target shows the worker.
        try:
            text = generate_latest() if other is None else merged_text(REGISTRY, other)
        except ValueError:  # the child's page did not parse: this process's alone
            log.warning("the ingest process's /metrics did not parse; serving this one's")
            text = generate_latest()
        return web.text(text.decode(), content_type=media_type)

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        """Readiness: 200 when every check passes, else 503 with the reasons."""
        body = assess(
            Observed(
                now=utc_now(),
                database_error=await runtime.database_error(),
                assigned_partitions=assigned(),
                started_at=runtime.started_at,
                last_batch_at=runtime.last_batch_at,
                # Judged where ingestion happens: this process's own partitions.
                consumer_lag=runtime.ingest_consumer.lag() if runtime.ingest_consumer else None,
                leader=runtime.settings.worker.role != "ingest" and app.is_leader(),
                monitor_ok_at=runtime.monitor_ok_at,
                monitor_error=runtime.monitor_error,
                ingest_process=(
                    await runtime.ingest_child.health() if runtime.ingest_child else None
                ),
            ),
            runtime.settings.health,
        )
        return web.json(body, status=200 if body["ok"] else 503)

    @app.page("/health/live")
    async def live(web: View, request: Request) -> Response:
        """Liveness: the event loop answers."""
        return web.json({"alive": True})

    @app.page("/status")
    async def status(web: View, request: Request) -> Response:
        services = await runtime.services()
        async with services.pool.acquire() as conn:
            body = await summary(conn, utc_now(), stale_after=stale_after(runtime.settings))
        return web.json(body)
