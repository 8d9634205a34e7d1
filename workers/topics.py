"""Topic creation and the Faust topic handles. Topics carry bytes; pydantic validates."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import faust
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, TopicAlreadyExistsError

from workers.errors import InfraError
from workers.settings import Settings

log = logging.getLogger(__name__)


async def ensure_topics(settings: Settings, *, attempts: int = 40) -> list[str]:
    """Create every configured topic that is missing, with the configured partitions.

    Done up front because brokers (Tansu among them) auto-create topics with their own
    partition count, and Faust cannot recover from a mismatch.
    """
    assert settings.kafka_bootstrap is not None
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    for attempt in range(attempts):
        try:
            await admin.start()
            break
        except KafkaConnectionError:
            if attempt == attempts - 1:
                raise InfraError(f"Kafka at {settings.kafka_bootstrap} is unreachable") from None
            await asyncio.sleep(0.25)
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in settings.topics.all_names() if t not in existing]
        created: list[str] = []
        for name in wanted:
            try:
                topic = NewTopic(
                    name,
                    num_partitions=settings.topics.partitions,
                    replication_factor=settings.topics.replication_factor,
                )
                await admin.create_topics([topic])
                created.append(name)
            except TopicAlreadyExistsError:
                pass
        return created
    finally:
        await admin.close()


def bytes_topic(app: faust.App, name: str, settings: Settings) -> faust.TopicT:
    return app.topic(
        name,
        key_serializer="raw",
        value_serializer="raw",
        partitions=settings.topics.partitions,
    )


async def consumer_at_end(settings: Settings, topic: str) -> Any:
    """A group-less consumer assigned every partition of `topic`, positioned at the end:
    for waiting on answers or events that happen after this moment."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, enable_auto_commit=False
    )
    await consumer.start()
    await consumer.topics()  # refresh metadata so partitions are known
    ids = consumer.partitions_for_topic(topic) or set(range(settings.topics.partitions))
    parts = [TopicPartition(topic, p) for p in sorted(ids)]
    consumer.assign(parts)
    await consumer.seek_to_end(*parts)
    for tp in parts:
        await consumer.position(tp)  # resolve "end" now, not at the first fetch
    return consumer
