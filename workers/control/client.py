"""Sending a signed command and waiting for its result: what the CLI verbs use."""

from __future__ import annotations

import time

from pydantic import ValidationError

from schemas import CommandResult
from schemas.commands import Command
from workers.control.signing import sign, signing_key
from workers.producer import EventProducer
from workers.settings import Settings
from workers.topics import consumer_at_end

FINAL = {"done", "refused", "failed"}


async def send_command(
    settings: Settings, command: Command, *, wait_seconds: float, until_final: bool = True
) -> list[CommandResult]:
    """Publish `command` signed, then collect its results until a final one (or only the
    first, when `until_final` is False) or until `wait_seconds` pass."""
    assert settings.kafka_bootstrap is not None
    signed = sign(command, signing_key(settings))
    # Stand at the end of the results topic before sending, so no answer is missed.
    consumer = await consumer_at_end(settings, settings.topics.control_results)
    results: list[CommandResult] = []
    try:
        async with EventProducer(settings.kafka_bootstrap, settings.topics) as producer:
            await producer.send(signed)
            await producer.flush()
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            batch = await consumer.getmany(timeout_ms=250)
            for records in batch.values():
                for record in records:
                    try:
                        result = CommandResult.model_validate_json(record.value)
                    except ValidationError:
                        continue
                    if result.command_id != signed.command_id:
                        continue
                    results.append(result)
                    if result.status in FINAL or not until_final:
                        return results
        return results
    finally:
        await consumer.stop()
