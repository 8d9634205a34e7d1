"""Ingestion in the worker: the batched consumer as a Faust task, and the horizon sweep."""

from __future__ import annotations

import logging

import faust

from schemas.base import utc_now
from workers.failures import FailureLog
from workers.ingest.consumer import BatchConsumer
from workers.ingest.service import BatchResult
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def register(app: faust.App, runtime: Runtime) -> None:
    """The hot path: consume the ingest topics in batches (see consumer.py)."""

    def batch_done(result: BatchResult) -> None:
        runtime.last_batch_at = utc_now()

    consumer = BatchConsumer(
        runtime.settings,
        runtime.ready,
        should_stop=lambda: bool(app.should_stop),
        on_batch=batch_done,
    )
    runtime.ingest_consumer = consumer

    @app.task
    async def ingest() -> None:
        await consumer.run()


def register_sweep(app: faust.App, runtime: Runtime) -> None:
    """The leader matures predictions whose horizon passed without an outcome."""

    sweep = FailureLog("horizon sweep", log)
    republish = FailureLog("republishing dead letters", log)
    recount = FailureLog("checking the pending counts", log)

    @app.timer(interval=runtime.settings.worker.sweep_interval_seconds, on_leader=True)
    async def mature_expired() -> None:
        service = await runtime.ready()
        try:
            counts = await service.sweep()
        except Exception as exc:
            sweep.failed(exc)
            return
        sweep.ok()
        if counts.labeled or counts.dropped:
            log.info("horizon passed: %d labeled, %d dropped", counts.labeled, counts.dropped)
        try:
            if caught_up := await service.republish():
                log.warning("published %d dead letters a failure had held back", caught_up)
        except Exception as exc:
            republish.failed(exc)
        else:
            republish.ok()

    @app.timer(interval=runtime.settings.worker.pending_recount_seconds, on_leader=True)
    async def recount_pending() -> None:
        service = await runtime.ready()
        try:
            corrected = await service.recount_pending()
        except Exception as exc:
            recount.failed(exc)
            return
        recount.ok()
        if corrected:
            log.warning(
                "pending counts corrected by %s (rows a worker changed without counting them, "
                "e.g. an older version still running during an upgrade)",
                corrected,
            )
