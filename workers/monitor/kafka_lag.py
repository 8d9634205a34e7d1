"""Consumer lag per topic and partition: the group's committed offsets against end offsets.

On the embedded Tansu broker end offsets can read short (see DESIGN.md), so lag there is
approximate; on Kafka it is exact.
"""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaConsumer, TopicPartition

from schemas import PartitionLag
from workers.ingest.consumer import ingest_group
from workers.settings import Settings


class ConsumerLagProbe:
    def __init__(self, settings: Settings) -> None:
        assert settings.kafka_bootstrap is not None
        self.settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()  # the load probe and the lag report share the client

    async def _started(self) -> AIOKafkaConsumer:
        # Created on first use: aiokafka clients bind to the running event loop. It names
        # the worker's group to read its commits (OffsetFetch) but never subscribes, so it
        # never joins the group. (The admin client's group-offsets call fails on Tansu.)
        if self._consumer is None:
            consumer = AIOKafkaConsumer(
                bootstrap_servers=self.settings.kafka_bootstrap,
                group_id=ingest_group(self.settings),
                enable_auto_commit=False,
            )
            await consumer.start()
            self._consumer = consumer
        return self._consumer

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def measure(self) -> list[PartitionLag]:
        async with self._lock:
            return await self._measure()

    async def _measure(self) -> list[PartitionLag]:
        consumer = await self._started()
        topics = self.settings.topics
        parts = [
            TopicPartition(t, p)
            for t in topics.ingest_names()
            for p in sorted(consumer.partitions_for_topic(t) or range(topics.partitions))
        ]
        ends = await consumer.end_offsets(parts)
        out = []
        for tp in parts:
            done = await consumer.committed(tp)
            end = int(ends.get(tp, 0))
            out.append(
                PartitionLag(
                    topic=tp.topic,
                    partition=tp.partition,
                    end_offset=end,
                    committed=done,
                    lag=max(end - done, 0) if done is not None else end,
                )
            )
        return out
