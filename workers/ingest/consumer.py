"""Ingest's hot path: whole batches from aiokafka's ``getmany`` into the ingest service.

Faust's stream machinery costs more per message than everything the ingest service does
with it (see BENCHMARKS.md), so ingestion reads Kafka directly, in its own consumer group,
and commits a batch's offsets only after the batch is durable in PostgreSQL. Every step
of ``IngestService.handle`` is idempotent, so a batch redelivered after a crash, a
rebalance or a failed commit changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from workers import metrics
from workers.ingest.decode import RawMessage
from workers.ingest.service import BatchResult, IngestService
from workers.settings import Settings

log = logging.getLogger(__name__)
MAX_BACKOFF_SECONDS = 30.0


def ingest_group(settings: Settings) -> str:
    """The consumer group of the ingest topics (apart from Faust's group, whose assignor
    a plain consumer cannot share)."""
    return f"{settings.app_id}-ingest"


def make_consumer(settings: Settings) -> AIOKafkaConsumer:
    w = settings.worker
    return AIOKafkaConsumer(
        *settings.topics.ingest_names(),
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=ingest_group(settings),
        client_id=f"{settings.app_id}-ingest",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        session_timeout_ms=int(w.session_timeout_seconds * 1000),
        heartbeat_interval_ms=int(w.heartbeat_interval_seconds * 1000),
        max_poll_records=w.batch_max,
        fetch_max_wait_ms=int(w.fetch_max_wait_seconds * 1000),
        # One oversized message must still come through (to be dead-lettered), so a fetch
        # may carry a message larger than the per-partition size; Kafka allows that.
        max_partition_fetch_bytes=1 << 20,
    )


def raw_messages(batches: dict[TopicPartition, list[Any]]) -> list[RawMessage]:
    return [
        RawMessage(m.topic, m.partition, m.offset, m.key, m.value or b"")
        for messages in batches.values()
        for m in messages
    ]


def next_offsets(batches: dict[TopicPartition, list[Any]]) -> dict[TopicPartition, int]:
    return {tp: messages[-1].offset + 1 for tp, messages in batches.items() if messages}


@dataclass(frozen=True)
class _InFlight:
    task: asyncio.Task[BatchResult | None]
    offsets: dict[TopicPartition, int]
    size: int


class BatchConsumer:
    """Consume, handle, commit; until stopped. Never skips a batch: a failing one is
    retried with backoff, its offsets uncommitted, until it is durable or the worker stops."""

    def __init__(
        self,
        settings: Settings,
        service: Callable[[], Any],
        *,
        should_stop: Callable[[], bool],
        on_batch: Callable[[BatchResult], None],
    ) -> None:
        self.settings = settings
        self._service = service
        self._should_stop = should_stop
        self._on_batch = on_batch
        self.consumer: AIOKafkaConsumer | None = None
        self._done: dict[TopicPartition, int] = {}  # next offset after the last durable batch

    def assigned(self) -> int:
        return len(self.consumer.assignment()) if self.consumer is not None else 0

    def lag(self) -> int | None:
        """Messages on this worker's partitions past its last durable batch, from the last
        fetch's high-water marks (no broker call). Partitions it has not stored a batch
        from yet are left out; None when there is none."""
        consumer = self.consumer
        if consumer is None:
            return None
        behind = [
            max(high - self._done[tp], 0)
            for tp in consumer.assignment()
            if tp in self._done and (high := consumer.highwater(tp)) is not None
        ]
        return sum(behind) if behind else None

    async def run(self) -> None:
        """Until the worker stops; a consumer that fails (broker gone, PostgreSQL down at
        start) is replaced after a backoff rather than leaving ingestion dead."""
        backoff = 1.0
        while not self._should_stop():
            try:
                await self._consume()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._should_stop():
                    return
                log.exception("ingest consumer failed; starting a new one in %.0fs", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _consume(self) -> None:
        service: IngestService = await self._service()
        consumer = make_consumer(self.settings)
        await consumer.start()
        self.consumer = consumer
        within_ms = int(self.settings.worker.batch_within_seconds * 1000)
        # Several batches in flight: while one waits on PostgreSQL, the next are fetched,
        # decoded and inserted. Batches are finished (committed) strictly in order, so an
        # offset is committed only once every batch before it is durable too.
        in_flight = self.settings.worker.batches_in_flight
        pending: deque[_InFlight] = deque()
        try:
            while not self._should_stop():
                # With a batch in flight, take only what is already fetched: finishing
                # it must not wait on the next fetch.
                batches = await consumer.getmany(
                    timeout_ms=0 if pending else within_ms,
                    max_records=self.settings.worker.batch_max,
                )
                if batches:
                    raws = raw_messages(batches)
                    task = asyncio.create_task(self._handle(service, raws))
                    pending.append(_InFlight(task, next_offsets(batches), len(raws)))
                if (len(pending) >= in_flight or not batches) and pending:
                    if not await self._finish(consumer, pending[0]):
                        return  # stopping: left uncommitted, delivered again
                    pending.popleft()
            while pending and await self._finish(consumer, pending[0]):
                pending.popleft()
        finally:
            for batch in pending:
                if not batch.task.done():
                    batch.task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await batch.task
            self.consumer = None
            await consumer.stop()

    async def _finish(self, consumer: AIOKafkaConsumer, batch: _InFlight) -> bool:
        """Wait for a batch to be durable, then commit its offsets. False when the worker
        stopped before it was."""
        result = await batch.task
        if result is None:
            return False
        await self._commit(consumer, batch.offsets)
        self._done.update(batch.offsets)
        self._on_batch(result)
        if result.dead:
            log.warning("dead-lettered %d of %d messages", len(result.dead), batch.size)
        return True

    async def _handle(self, service: IngestService, raws: list[RawMessage]) -> BatchResult | None:
        backoff = 0.5
        while True:
            try:
                return await service.handle(raws)
            except Exception:
                if self._should_stop():
                    return None
                metrics.BATCH_RETRIES.inc()
                log.exception("ingest batch of %d failed; retrying in %.1fs", len(raws), backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            await consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # The group rebalanced while the batch was written: its new owner reads the
            # same messages again, which changes nothing.
            log.info("batch durable but not committed (%s); it will be delivered again", exc)
        except KafkaError as exc:
            log.warning("commit failed (%s); the batch will be delivered again", exc)
