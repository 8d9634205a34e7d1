"""The dead-letter topic: original bytes as the value, the context in headers.

Follows Kafka Connect's convention, so existing DLQ tooling can read it: the value is
exactly what the producer sent; headers say where it came from and why it was refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faust

from workers.ingest.sql import DeadLetterRow


def headers_for(row: DeadLetterRow) -> list[tuple[str, bytes]]:
    return [
        ("ol.dlq.reason", row.reason.encode()),
        ("ol.dlq.error_type", row.error_type.encode()),
        ("ol.dlq.topic", row.topic.encode()),
        ("ol.dlq.partition", str(row.partition).encode()),
        ("ol.dlq.offset", str(row.offset).encode()),
        ("ol.dlq.original_bytes", str(row.original_bytes or len(row.payload)).encode()),
        ("ol.dlq.sha256", row.sha256.encode()),
        ("ol.dlq.truncated", b"true" if row.truncated else b"false"),
    ]


class FaustDeadLetterSink:
    """Publishes dead letters and waits until the broker has them."""

    def __init__(self, topic: faust.TopicT) -> None:
        self.topic = topic

    async def publish(self, rows: Sequence[DeadLetterRow]) -> list[BaseException | None]:
        """One result per row: None when the broker has it, else why not. A row the
        broker refuses does not stop the others."""
        pending: list[Any] = []
        for row in rows:
            try:
                # force=True: send now rather than when the source event is acked.
                pending.append(
                    await self.topic.send(
                        key=row.key, value=row.payload, headers=headers_for(row), force=True
                    )
                )
            except Exception as exc:
                pending.append(exc)
        results: list[BaseException | None] = []
        for fut in pending:
            if isinstance(fut, BaseException):
                results.append(fut)
                continue
            try:
                await fut
                results.append(None)
            except Exception as exc:
                results.append(exc)
        return results
