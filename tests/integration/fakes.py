"""Hand-written fakes for the publishing seams (PostgreSQL stays real)."""

from __future__ import annotations

from collections.abc import Sequence

from schemas import Message
from workers.ingest.sql import DeadLetterRow


class CollectingSink:
    def __init__(self) -> None:
        self.rows: list[DeadLetterRow] = []

    async def publish(self, rows: Sequence[DeadLetterRow]) -> None:
        self.rows.extend(rows)


class CollectingPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []

    async def publish(self, topic: str, event: Message, key: str | None = None) -> None:
        self.sent.append((topic, event))

    def of_type(self, cls: type) -> list[Message]:
        return [e for _, e in self.sent if isinstance(e, cls)]
