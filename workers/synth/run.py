"""Send a scenario's schedule in real time through the producer client."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from schemas import PredictionMade
from schemas.base import utc_now
from workers.producer import EventProducer
from workers.settings import Settings
from workers.synth.scenarios import build_schedule
from workers.synth.spec import ScenarioSpec

Progress = Callable[[int, int], None]
# Scores a prediction's features at send time: (value, version), or None to keep the
# scenario's own model. The demo plugs the serving client in here.
Scorer = Callable[[dict[str, Any]], tuple[float, str] | None]


async def run_scenario(
    settings: Settings,
    spec: ScenarioSpec,
    on_progress: Progress | None = None,
    scorer: Scorer | None = None,
) -> Counter[str]:
    """Send every message at its time; return how many of each kind were sent."""
    assert settings.kafka_bootstrap is not None
    sends = build_schedule(spec, utc_now())
    topics = settings.topics
    topic_of = {
        "prediction": topics.predictions,
        "outcome": topics.outcomes,
        "feedback": topics.feedback,
    }
    sent: Counter[str] = Counter()
    began = time.monotonic()
    async with EventProducer(settings.kafka_bootstrap, topics) as producer:
        for n, send in enumerate(sends, start=1):
            wait = send.at - (time.monotonic() - began)
            if wait > 0:
                await producer.flush()
                await asyncio.sleep(wait)
            if on_progress is not None and n % 50 == 0:
                on_progress(n, len(sends))
            if send.event is None:
                await producer.send_raw(topic_of[send.kind], send.payload())
                sent["malformed"] += 1
                continue
            event = send.event
            if scorer is not None and isinstance(event, PredictionMade):
                scored = scorer(dict(event.features))
                if scored is not None:
                    event = event.model_copy(
                        update={"prediction": scored[0], "model_version": scored[1]}
                    )
                    sent[f"scored by {scored[1]}"] += 1
            await producer.send(event)
            sent[send.kind] += 1
        await producer.flush()
    if on_progress is not None:
        on_progress(len(sends), len(sends))
    return sent
