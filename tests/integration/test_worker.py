"""The worker end to end: real Tansu broker, real PostgreSQL, the real `outcomeloop worker`."""

from __future__ import annotations

import asyncio
import json
import re
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import asyncpg
import pytest

from schemas import (
    CommandResult,
    LagMeasured,
    ModelPromoted,
    OutcomeObserved,
    PauseModel,
    PredictionMade,
    ResumeModel,
    RetrainModel,
)
from schemas.base import utc_now
from tests import promtool
from tests.conftest import TEST_MODELS, SettingsFactory, pending_counts_wrong
from tests.integration.conftest import StartWorker
from tests.integration.kafka import read_topic
from tests.integration.worker_process import wait_until
from workers.control.client import send_command
from workers.control.signing import sign, signing_key
from workers.infra.net import free_port
from workers.ingest.consumer import ingest_group
from workers.producer import EventProducer
from workers.settings import (
    GatesConfig,
    ModelConfig,
    MonitoringConfig,
    RetrainConfig,
    Settings,
    WorkerConfig,
)
from workers.topics import consumer_at_end, ensure_topics

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(make_settings: SettingsFactory) -> Settings:
    s = make_settings(
        models={**TEST_MODELS, "quick": ModelConfig(horizon_seconds=2, no_outcome="negative")}
    )
    await ensure_topics(s)
    return s


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[EventProducer]:
    assert settings.kafka_bootstrap
    async with EventProducer(settings.kafka_bootstrap, settings.topics) as p:
        yield p


def count_of(pool: asyncpg.Pool, query: str) -> Callable[[], object]:
    async def check() -> int:
        async with pool.acquire() as c:
            return int(await c.fetchval(query))

    return check


def prediction(i: int, model: str = "ctr") -> PredictionMade:
    return PredictionMade(
        prediction_id=f"p{i}",
        model=model,
        model_version="v1",
        features={"x": i},
        prediction=0.5,
        predicted_at=utc_now() - timedelta(seconds=1),
    )


def outcome_for(p: PredictionMade, value: float) -> OutcomeObserved:
    return OutcomeObserved(
        prediction_id=p.prediction_id, outcome_kind="measured", value=value, observed_at=utc_now()
    )


async def test_poison_goes_to_the_dlq_and_the_stream_goes_on(
    settings: Settings, producer: EventProducer, pool: asyncpg.Pool, start_worker: StartWorker
) -> None:
    worker = start_worker(settings)
    poison = [b"\x00\xff garbage", b'{"prediction_id": "x"}', b"[1, 2, 3]"]
    preds = [prediction(i) for i in range(60)]
    for i, p in enumerate(preds):
        await producer.send(p)
        if i % 20 == 0:
            await producer.send_raw(settings.topics.predictions, poison[i // 20], key=b"poison")
    for i, p in enumerate(preds):
        await producer.send(outcome_for(p, value=i / 100))
    # Predictions of a model whose 2 s horizon passes with no outcome: labeled negative.
    quick = [prediction(100 + i, model="quick") for i in range(5)]
    for p in quick:
        await producer.send(p)
    await producer.flush()

    await wait_until(
        count_of(pool, "SELECT count(*) = 65 FROM labeled_examples"),
        timeout=90,
        what="every prediction to mature",
        worker=worker,
    )
    async with pool.acquire() as c:
        labels = dict(await c.fetch("SELECT prediction_id, label FROM labeled_examples"))
        sources = await c.fetchval(
            "SELECT array_agg(DISTINCT label_source) FROM labeled_examples WHERE model = 'quick'"
        )
        dead = await c.fetch(
            "SELECT payload, error_type, reason FROM dead_letters ORDER BY payload"
        )
    assert all(labels[p.prediction_id] == i / 100 for i, p in enumerate(preds))
    assert sources == ["no_outcome"]
    assert sorted(bytes(d["payload"]) for d in dead) == sorted(poison)
    assert {d["error_type"] for d in dead} == {"invalid_json", "schema_violation"}

    records = await read_topic(settings, settings.topics.dlq, expected=3)
    assert sorted(r.value for r in records) == sorted(poison)  # type: ignore[attr-defined]
    for r in records:
        headers = dict(r.headers)  # type: ignore[attr-defined]
        assert headers["ol.dlq.topic"] == settings.topics.predictions.encode()
        assert headers["ol.dlq.reason"]
        assert int(headers["ol.dlq.offset"]) >= 0
        assert r.key == b"poison"  # type: ignore[attr-defined]


async def test_a_killed_worker_loses_and_doubles_nothing(
    settings: Settings, producer: EventProducer, pool: asyncpg.Pool, start_worker: StartWorker
) -> None:
    total = 1500
    preds = [prediction(i) for i in range(total)]

    async def produce(part: list[PredictionMade], offset: int) -> None:
        for i, p in enumerate(part, start=offset):
            await producer.send(p)
            await producer.send(outcome_for(p, value=(i % 7) / 10))
            if i % 100 == 99:
                await producer.flush()
                await asyncio.sleep(0.3)
        await producer.flush()

    first = start_worker(settings)
    await produce(preds[:300], 0)
    await wait_until(
        count_of(pool, "SELECT count(*) >= 200 FROM labeled_examples"),
        timeout=60,
        what="the first worker to make progress",
        worker=first,
    )
    sending = asyncio.create_task(produce(preds[300:], 300))
    await wait_until(
        count_of(pool, "SELECT count(*) >= 400 FROM labeled_examples"),
        timeout=60,
        what="the first worker to take on the rest of the stream",
        worker=first,
    )
    first.kill()  # mid-stream: offsets not yet committed will be delivered again
    async with pool.acquire() as c:
        at_kill = await c.fetchval("SELECT count(*) FROM labeled_examples")
    assert at_kill < total, "the stream should still be running when the worker dies"

    second = start_worker(settings)
    await sending
    await wait_until(
        count_of(pool, f"SELECT count(*) = {total} FROM labeled_examples"),
        timeout=120,
        what="the second worker to finish the stream",
        worker=second,
    )
    async with pool.acquire() as c:
        row = await c.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT prediction_id) AS ids, sum(label) AS s "
            "FROM labeled_examples"
        )
        outcomes = await c.fetchval("SELECT count(*) FROM outcomes")
        dead = await c.fetchval("SELECT count(*) FROM dead_letters")
    assert row is not None
    assert (row["n"], row["ids"], outcomes) == (total, total, total)
    assert row["s"] == pytest.approx(sum((i % 7) / 10 for i in range(total)))
    assert dead == 0  # redelivered predictions are recognised as the same events
    # Killed mid-batch and redelivered: every pending prediction counted in and out once.
    assert await pending_counts_wrong(pool) == []


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def http_get(url: str) -> tuple[int, bytes]:
    def fetch() -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except OSError:
            return 0, b""

    return await asyncio.to_thread(fetch)


async def test_the_worker_serves_metrics_health_status_and_reports_lag(
    make_settings: SettingsFactory, pool: asyncpg.Pool, start_worker: StartWorker
) -> None:
    port = free_port()
    settings = make_settings(
        worker=WorkerConfig(
            session_timeout_seconds=6.0,
            batch_within_seconds=0.1,
            sweep_interval_seconds=0.5,
            web_enabled=True,
            web_port=port,
        ),
        monitoring=MonitoringConfig(
            snapshot_interval_seconds=0.5, quality_interval_seconds=0.5, lag_interval_seconds=1.0
        ),
    )
    await ensure_topics(settings)
    worker = start_worker(settings)
    assert settings.kafka_bootstrap
    async with EventProducer(settings.kafka_bootstrap, settings.topics) as producer:
        for i in range(30):
            p = prediction(i)
            await producer.send(p)
            await producer.send(outcome_for(p, value=0.4))
        await producer.flush()
    await wait_until(
        count_of(pool, "SELECT count(*) = 30 FROM labeled_examples"),
        timeout=60,
        what="the stream to mature",
        worker=worker,
    )
    base = f"http://127.0.0.1:{port}"

    async def healthy() -> bool:
        status, body = await http_get(f"{base}/health")
        return status == 200 and json.loads(body)["consuming"]

    await wait_until(healthy, timeout=30, what="/health to say consuming", worker=worker)
    # Role all ingests in a child process; /health judges it too.
    _, body = await http_get(f"{base}/health")
    child = json.loads(body)["checks"]["ingest_process"]
    assert child["ok"], child
    child_pid = int(re.search(r"pid (\d+)", child["reason"]).group(1))  # type: ignore[union-attr]
    assert child_pid != worker.proc.pid and running(child_pid)

    async def snapshot_taken() -> bool:
        _, body = await http_get(f"{base}/metrics")
        return b"ol_rolling_metric{" in body

    await wait_until(snapshot_taken, timeout=30, what="a rolling metric on /metrics", worker=worker)
    _, metrics_text = await http_get(f"{base}/metrics")
    events_in = [
        line
        for line in metrics_text.decode().splitlines()
        if line.startswith(f'ol_events_in_total{{topic="{settings.topics.predictions}"}}')
    ]
    assert events_in and float(events_in[0].split()[-1]) == 30.0
    assert 'metric="mae"' in metrics_text.decode()
    # What Prometheus will scrape passes its own linter.
    linted = promtool.run("check", "metrics", stdin=metrics_text.decode())
    assert linted.returncode == 0, linted.stdout + linted.stderr

    status, body = await http_get(f"{base}/status")
    summary = json.loads(body)
    assert status == 200
    assert summary["models"]["ctr"]["labeled"] == 30
    mae = summary["models"]["ctr"]["versions"]["v1"]["quality"]["last_500"]["mae"]
    assert mae == pytest.approx(0.1)

    records = await read_topic(settings, settings.topics.lag, expected=1)
    report = LagMeasured.model_validate_json(records[0].value)  # type: ignore[attr-defined]
    assert report.consumer_group == ingest_group(settings)
    assert {p.topic for p in report.partitions} == set(settings.topics.ingest_names())
    assert report.pending_total >= 0 and report.window_seconds > 0

    # A parent killed outright takes its ingest process with it: no ingester left alone.
    worker.kill()
    for _ in range(150):  # 30 s
        if not running(child_pid):
            break
        await asyncio.sleep(0.2)
    assert not running(child_pid), "the ingest process outlived its parent"


async def test_signed_commands_through_the_control_topic(
    make_settings: SettingsFactory, pool: asyncpg.Pool, start_worker: StartWorker
) -> None:
    """The CLI's path: a signed command on ol.control, the worker acts once, answers on
    ol.control.results; a replay is answered without acting; a forgery is refused."""
    model = ModelConfig(
        horizon_seconds=3600,
        features=("x",),
        retrain=RetrainConfig(
            candidates=("linear",),
            gates=GatesConfig(min_samples=50, bootstrap_resamples=20),
        ),
    )
    settings = make_settings(models={"ctr": model})
    await ensure_topics(settings)
    worker = start_worker(settings)
    assert settings.kafka_bootstrap
    async with EventProducer(settings.kafka_bootstrap, settings.topics) as producer:
        for i in range(120):
            p = PredictionMade(
                prediction_id=f"p{i}",
                model="ctr",
                model_version="v1",
                features={"x": i / 10},
                prediction=0.9,
                predicted_at=utc_now() - timedelta(seconds=5),
            )
            await producer.send(p)
            await producer.send(outcome_for(p, value=0.1 + (i % 10) / 100))
        await producer.flush()
    await wait_until(
        count_of(pool, "SELECT count(*) = 120 FROM labeled_examples"),
        timeout=60,
        what="the examples to mature",
        worker=worker,
    )

    pause = PauseModel(model="ctr", issued_by="alice", reason="investigating")
    results = await send_command(settings, pause, wait_seconds=45)
    assert [r.status for r in results] == ["accepted", "done"], worker.log_tail()
    async with pool.acquire() as c:
        assert await c.fetchval("SELECT paused FROM model_controls WHERE model = 'ctr'")

    # The same signed bytes again (a redelivery, or an operator pressing twice).
    signed = sign(pause, signing_key(settings))
    consumer = await consumer_at_end(settings, settings.topics.control_results)
    try:
        async with EventProducer(settings.kafka_bootstrap, settings.topics) as producer:
            await producer.send(signed)
            await producer.send(sign(ResumeModel(model="ctr", issued_by="mallory"), b"guess"))
            await producer.flush()
        seen: list[CommandResult] = []
        for _ in range(80):
            batch = await consumer.getmany(timeout_ms=250)
            seen += [
                CommandResult.model_validate_json(r.value) for rs in batch.values() for r in rs
            ]
            if len(seen) >= 2:
                break
    finally:
        await consumer.stop()
    by_command = {r.command: r for r in seen}
    assert by_command["pause"].replayed and by_command["pause"].status == "done"
    assert by_command["resume"].status == "refused"
    assert "not authorised" in by_command["resume"].detail
    async with pool.acquire() as c:
        assert await c.fetchval("SELECT paused FROM model_controls WHERE model = 'ctr'")
        assert await c.fetchval("SELECT count(*) FROM commands WHERE command = 'pause'") == 1

    retrain = RetrainModel(model="ctr", issued_by="alice", reason="manual")
    results = await send_command(settings, retrain, wait_seconds=90)
    assert [r.status for r in results] == ["accepted", "done"], worker.log_tail()
    assert results[-1].data["run_status"] == "succeeded"
    version = results[-1].data["version"]
    async with pool.acquire() as c:
        champion = await c.fetchval(
            "SELECT version FROM model_aliases WHERE model = 'ctr' AND alias = 'champion'"
        )
    assert champion == version
    promotions = await read_topic(settings, settings.topics.models, expected=2)
    promoted = [
        ModelPromoted.model_validate_json(r.value)  # type: ignore[attr-defined]
        for r in promotions
        if b'"promoted"' in r.value  # type: ignore[attr-defined]
    ]
    assert [p.version for p in promoted] == [version]
