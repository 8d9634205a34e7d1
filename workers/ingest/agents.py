"""Thin Faust agents for ingestion: take a batch, hand it to the service, then ack."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import faust
from faust.streams import Stream

from schemas.base import utc_now
from workers import metrics
from workers.ingest.decode import RawMessage
from workers.runtime import Runtime
from workers.topics import ingest_topic

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0


def register(app: faust.App, runtime: Runtime) -> None:
    settings = runtime.settings
    source = ingest_topic(app, settings)
    w = settings.worker

    # Concurrency 1: with more, Faust can commit past an in-flight message (issue #606).
    @app.agent(source, concurrency=1, name="ingest")
    async def ingest(stream: faust.StreamT[Any]) -> None:
        service = await runtime.ready()
        batches = cast(Stream[Any], stream).noack_take(w.batch_max, within=w.batch_within_seconds)
        async for events in batches:
            raws = [
                RawMessage(
                    topic=e.message.topic,
                    partition=e.message.partition,
                    offset=e.message.offset,
                    key=e.message.key,
                    value=e.message.value or b"",
                )
                for e in events
            ]
            backoff = 0.5
            while True:
                try:
                    result = await service.handle(raws)
                    break
                except Exception:
                    # Never let the agent die (that stops its partitions) and never skip:
                    # the batch is retried until PostgreSQL and the broker take it, or
                    # the worker stops (its offsets uncommitted: delivered again).
                    if app.should_stop:
                        return
                    metrics.BATCH_RETRIES.inc()
                    log.exception(
                        "ingest batch of %d failed; retrying in %.1fs", len(raws), backoff
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            # Offsets are committed only for acked events: ack after the batch is durable.
            for e in events:
                await stream.ack(e)
            runtime.last_batch_at = utc_now()
            if result.dead:
                log.warning("dead-lettered %d of %d messages", len(result.dead), len(raws))

    @app.timer(interval=w.sweep_interval_seconds, on_leader=True)
    async def mature_expired() -> None:
        service = await runtime.ready()
        try:
            counts = await service.sweep()
        except Exception:
            log.exception("horizon sweep failed; will retry at the next tick")
            return
        if counts.labeled or counts.dropped:
            log.info("horizon passed: %d labeled, %d dropped", counts.labeled, counts.dropped)
        try:
            if caught_up := await service.republish():
                log.warning("published %d dead letters a failure had held back", caught_up)
        except Exception:
            log.exception("republishing dead letters failed; will retry at the next tick")
