"""asyncpg pool creation, with JSON codecs so jsonb columns take and give Python objects."""

from __future__ import annotations

import json
from typing import Any, TypeAlias

import asyncpg
import msgspec

from workers.errors import InfraError
from workers.settings import Settings

# A plain connection or one borrowed from a pool: SQL modules accept either.
Conn: TypeAlias = "asyncpg.Connection[Any] | asyncpg.pool.PoolConnectionProxy[Any]"


_DECODER = msgspec.json.Decoder()


def _loads(text: str) -> Any:
    """msgspec's decoder (several times json's speed: a million rows of features are read
    for a large retrain); json for anything it declines, such as integers past 64 bits."""
    try:
        return _DECODER.decode(text)
    except msgspec.DecodeError:
        return json.loads(text)


async def init_connection(conn: asyncpg.Connection[Any]) -> None:
    for typename in ("json", "jsonb"):
        await conn.set_type_codec(typename, encoder=json.dumps, decoder=_loads, schema="pg_catalog")


def dsn_of(settings: Settings) -> str:
    if settings.database_url is None:
        raise InfraError(
            "no database configured: set OL_DATABASE_URL or run `outcomeloop infra up`"
        )
    return settings.database_url.get_secret_value()


async def create_pool(settings: Settings, *, min_size: int = 1, max_size: int = 4) -> asyncpg.Pool:
    try:
        # Timeouts bound every wait on a frozen server, including the cancel request
        # asyncpg sends when a task is cancelled mid-query (unbounded without one).
        pool = await asyncpg.create_pool(
            dsn_of(settings),
            min_size=min_size,
            max_size=max_size,
            init=init_connection,
            timeout=settings.worker.db_connect_timeout_seconds,
            command_timeout=settings.worker.db_command_timeout_seconds,
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise InfraError(f"cannot connect to PostgreSQL: {exc}") from exc
    assert pool is not None
    return pool
