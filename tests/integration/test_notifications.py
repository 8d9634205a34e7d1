"""Webhook notifications on the real PostgreSQL, to a real HTTP receiver: Slack-shaped,
filtered by kind and model, retried with backoff, delivered once per event id."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from aiohttp import web

from schemas import ModelPromoted, QualityAlertRaised
from schemas.base import utc_now
from tests.conftest import TEST_MODELS, SettingsFactory
from tests.integration.fakes import CollectingPublisher
from workers.notify.service import Deliverer, NotifyingPublisher
from workers.settings import ModelConfig, NotificationsConfig, RetrainConfig, WebhookConfig

pytestmark = pytest.mark.integration


@dataclass
class Receiver:
    url: str
    posts: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    fail_next: int = 0  # answer 500 this many times first


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    box = Receiver(url=f"http://127.0.0.1:{port}")

    async def hook(request: web.Request) -> web.Response:
        if box.fail_next > 0:
            box.fail_next -= 1
            return web.Response(status=500, text="busy")
        box.posts.append((request.headers["X-Outcome-Loop-Event-Id"], await request.json()))
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/{name}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield box
    await runner.cleanup()


def alert(model: str = "ctr") -> QualityAlertRaised:
    return QualityAlertRaised(
        model=model,
        model_version="v1",
        metric="mae",
        window="last_500",
        value=0.31,
        bound=0.25,
        direction="above",
        n=500,
        raised_at=utc_now(),
    )


async def test_events_reach_the_webhooks_that_want_them_once_despite_failures(
    make_settings: SettingsFactory, pool: asyncpg.Pool, receiver: Receiver
) -> None:
    settings = make_settings(
        models={
            **TEST_MODELS,
            "churn": ModelConfig(horizon_seconds=60, retrain=RetrainConfig(promotion="approval")),
        },
        notifications=NotificationsConfig(
            webhooks=(
                WebhookConfig(url=f"{receiver.url}/all"),
                WebhookConfig(url=f"{receiver.url}/promotions", events=("promotion",)),
                WebhookConfig(url=f"{receiver.url}/churn", models=("churn",)),
            ),
            backoff_seconds=0.2,
            max_attempts=3,
        ),
    )
    inner = CollectingPublisher()
    publisher = NotifyingPublisher(inner, settings, pool)
    deliverer = Deliverer(settings, pool)

    quality = alert()
    promoted = ModelPromoted(model="ctr", version="r2", previous_version="v1", by="alice")
    await publisher.publish("ol.drift", quality)
    await publisher.publish("ol.drift", quality)  # published again (a retry): one delivery
    await publisher.publish("ol.models", promoted)
    assert len(inner.sent) == 3  # the topic publish itself is untouched

    receiver.fail_next = 1  # the first post fails: retried after the backoff
    assert await deliverer.deliver_due() == 2
    await asyncio.sleep(0.3)
    assert await deliverer.deliver_due() == 1
    assert await deliverer.deliver_due() == 0
    by_hook = sorted((body["kind"], event_id) for event_id, body in receiver.posts)
    assert by_hook == sorted(
        [
            ("quality_alert", str(quality.event_id)),
            ("promotion", str(promoted.event_id)),
            ("promotion", str(promoted.event_id)),
        ]
    )
    text = next(b["text"] for _, b in receiver.posts if b["kind"] == "quality_alert")
    assert "ctr v1" in text and "mae" in text and "0.31" in text
    assert all(b["event"]["event_id"] == e for e, b in receiver.posts)
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT webhook, attempts, delivered_at FROM notifications")
    assert len(rows) == 3 and all(r["delivered_at"] is not None for r in rows)
    assert sorted(r["attempts"] for r in rows) == [1, 1, 2]


async def test_a_receiver_that_keeps_failing_is_given_up_after_max_attempts(
    make_settings: SettingsFactory, pool: asyncpg.Pool, receiver: Receiver
) -> None:
    settings = make_settings(
        notifications=NotificationsConfig(
            webhooks=(WebhookConfig(url=f"{receiver.url}/x"),), backoff_seconds=0.05, max_attempts=2
        )
    )
    publisher = NotifyingPublisher(CollectingPublisher(), settings, pool)
    deliverer = Deliverer(settings, pool)
    await publisher.publish("ol.drift", alert())
    receiver.fail_next = 10
    for _ in range(4):
        assert await deliverer.deliver_due() == 0
        await asyncio.sleep(0.15)
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT attempts, delivered_at, last_error FROM notifications")
    assert row is not None and row["attempts"] == 2 and row["delivered_at"] is None
    assert "HTTP 500" in row["last_error"]
    assert receiver.fail_next == 8  # two posts, then no more
