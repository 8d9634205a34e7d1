"""Reading a whole topic from the beginning, for assertions on what was published."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, TopicPartition

from workers.settings import Settings


async def read_topic(settings: Settings, topic: str, expected: int) -> list[object]:
    assert settings.kafka_bootstrap
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.topics.partitions)]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        records: list[object] = []
        for _ in range(60):
            batch = await consumer.getmany(timeout_ms=500)
            records.extend(r for rs in batch.values() for r in rs)
            if len(records) >= expected:
                break
        return records
    finally:
        await consumer.stop()
