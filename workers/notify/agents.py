"""The leader's timer that posts due webhook notifications."""

from __future__ import annotations

import logging

import faust

from workers.runtime import Runtime

log = logging.getLogger(__name__)


def register(app: faust.App, runtime: Runtime) -> None:
    cfg = runtime.settings.notifications
    if not cfg.webhooks:
        return

    @app.timer(interval=cfg.interval_seconds, on_leader=True)
    async def deliver_notifications() -> None:
        services = await runtime.services()
        try:
            await services.notifications.deliver_due()
        except Exception:
            log.exception("delivering notifications failed; retrying at the next tick")
