"""Monitoring timers (leader only) and the web endpoints: /metrics, /health, /status."""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from schemas.base import utc_now
from workers.monitor.kafka_lag import ConsumerLagProbe
from workers.monitor.status import summary
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def register(app: faust.App, runtime: Runtime) -> None:
    cadence = runtime.settings.monitoring
    probe = ConsumerLagProbe(runtime.settings)

    @app.timer(interval=cadence.quality_interval_seconds, on_leader=True)
    async def watch_quality() -> None:
        monitor = await runtime.monitor()
        try:
            await monitor.tick_quality()
        except Exception:
            log.exception("quality tick failed; retrying at the next one")

    @app.timer(interval=cadence.drift_interval_seconds, on_leader=True)
    async def watch_drift() -> None:
        monitor = await runtime.monitor()
        try:
            await monitor.drift.tick()
        except Exception:
            log.exception("drift tick failed; retrying at the next one")

    @app.timer(interval=cadence.lag_interval_seconds, on_leader=True)
    async def report_lag() -> None:
        monitor = await runtime.monitor()
        try:
            await monitor.lag_report(await probe.measure())
        except Exception:
            log.exception("lag report failed; retrying at the next one")

    @app.page("/metrics")
    async def prometheus(web: View, request: Request) -> Response:
        # aiohttp wants the charset apart from the media type.
        media_type = CONTENT_TYPE_LATEST.split(";")[0]
        return web.text(generate_latest().decode(), content_type=media_type)

    @app.page("/health")
    async def health(web: View, request: Request) -> Response:
        assigned = len(app.consumer.assignment()) if app.consumer else 0
        body: dict[str, Any] = {
            "consuming": runtime.connected and assigned > 0,
            "assigned_partitions": assigned,
            "last_batch_at": runtime.last_batch_at.isoformat() if runtime.last_batch_at else None,
            "leader": app.is_leader(),
        }
        return web.json(body, status=200 if body["consuming"] else 503)

    @app.page("/status")
    async def status(web: View, request: Request) -> Response:
        services = await runtime.services()
        async with services.pool.acquire() as conn:
            body = await summary(conn, utc_now())
        return web.json(body)
