"""Faults on the real worker, broker and PostgreSQL: hostile or unlucky messages, a
database that goes away, SIGTERM mid-retry, stale and forged commands. Each one once held
the worker up or lied about its health; each must now leave it going, or telling why not."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer

from schemas import CommandResult, OutcomeObserved, PauseModel, PredictionMade
from schemas.base import utc_now
from tests.conftest import SettingsFactory
from tests.integration.conftest import StartWorker
from tests.integration.kafka import read_topic
from tests.integration.worker_process import wait_until
from workers.control.client import send_command
from workers.infra.net import free_port
from workers.producer import EventProducer
from workers.settings import HealthConfig, MonitoringConfig, Settings, WorkerConfig
from workers.topics import ensure_topics

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(make_settings: SettingsFactory) -> Settings:
    s = make_settings(
        worker=WorkerConfig(
            session_timeout_seconds=6.0,
            batch_within_seconds=0.1,
            sweep_interval_seconds=0.5,
            web_enabled=True,
            web_port=free_port(),
        ),
        monitoring=MonitoringConfig(quality_interval_seconds=0.5, lag_interval_seconds=1.0),
        health=HealthConfig(stall_seconds=5, database_timeout_seconds=1.0),
    )
    await ensure_topics(s)
    return s


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[EventProducer]:
    assert settings.kafka_bootstrap
    async with EventProducer(settings.kafka_bootstrap, settings.topics) as p:
        yield p


def prediction(i: int, **changes: object) -> PredictionMade:
    return PredictionMade(
        prediction_id=f"p{i}",
        model="ctr",
        model_version="v1",
        features={"x": i},
        prediction=0.5,
        predicted_at=utc_now() - timedelta(seconds=1),
    ).model_copy(update=changes)


def outcome(p: PredictionMade) -> OutcomeObserved:
    return OutcomeObserved(
        prediction_id=p.prediction_id, outcome_kind="measured", value=0.4, observed_at=utc_now()
    )


async def labeled(pool: asyncpg.Pool) -> int:
    async with pool.acquire() as c:
        return int(await c.fetchval("SELECT count(*) FROM labeled_examples"))


async def http_get(url: str) -> tuple[int, dict[str, object]]:
    def fetch() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except (urllib.error.URLError, OSError):
            return 0, b"{}"

    status, body = await asyncio.to_thread(fetch)
    return status, json.loads(body or b"{}")


async def test_hostile_messages_are_dead_lettered_and_the_stream_goes_on(
    settings: Settings, producer: EventProducer, pool: asyncpg.Pool, start_worker: StartWorker
) -> None:
    worker = start_worker(settings)
    assert settings.kafka_bootstrap
    big = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, max_request_size=8 * 1024 * 1024
    )
    await big.start()
    try:
        # 5 MB of a valid-looking prediction: far over every limit.
        huge = prediction(9000, features={"blob": "x" * 5_000_000}).to_bytes()
        await big.send_and_wait(settings.topics.predictions, huge, key=b"huge")
    finally:
        await big.stop()
    hostile = [
        prediction(9001, features={"n": 10**400}),  # int too large for a float
        prediction(9002, model="purchase", prediction=1e308),  # not a probability
        prediction(9003, features={f"f{i}": i for i in range(10_000)}),  # too many features
    ]
    for p in hostile:
        await producer.send(p)
    good = [prediction(i) for i in range(30)]
    for p in good:
        await producer.send(p)
        await producer.send(outcome(p))
    await producer.flush()
    await wait_until(
        lambda: _equals(labeled(pool), 30), timeout=60, what="the good stream", worker=worker
    )
    async with pool.acquire() as c:
        letters = await c.fetch(
            "SELECT error_type, original_bytes, length(payload) AS kept, published_at, reason "
            "FROM dead_letters ORDER BY id"
        )
    kinds = sorted(r["error_type"] for r in letters)
    assert kinds == ["out_of_range", "out_of_range", "too_large", "too_many_features"], letters
    too_large = next(r for r in letters if r["error_type"] == "too_large")
    assert too_large["original_bytes"] > 5_000_000
    assert too_large["kept"] == settings.limits.dead_letter_payload_bytes
    assert all(len(r["reason"]) <= settings.limits.reason_chars for r in letters)

    async def all_published() -> bool:
        async with pool.acquire() as c:
            return bool(
                await c.fetchval("SELECT count(*) = 0 FROM dead_letters WHERE published_at IS NULL")
            )

    await wait_until(all_published, timeout=30, what="dead letters on ol.dlq", worker=worker)
    records = await read_topic(settings, settings.topics.dlq, 4)
    headers = [dict(r.headers) for r in records]  # type: ignore[attr-defined]
    assert len(records) == 4
    truncated = [h for h in headers if h["ol.dlq.truncated"] == b"true"]
    assert len(truncated) == 1 and int(truncated[0]["ol.dlq.original_bytes"]) > 5_000_000


async def _equals(value: object, expected: int) -> bool:
    return await value == expected  # type: ignore[misc]


async def test_health_says_why_and_sigterm_ends_a_retrying_worker(
    settings: Settings,
    producer: EventProducer,
    pool: asyncpg.Pool,
    start_worker: StartWorker,
    make_settings: SettingsFactory,
) -> None:
    worker = start_worker(settings)
    base = f"http://127.0.0.1:{settings.worker.web_port}"

    async def ready() -> bool:
        status, body = await http_get(f"{base}/health")
        return status == 200 and bool(body.get("ok"))

    await wait_until(ready, timeout=45, what="/health 200", worker=worker)
    # The web server listens on web_host only, not on every interface.
    assert _listening_addresses(settings.worker.web_port) == {"127.0.0.1"}

    # PostgreSQL goes away for this worker: it must say so, with the reason.
    dsn = settings.database_url.get_secret_value()  # type: ignore[union-attr]
    name = dsn.split("?")[0].rsplit("/", 1)[1]
    admin = await asyncpg.connect(dsn.replace(f"/{name}?", "/postgres?"))
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )

        async def says_database() -> dict[str, object] | None:
            status, body = await http_get(f"{base}/health")
            return body if status == 503 and "database" in str(body.get("reasons")) else None

        body = await wait_until(says_database, timeout=30, what="/health 503", worker=worker)
        assert not body["ok"]
        live, _ = await http_get(f"{base}/health/live")
        assert live == 200  # alive, though not ready

        # A batch now fails and retries; SIGTERM must still end the worker promptly.
        for i in range(20):
            await producer.send(prediction(i))
        await producer.flush()
        await asyncio.sleep(3)
        began = time.monotonic()
        worker.proc.send_signal(signal.SIGTERM)
        await asyncio.to_thread(worker.proc.wait, 30)
        assert time.monotonic() - began < 25, worker.log_tail()
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    # Nothing was lost: a new worker stores what the stopped one could not.
    second = start_worker(settings)

    async def stored() -> bool:
        async with pool.acquire() as c:
            return bool(await c.fetchval("SELECT count(*) = 20 FROM predictions"))

    await wait_until(stored, timeout=60, what="the retried batch stored", worker=second)


def _listening_addresses(port: int) -> set[str]:
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if int(hex_port, 16) == port and state == "0A":  # LISTEN
                if len(address) == 8:
                    found.add(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.add("::" if set(address) == {"0"} else address)
    return found


async def test_stale_commands_are_refused_and_forged_text_cannot_forge_log_lines(
    settings: Settings, pool: asyncpg.Pool, start_worker: StartWorker
) -> None:
    worker = start_worker(settings)
    # A correctly signed command from 2001: refused, audited, never run.
    old = PauseModel(
        model="ctr",
        issued_by="ops",
        reason="old",
        issued_at=datetime.fromisoformat("2001-01-01T00:00:00+00:00"),
    )
    results = await send_command(settings, old, wait_seconds=45, until_final=False)
    assert [r.status for r in results] == ["refused"], worker.log_tail()
    assert "control.max_command_age_seconds" in results[0].detail
    async with pool.acquire() as c:
        assert not await c.fetchval("SELECT coalesce(bool_or(paused), false) FROM model_controls")
        assert (
            await c.fetchval("SELECT count(*) FROM audit_log WHERE action = 'refused:pause'") == 1
        )
    # An issuer with a newline: its text is escaped in the log, no line of its own.
    forged = PauseModel(model="ctr", issued_by="eve\n2026-01-01 INFO approved by admin", reason="x")
    results = await send_command(settings, forged, wait_seconds=45)
    assert results[-1].status == "done", worker.log_tail()
    log = worker.log_path.read_text()
    assert "eve\\n2026-01-01 INFO approved by admin" in log
    assert not any(
        line.startswith("2026-01-01 INFO approved by admin") for line in log.splitlines()
    )
    assert isinstance(results[-1], CommandResult)
