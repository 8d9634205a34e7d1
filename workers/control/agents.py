"""The control agent, and the leader's retrain housekeeping timer."""

from __future__ import annotations

import logging
from typing import Any

import faust

from workers.failures import FailureLog
from workers.ingest.decode import RawMessage
from workers.runtime import Runtime
from workers.topics import bytes_topic

log = logging.getLogger(__name__)
HOUSEKEEPING_SECONDS = 5.0


def register(app: faust.App, runtime: Runtime) -> None:
    topic = bytes_topic(app, runtime.settings.topics.control, runtime.settings)

    @app.agent(topic, concurrency=1, name="control")
    async def control(stream: faust.StreamT[Any]) -> None:
        services = await runtime.services()
        async for event in stream.events():
            raw = RawMessage(
                event.message.topic,
                event.message.partition,
                event.message.offset,
                event.message.key,
                event.message.value or b"",
            )
            try:
                await services.control.handle(raw)
            except Exception:
                # A command must never stop the agent; the log says what went wrong.
                log.exception("control message at offset %d failed", raw.offset)

    @app.task
    async def warm_training_process() -> None:
        services = await runtime.services()
        try:
            await services.retrain.warm_up()
        except Exception:
            log.exception("the training process did not start ahead; runs start it themselves")

    housekeeping = FailureLog("retrain housekeeping", log)
    controller = FailureLog("retrain controller step", log)  # each model's step logs its own

    @app.timer(interval=HOUSEKEEPING_SECONDS, on_leader=True)
    async def retrain_housekeeping() -> None:
        services = await runtime.services()
        try:
            await services.retrain.housekeeping()
            await services.retrain.scheduled()
        except Exception as exc:
            housekeeping.failed(exc)
        else:
            housekeeping.ok()

    @app.timer(interval=runtime.settings.monitoring.quality_interval_seconds, on_leader=True)
    async def retrain_loop() -> None:
        # Each model's retrain controller: waits for evidence, starts runs, retries.
        services = await runtime.services()
        try:
            await services.retrain.step_all()
        except Exception as exc:
            controller.failed(exc)
        else:
            controller.ok()
