"""All SQL of notifications."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from uuid import UUID

import asyncpg

from workers.db.pool import Conn

ENQUEUE = """
INSERT INTO notifications (event_id, webhook, kind, model, body)
SELECT $1, w, $3, $4, $5 FROM unnest($2::text[]) AS w
ON CONFLICT (event_id, webhook) DO NOTHING
"""

# Locked while being sent, so two leaders (a handover) never post the same row at once.
DUE = """
SELECT id, event_id, webhook, kind, body, attempts FROM notifications
WHERE delivered_at IS NULL AND next_attempt_at <= now() AND attempts < $1
ORDER BY id
LIMIT $2
FOR UPDATE SKIP LOCKED
"""

DELIVERED = "UPDATE notifications SET delivered_at = now(), attempts = attempts + 1 WHERE id = $1"

FAILED = """
UPDATE notifications
SET attempts = attempts + 1, last_error = $2, next_attempt_at = now() + $3::interval
WHERE id = $1
"""


async def enqueue(
    conn: Conn,
    event_id: UUID,
    webhooks: Sequence[str],
    kind: str,
    model: str | None,
    body: dict[str, Any],
) -> None:
    await conn.execute(ENQUEUE, event_id, list(webhooks), kind, model, body)


async def due(conn: Conn, max_attempts: int, limit: int) -> list[asyncpg.Record]:
    return await conn.fetch(DUE, max_attempts, limit)


async def delivered(conn: Conn, row_id: int) -> None:
    await conn.execute(DELIVERED, row_id)


async def failed(conn: Conn, row_id: int, error: str, retry_in: timedelta) -> None:
    await conn.execute(FAILED, row_id, error[:500], retry_in)
