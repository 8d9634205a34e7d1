"""What the agents share in one worker process: settings, the pool, the services."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from concurrent.futures import Executor, ProcessPoolExecutor
from datetime import datetime

import asyncpg

from schemas import ChallengerAhead, DriftDetected, Message, QualityAlertRaised
from schemas.base import utc_now
from workers import metrics
from workers.control.service import ControlService
from workers.db.pool import create_pool
from workers.ingest.child import IngestChild
from workers.ingest.consumer import BatchConsumer
from workers.ingest.service import DeadLetterSink, IngestService
from workers.monitor.service import MonitorService
from workers.notify.service import Deliverer, NotifyingPublisher
from workers.publish import EventPublisher
from workers.registry.service import Registry
from workers.retrain.pipeline import preload
from workers.retrain.service import RetrainService
from workers.retrain.triggers import drift_fires
from workers.settings import Settings

log = logging.getLogger(__name__)


def training_pool() -> ProcessPoolExecutor:
    # "spawn": the child gets no copy of this process's event loop and broker threads.
    # One run per child: a run's dataset lives only there, and its memory goes with it.
    # The pool starts each replacement child at once and the initializer imports the
    # training stack there, so the next run does not wait seconds for its imports.
    return ProcessPoolExecutor(
        max_workers=1,
        mp_context=multiprocessing.get_context("spawn"),
        max_tasks_per_child=1,
        initializer=preload,
        initargs=(os.getpid(),),
    )


class Services:
    """Everything built on one pool; made once per worker, on its event loop."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        sink: DeadLetterSink,
        publisher: EventPublisher,
    ) -> None:
        self.pool = pool
        # Everything the loop publishes may also go to webhooks (notifications.webhooks).
        publisher = NotifyingPublisher(publisher, settings, pool)
        self.notifications = Deliverer(settings, pool)
        self.ingest = IngestService(settings, pool, sink)
        self.registry = Registry(pool)
        # Training runs in its own process, so the worker keeps consuming meanwhile.
        self.retrain = RetrainService(
            settings,
            pool,
            publisher,
            self.registry,
            training_pool(),
            executor_factory=training_pool,
        )
        self.monitor = MonitorService(settings, pool, publisher)
        self.control = ControlService(settings, pool, publisher, sink, self.registry, self.retrain)
        self.monitor.listeners.append(self._on_alert)
        self.retrain.degraded = self.monitor.degraded
        self.retrain.serving = self.monitor.restart
        self.settings = settings

    async def _on_alert(self, event: Message) -> None:
        if isinstance(event, ChallengerAhead):
            cfg = self.settings.models.get(event.model)
            if cfg is not None and cfg.shadow.on_ahead == "retrain":
                await self.retrain.trigger(
                    event.model,
                    "challenger",
                    {"challenger": event.challenger, "improvement": event.improvement},
                )
        elif isinstance(event, QualityAlertRaised):
            await self.retrain.note_degradation(
                event.model,
                "quality_alert",
                {
                    "metric": event.metric,
                    "window": event.window,
                    "value": event.value,
                    "bound": event.bound,
                    "version": event.model_version,
                },
                event.model_version,
            )
        elif isinstance(event, DriftDetected):
            cfg = self.settings.models.get(event.model)
            if cfg is not None and drift_fires(cfg.retrain, event.feature):
                await self.retrain.note_degradation(
                    event.model,
                    "drift",
                    {
                        "feature": event.feature,
                        "method": event.method,
                        "statistic": event.statistic,
                        "version": event.model_version,
                    },
                    event.model_version,
                )

    @property
    def executor(self) -> Executor:
        return self.retrain.executor

    async def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        await self.pool.close()


class Runtime:
    """Created before the worker starts; connects lazily on the worker's own event loop."""

    def __init__(self, settings: Settings, sink: DeadLetterSink, publisher: EventPublisher) -> None:
        self.settings = settings
        self.sink = sink
        self.publisher = publisher
        self._lock = asyncio.Lock()
        self._services: Services | None = None
        self.started_at = utc_now()
        self.last_batch_at: datetime | None = None
        # What /health reports on, kept up to date by the agents and timers.
        self.consumer_lag: int | None = None
        self.monitor_ok_at: datetime | None = None
        self.monitor_error: str | None = None
        # Set when this process ingests (roles ingest and all): its partitions for /health.
        self.ingest_consumer: BatchConsumer | None = None
        self.ingest_child: IngestChild | None = None  # role all: the ingest process

    def monitor_ran(self, error: BaseException | None) -> None:
        if error is None:
            self.monitor_ok_at = utc_now()
            metrics.MONITOR_LAST_TICK.set(self.monitor_ok_at.timestamp())
            self.monitor_error = None
        else:
            self.monitor_error = f"{type(error).__name__}: {error}"[:300]

    async def database_error(self) -> str | None:
        """None when PostgreSQL answers within the health timeout, else why not."""
        timeout = self.settings.health.database_timeout_seconds
        try:
            services = await asyncio.wait_for(self.services(), timeout)
            async with asyncio.timeout(timeout):
                async with services.pool.acquire() as conn:
                    await conn.fetchval("SELECT 1")
        except TimeoutError:
            return f"PostgreSQL did not answer within {timeout:g}s"
        except Exception as exc:
            return f"PostgreSQL unreachable: {type(exc).__name__}: {exc}"[:300]
        return None

    @property
    def connected(self) -> bool:
        return self._services is not None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._services is None:
            raise RuntimeError("Runtime.services() has not been awaited")
        return self._services.pool

    async def services(self) -> Services:
        async with self._lock:
            if self._services is None:
                pool = await create_pool(self.settings, max_size=8)
                self._services = Services(self.settings, pool, self.sink, self.publisher)
                log.info("connected to PostgreSQL")
            return self._services

    async def ready(self) -> IngestService:
        return (await self.services()).ingest

    async def monitor(self) -> MonitorService:
        return (await self.services()).monitor

    async def close(self) -> None:
        if self._services is not None:
            await self._services.close()
            self._services = None
