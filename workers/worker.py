"""Running the worker: prepare PostgreSQL and topics, then hand over to Faust."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import threading
from typing import Any, NoReturn

from faust.worker import Worker

from workers.app import create_app
from workers.control import agents as control_agents
from workers.dashboard import agents as dashboard_agents
from workers.db.migrate import migrate
from workers.db.pool import create_pool
from workers.dlq import FaustDeadLetterSink
from workers.ingest import agents as ingest_agents
from workers.ingest.child import IngestChild
from workers.malloc import pin_mmap_threshold
from workers.monitor import agents as monitor_agents
from workers.notify import agents as notify_agents
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


class BoundedWorker(Worker):
    """A Faust worker whose shutdown cannot hang: once a stop signal arrives, a thread
    (which a stuck event loop cannot block) ends the process after `timeout` seconds.
    Offsets are committed only after durable writes, so whatever was in flight is
    delivered again to the next worker; nothing is lost by not waiting."""

    def __init__(self, *args: Any, shutdown_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._shutdown_timeout = shutdown_timeout
        self._watchdog: threading.Timer | None = None
        self.ingest_child: IngestChild | None = None

    def _schedule_shutdown(self, signal: signal.Signals) -> None:
        if self.ingest_child is not None:
            threading.Thread(target=self.ingest_child.stop, daemon=True).start()
        if self._watchdog is None:
            self._watchdog = threading.Timer(self._shutdown_timeout, self._give_up, (signal,))
            self._watchdog.daemon = True
            self._watchdog.start()
        super()._schedule_shutdown(signal)

    def _give_up(self, sig: signal.Signals) -> None:
        log.warning(
            "still stopping %.0f s after %s (PostgreSQL or Kafka not answering?); exiting "
            "now, uncommitted events will be delivered again",
            self._shutdown_timeout,
            sig.name,
        )
        logging.shutdown()
        os._exit(0)


# Young objects are collected after this many net allocations (CPython's default: 700).
GC_YOUNG_THRESHOLD = 20_000


def settle_heap() -> None:
    """Keep the cyclic garbage collector off the hot path. Start-up leaves a large heap of
    long-lived objects (modules, pydantic schemas, Faust) that every full collection walked
    again: measured on `--role ingest` draining a backlog, the collector took 2.5 of 11.9
    CPU seconds. Frozen, it is never walked again; and with a higher young threshold a
    batch's events (freed by reference counting once stored) are rarely scanned at all:
    0.1 s. Cycles are still collected, only less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)


def run_worker(settings: Settings) -> NoReturn:
    """Block running the Faust worker until it is stopped (SIGINT/SIGTERM)."""
    pin_mmap_threshold()  # before the first batch: see workers.malloc
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    loop.run_until_complete(prepare(settings))
    app = create_app(settings)
    sink = FaustDeadLetterSink(bytes_topic(app, settings.topics.dlq, settings))
    runtime = Runtime(settings, sink, FaustPublisher(app, settings))
    role = settings.worker.role
    child: IngestChild | None = None
    if role == "all" and settings.worker.ingest_process:
        # Ingestion in its own process; this one runs the loop and supervises it.
        child = runtime.ingest_child = IngestChild(settings)
        role = "loop"
    if role in ("ingest", "all"):
        ingest_agents.register(app, runtime)
    if role in ("loop", "all"):
        ingest_agents.register_sweep(app, runtime)
        monitor_agents.register(app, runtime)
        control_agents.register(app, runtime)
        notify_agents.register(app, runtime)
        dashboard_agents.register_web(app, runtime)
    monitor_agents.register_web(app, runtime)
    log.info("worker role: %s%s", settings.worker.role, " (ingesting in a child)" if child else "")
    worker = BoundedWorker(
        app,
        loglevel=settings.log_level,
        loop=loop,
        quiet=True,
        shutdown_timeout=settings.worker.shutdown_timeout_seconds,
    )
    if child is not None:
        worker.ingest_child = child
        child.start()
    settle_heap()
    try:
        worker.execute_from_commandline()
    finally:
        if child is not None:
            child.stop()
