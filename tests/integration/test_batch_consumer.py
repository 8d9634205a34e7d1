"""The batched consumer keeps several batches in flight and still commits strictly in
order: a later batch that is durable first never moves the committed offset past an
earlier one that is not (a crash then would lose the earlier batch). Real broker and
PostgreSQL; only the first batch's write is held back, by a gate in front of the real
service."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from tests.conftest import SettingsFactory, pending_counts_wrong
from tests.integration.fakes import CollectingSink
from tests.integration.test_faults import prediction
from workers.ingest.consumer import BatchConsumer, ingest_group
from workers.ingest.decode import RawMessage
from workers.ingest.service import BatchResult, IngestService
from workers.producer import EventProducer
from workers.settings import Settings
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration

BATCH = 5
IN_FLIGHT = 3
EVENTS = (IN_FLIGHT + 1) * BATCH


class FirstBatchHeld:
    """The real ingest service; its first batch waits for ``release`` before it writes."""

    def __init__(self, service: IngestService) -> None:
        self.service = service
        self.release = asyncio.Event()
        self.first_waiting = asyncio.Event()
        self.durable: list[int] = []  # batch sizes in the order they became durable
        self.others_durable = asyncio.Event()  # every batch in flight but the first
        self.calls = 0

    async def handle(self, raws: Sequence[RawMessage]) -> BatchResult:
        self.calls += 1
        if self.calls == 1:
            self.first_waiting.set()
            await self.release.wait()
        result = await self.service.handle(raws)
        self.durable.append(len(raws))
        if len(self.durable) == IN_FLIGHT - 1:
            self.others_durable.set()
        return result


async def committed(settings: Settings, tp: TopicPartition) -> int | None:
    reader = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=ingest_group(settings),
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        offset: int | None = await reader.committed(tp)
        return offset
    finally:
        await reader.stop()


async def stored(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM predictions"))


async def test_a_later_batch_never_commits_past_an_earlier_one(
    make_settings: SettingsFactory, pool: asyncpg.Pool
) -> None:
    base = make_settings()
    settings = base.model_copy(
        update={
            "worker": base.worker.model_copy(
                update={"batch_max": BATCH, "batches_in_flight": IN_FLIGHT}
            )
        }
    )
    await ensure_topics(settings)
    assert settings.kafka_bootstrap
    async with EventProducer(settings.kafka_bootstrap, settings.topics) as producer:
        for i in range(EVENTS):
            await producer.send_raw(
                settings.topics.predictions, prediction(i).to_bytes(), key=b"one-partition"
            )
        await producer.flush()

    gate = FirstBatchHeld(IngestService(settings, pool, CollectingSink()))

    async def service() -> FirstBatchHeld:
        return gate

    finished: list[int] = []
    all_finished = asyncio.Event()

    def on_batch(result: BatchResult) -> None:
        finished.append(result.consumed)
        if sum(finished) >= EVENTS:
            all_finished.set()

    stop = False
    consumer = BatchConsumer(
        settings,
        service,
        should_stop=lambda: stop,
        on_batch=on_batch,
    )
    running = asyncio.create_task(consumer.run())
    try:
        await asyncio.wait_for(gate.first_waiting.wait(), 30)
        # The next batches are fetched, decoded and written while the first is held ...
        await asyncio.wait_for(gate.others_durable.wait(), 30)
        assert gate.durable == [BATCH] * (IN_FLIGHT - 1)
        assert await stored(pool) == (IN_FLIGHT - 1) * BATCH
        await asyncio.sleep(0.5)
        # ... but none finished nor committed, and no batch past the limit was started.
        assert finished == []
        assert gate.calls == IN_FLIGHT
        kafka = consumer.consumer
        assert kafka is not None
        (tp,) = [tp for tp in kafka.assignment() if kafka.highwater(tp) == EVENTS]
        assert await committed(settings, tp) is None

        gate.release.set()
        await asyncio.wait_for(all_finished.wait(), 30)
        assert finished == [BATCH] * (IN_FLIGHT + 1)
        assert await stored(pool) == EVENTS
        # Batches written side by side each counted their pending predictions once.
        assert await pending_counts_wrong(pool) == []
        # The commit follows the last batch's durability at once.
        assert await committed(settings, tp) == EVENTS
    finally:
        stop = True
        await asyncio.wait_for(running, 30)
