"""Publishing the worker's own events (drift, lag, quality alerts) to their topics."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

import faust

from schemas import Message
from workers.settings import Settings
from workers.topics import bytes_topic

log = logging.getLogger(__name__)
E = TypeVar("E", bound=Message)
Listener = Callable[[Message], Awaitable[None]]


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


async def publish_or_forget(
    publisher: EventPublisher,
    topic: str,
    events: Sequence[E],
    *,
    key: Callable[[E], str],
    forget: Callable[[E], None],
    sent: Callable[[E], Awaitable[None]] | None = None,
) -> None:
    """Publish in order, calling `sent` after each one that went out. If one fails,
    `forget` it and every later one (so the alert is raised again at the next check
    instead of being lost), then re-raise."""
    for i, event in enumerate(events):
        try:
            await publisher.publish(topic, event, key=key(event))
        except Exception:
            for unsent in events[i:]:
                forget(unsent)
            raise
        if sent is not None:
            await sent(event)


async def notify(listeners: Sequence[Listener], event: Message) -> None:
    """Tell in-process listeners (the retrain triggers); one failing does not stop others."""
    for listener in listeners:
        try:
            await listener(event)
        except Exception:
            log.exception("a listener failed on %s", type(event).__name__)
