"""Hand-written fakes for the publishing seams (PostgreSQL stays real)."""

from __future__ import annotations

from collections.abc import Sequence

from schemas import Message
from workers.ingest.sql import DeadLetterRow


class CollectingSink:
    """Keeps what it is given; refuses keys in ``refuse`` as a broker refuses a message."""

    def __init__(self) -> None:
        self.rows: list[DeadLetterRow] = []
        self.refuse: set[str] = set()

    async def publish(self, rows: Sequence[DeadLetterRow]) -> list[BaseException | None]:
        results: list[BaseException | None] = []
        for row in rows:
            if row.dedupe_key in self.refuse:
                results.append(RuntimeError("MessageSizeTooLargeError"))
            else:
                self.rows.append(row)
                results.append(None)
        return results


class CollectingPublisher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, Message]] = []

    async def publish(self, topic: str, event: Message, key: str | None = None) -> None:
        self.sent.append((topic, event))

    def of_type(self, cls: type) -> list[Message]:
        return [e for _, e in self.sent if isinstance(e, cls)]
