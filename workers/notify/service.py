"""Webhook notifications: events worth a message are queued in PostgreSQL as they are
published, and the leader posts what is due, retrying with backoff.

Queued per (event id, webhook), so an alert published again after a failed publish, or by
two workers, reaches each receiver once. A receiver also gets the event id in the
`X-Outcome-Loop-Event-Id` header, to drop the rare repeat of a post whose answer was lost.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import aiohttp
import asyncpg

from schemas import Message
from workers.db.pool import Conn
from workers.notify import sql
from workers.notify.messages import body_of, kind_of, model_of
from workers.publish import EventPublisher
from workers.settings import Settings

log = logging.getLogger(__name__)
MAX_BACKOFF = timedelta(hours=1)


class NotifyingPublisher:
    """Publishes as the wrapped publisher does, then queues the event for the webhooks
    that want it. Queueing never fails the publish: a notification is secondary."""

    def __init__(self, inner: EventPublisher, settings: Settings, pool: asyncpg.Pool) -> None:
        self.inner = inner
        self.settings = settings
        self.pool = pool

    async def publish(self, topic: str, event: Message, key: str | None = None) -> None:
        await self.inner.publish(topic, event, key=key)
        webhooks = self.settings.notifications.webhooks
        if not webhooks:
            return
        kind = kind_of(event, self.settings)
        if kind is None:
            return
        model = model_of(event)
        urls = [
            w.url
            for w in webhooks
            if kind in w.events and (not w.models or (model is not None and model in w.models))
        ]
        if not urls:
            return
        try:
            async with self.pool.acquire() as conn:
                await sql.enqueue(conn, event.event_id, urls, kind, model, body_of(event, kind))
        except Exception:
            log.exception("could not queue a %s notification for %s", kind, model)


class Deliverer:
    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.cfg = settings.notifications
        self.pool = pool

    async def deliver_due(self, limit: int = 50) -> int:
        """Post what is due, one row per transaction (locked while posting); return how
        many were delivered."""
        if not self.cfg.webhooks:
            return 0
        sent = 0
        timeout = aiohttp.ClientTimeout(total=self.cfg.timeout_seconds)
        async with aiohttp.ClientSession(timeout=timeout) as http, self.pool.acquire() as conn:
            for _ in range(limit):
                async with conn.transaction():
                    rows = await sql.due(conn, self.cfg.max_attempts, 1)
                    if not rows:
                        break
                    row = rows[0]
                    error = await self._post(http, row)
                    if error is None:
                        await sql.delivered(conn, row["id"])
                        sent += 1
                    else:
                        await self._failed(conn, row, error)
        return sent

    async def _failed(self, conn: Conn, row: asyncpg.Record, error: str) -> None:
        attempt = row["attempts"] + 1
        backoff = timedelta(seconds=self.cfg.backoff_seconds * 2 ** (attempt - 1))
        wait = min(backoff, MAX_BACKOFF)
        await sql.failed(conn, row["id"], error, wait)
        final = attempt >= self.cfg.max_attempts
        log.warning(
            "%s notification to %s failed (attempt %d of %d%s): %s",
            row["kind"],
            row["webhook"],
            attempt,
            self.cfg.max_attempts,
            ", giving up" if final else f", again in {wait.total_seconds():.0f}s",
            error,
        )

    async def _post(self, http: aiohttp.ClientSession, row: asyncpg.Record) -> str | None:
        headers = {"X-Outcome-Loop-Event-Id": str(row["event_id"])}
        try:
            async with http.post(row["webhook"], json=row["body"], headers=headers) as resp:
                if 200 <= resp.status < 300:
                    return None
                return f"HTTP {resp.status}: {(await resp.text())[:200]}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"
