"""Publishing the worker's own events (drift, lag, quality alerts) to their topics."""

from __future__ import annotations

from typing import Protocol

import faust

from schemas import Message
from workers.settings import Settings
from workers.topics import bytes_topic


class EventPublisher(Protocol):
    async def publish(self, topic: str, event: Message, key: str | None = None) -> None: ...


class FaustPublisher:
    """Sends through the worker's own producer and waits until the broker has it."""

    def __init__(self, app: faust.App, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self._topics: dict[str, faust.TopicT] = {}

    async def publish(self, topic: str, event: Message, key: str | None = None) -> None:
        handle = self._topics.get(topic)
        if handle is None:
            handle = self._topics[topic] = bytes_topic(self.app, topic, self.settings)
        fut = await handle.send(
            key=key.encode() if key else None, value=event.to_bytes(), force=True
        )
        await fut
