"""SQL of the control domain: the command log that makes replays harmless."""

from __future__ import annotations

from typing import Any

import asyncpg

from workers.db.pool import Conn

RECORD = """
INSERT INTO commands (command_id, command, model, issued_by, reason, payload, status)
VALUES ($1, $2, $3, $4, $5, $6, 'accepted')
ON CONFLICT (command_id) DO NOTHING
RETURNING command_id
"""

GET = "SELECT * FROM commands WHERE command_id = $1"

SETTLE = """
UPDATE commands SET status = $2, result = $3, finished_at = now() WHERE command_id = $1
"""


async def record(conn: Conn, c: Any, payload: dict[str, Any]) -> bool:
    """True when the command is new; False when this id was seen before (a replay)."""
    row = await conn.fetchval(
        RECORD, c.event_id, c.command, c.model, c.issued_by, c.reason, payload
    )
    return row is not None


async def get(conn: Conn, command_id: Any) -> asyncpg.Record | None:
    return await conn.fetchrow(GET, command_id)


async def settle(conn: Conn, command_id: Any, status: str, result: dict[str, Any]) -> None:
    await conn.execute(SETTLE, command_id, status, result)
