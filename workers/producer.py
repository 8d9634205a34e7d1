"""A small producer client: validates events with the contracts and sends them as JSON."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer

from schemas import (
    ChallengerAhead,
    CommandResult,
    FeedbackGiven,
    Message,
    ModelPromoted,
    ModelRegistered,
    ModelRejected,
    OutcomeObserved,
    PredictionMade,
)
from schemas.commands import Command
from workers.settings import TopicsConfig


def topic_for(event: Message, topics: TopicsConfig) -> str:
    if isinstance(event, PredictionMade):
        return topics.predictions
    if isinstance(event, OutcomeObserved):
        return topics.outcomes
    if isinstance(event, FeedbackGiven):
        return topics.feedback
    if isinstance(event, Command):
        return topics.control
    if isinstance(event, ModelPromoted | ModelRegistered | ModelRejected | ChallengerAhead):
        return topics.models
    if isinstance(event, CommandResult):
        return topics.control_results
    raise TypeError(f"no topic for {type(event).__name__}")


def key_for(event: Message) -> bytes | None:
    # Keyed so one prediction's events stay in order on one partition.
    for attr in ("prediction_id", "entity_id", "model"):
        value = getattr(event, attr, None)
        if value:
            return str(value).encode()
    return None


# How long a send waits for others to share its batch. Fewer, larger batches cost every
# broker less per event, and the embedded one (Tansu's memory engine) more so: it keeps
# each batch as an object and lists all of a partition's objects on every fetch that finds
# new data, so its CPU grows with the number of batches ever sent (a lone producer and
# consumer at 1,000 messages/s: 6% -> 42% of a core in 80 s at 5 ms, 3% -> 5% at 50 ms).
LINGER_MS = 50


class EventProducer:
    """``async with EventProducer(bootstrap, topics) as p: await p.send(event)``.
    ``producer_options`` go to aiokafka's producer (e.g. ``linger_ms``)."""

    def __init__(self, bootstrap: str, topics: TopicsConfig, **producer_options: Any) -> None:
        self.topics = topics
        # No idempotence: it fails on Tansu, and redelivery is harmless downstream anyway.
        options: dict[str, Any] = {"acks": "all", "linger_ms": LINGER_MS, **producer_options}
        self._producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **options)

    async def __aenter__(self) -> EventProducer:
        await self._producer.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._producer.stop()

    async def send(self, event: Message) -> None:
        """Queue a validated event; ``flush`` waits for delivery."""
        await self._producer.send(
            topic_for(event, self.topics), event.to_bytes(), key=key_for(event)
        )

    async def send_raw(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        """Send bytes as they are (for tests and malformed-input scenarios)."""
        await self._producer.send(topic, value, key=key)

    async def flush(self) -> None:
        await self._producer.flush()
