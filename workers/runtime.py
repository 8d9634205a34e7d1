"""What the agents share in one worker process: settings, the pool, the services."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

import asyncpg

from workers.db.pool import create_pool
from workers.ingest.service import DeadLetterSink, IngestService
from workers.monitor.service import MonitorService
from workers.publish import EventPublisher
from workers.settings import Settings

log = logging.getLogger(__name__)


class Runtime:
    """Created before the worker starts; connects lazily on the worker's own event loop."""

    def __init__(self, settings: Settings, sink: DeadLetterSink, publisher: EventPublisher) -> None:
        self.settings = settings
        self.sink = sink
        self.publisher = publisher
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._ingest: IngestService | None = None
        self._monitor: MonitorService | None = None
        self.last_batch_at: datetime | None = None

    @property
    def connected(self) -> bool:
        return self._pool is not None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("Runtime.ready() has not been awaited")
        return self._pool

    async def ready(self) -> IngestService:
        async with self._lock:
            if self._ingest is None:
                self._pool = await create_pool(self.settings, max_size=6)
                self._ingest = IngestService(self.settings, self._pool, self.sink)
                log.info("connected to PostgreSQL")
            return self._ingest

    async def monitor(self) -> MonitorService:
        await self.ready()
        if self._monitor is None:
            self._monitor = MonitorService(self.settings, self.pool, self.publisher)
        return self._monitor

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
            self._ingest = None
            self._monitor = None
