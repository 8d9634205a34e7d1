"""SQL of the shadow domain: challenger checkpoints."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from workers.db.pool import Conn

SAVE = """
INSERT INTO challenger_checkpoints (model, challenger, state, digest, seq, learned, updated_at)
SELECT *, now() FROM unnest($1::text[], $2::text[], $3::bytea[], $4::text[], $5::bigint[],
                            $6::bigint[])
ON CONFLICT (model, challenger) DO UPDATE
    SET state = EXCLUDED.state, digest = EXCLUDED.digest, seq = EXCLUDED.seq,
        learned = EXCLUDED.learned, updated_at = now()
"""

LOAD = "SELECT * FROM challenger_checkpoints WHERE model = ANY($1::text[])"


async def save(conn: Conn, rows: Sequence[tuple[str, str, bytes, str, int, int]]) -> None:
    if rows:
        await conn.execute(SAVE, *[list(col) for col in zip(*rows, strict=True)])


async def load(conn: Conn, models: Sequence[str]) -> list[asyncpg.Record]:
    return await conn.fetch(LOAD, list(models))
