"""What the agents share in one worker process: settings, the pool, the services."""

from __future__ import annotations

import asyncio
import logging

import asyncpg

from workers.db.pool import create_pool
from workers.ingest.service import DeadLetterSink, IngestService
from workers.settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    """Created before the worker starts; connects lazily on the worker's own event loop."""

    def __init__(self, settings: Settings, sink: DeadLetterSink) -> None:
        self.settings = settings
        self.sink = sink
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self.ingest: IngestService | None = None

    async def ready(self) -> IngestService:
        async with self._lock:
            if self.ingest is None:
                self._pool = await create_pool(self.settings, max_size=4)
                self.ingest = IngestService(self.settings, self._pool, self.sink)
                log.info("connected to PostgreSQL")
            return self.ingest

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
            self.ingest = None
