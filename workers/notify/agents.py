"""The leader's timer that posts due webhook notifications."""

from __future__ import annotations

import logging

import faust

from workers.failures import FailureLog
from workers.runtime import Runtime

log = logging.getLogger(__name__)


def register(app: faust.App, runtime: Runtime) -> None:
    cfg = runtime.settings.notifications
    if not cfg.webhooks:
        return

    failures = FailureLog("delivering notifications", log)

    @app.timer(interval=cfg.interval_seconds, on_leader=True)
    async def deliver_notifications() -> None:
        services = await runtime.services()
        try:
            await services.notifications.deliver_due()
        except Exception as exc:
            failures.failed(exc)
        else:
            failures.ok()
