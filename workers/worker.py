"""Running the worker: prepare PostgreSQL and topics, then hand over to Faust."""

from __future__ import annotations

import asyncio
import logging
from typing import NoReturn

from workers.app import create_app
from workers.control import agents as control_agents
from workers.db.migrate import migrate
from workers.db.pool import create_pool
from workers.dlq import FaustDeadLetterSink
from workers.ingest import agents as ingest_agents
from workers.monitor import agents as monitor_agents
from workers.publish import FaustPublisher
from workers.runtime import Runtime
from workers.settings import Settings
from workers.topics import bytes_topic, ensure_topics

log = logging.getLogger(__name__)


async def apply_migrations(settings: Settings) -> list[str]:
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            applied = await migrate(conn, settings.migrations_dir)
    finally:
        await pool.close()
    return [f"{m.version:03d}_{m.name}" for m in applied]


async def prepare(settings: Settings) -> None:
    applied = await apply_migrations(settings)
    if applied:
        log.info("applied migrations: %s", ", ".join(applied))
    created = await ensure_topics(settings)
    if created:
        log.info("created topics: %s", ", ".join(created))


def run_worker(settings: Settings) -> NoReturn:
    """Block running the Faust worker until it is stopped (SIGINT/SIGTERM)."""
    from faust.worker import Worker

    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(prepare(settings))
    app = create_app(settings)
    sink = FaustDeadLetterSink(bytes_topic(app, settings.topics.dlq, settings))
    runtime = Runtime(settings, sink, FaustPublisher(app, settings))
    ingest_agents.register(app, runtime)
    monitor_agents.register(app, runtime)
    control_agents.register(app, runtime)
    worker = Worker(app, loglevel=settings.log_level, loop=loop, quiet=True)
    worker.execute_from_commandline()
