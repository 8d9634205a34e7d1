"""The real worker end to end: `make bench` writes its section of BENCHMARKS.md.

    python -m benchmarks.bench [--parts 1,2,3,4,5] [--events 150000] [--small-rows 100000]
        [--big-rows 5000000] [--latency-seconds 60] [--steady-seconds 600] [--rounds 3]
        [--pair-rounds 4] [--quick] [--write BENCHMARKS.md]

Starts the embedded Tansu broker and PostgreSQL (fresh, under <data_dir>/bench) and
measures, in one run:

1. Drain rates on one backlog: ``--events`` predictions (a regression model, 16 numeric
   features) and as many outcomes by prediction id, produced before any consumer starts,
   then drained, one consumer after another, each in its own consumer group and database:
   (a) aiokafka ``getmany`` alone, no decode (in this process), the ceiling; (a') the
   storage floor: ``getmany`` and one COPY per batch of the raw events into the worker's
   tables, nothing else (in this process, ``benchmarks/storage_floor.py``); (b) a naive
   per-event Faust agent, one INSERT per event (``benchmarks/naive_agent.py``); (c) the
   worker ``--role all`` with monitoring, an alert rule and River challengers on; (d) the
   worker ``--role ingest``. (b), (c) and (d) run ``--rounds`` times, interleaved in a
   rotated order, then (c) and (d) ``--pair-rounds`` times more, alternating which goes
   first; each one's median round is shown, and monitoring on vs off is the median of the
   rounds' (c)/(d) ratios: on a shared machine a single drain can run 15-25% slow.
   Events/s, CPU per event of the consumer, PostgreSQL and the broker (from /proc), lost
   and doubled events read back from PostgreSQL.
2. ``IngestService.handle()`` batch time on ``--small-rows`` against ``--big-rows`` stored
   rows (pre-filled with generate_series), the same fresh batches, interleaved.
3. Outcome-to-metric latency through the worker ``--role all`` at half of (c)'s rate.
4. The worker's RSS over a steady run (``--steady-seconds``; with part 3 it is one run).
5. Two ``--role ingest`` workers against one on the same backlog.
6. Retraining 1M rows x 20 features by stage: `benchmarks/retrain_scale.py` (``--parts 6`` says so).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from rich.console import Console
from rich.progress import Progress

from benchmarks import bench_sql as bsql
from benchmarks import bench_stats as st
from benchmarks import efficacy, faults_sql, storage_floor
from benchmarks.bench_proc import (
    STARTED,
    Child,
    Pids,
    Sampler,
    other_measurements,
    own_cpu_seconds,
    postgres_server,
    start_naive,
    start_worker,
    tree_rss_kib,
)
from benchmarks.bench_report import SECTION, command_line, markdown, rich_tables
from benchmarks.bench_results import (
    ALL_PARTS,
    CHALLENGERS,
    FEATURES,
    LABELS,
    MODEL,
    OUTCOME_DELAY,
    ROUNDED,
    Backlog,
    BatchTimes,
    Drain,
    Options,
    Results,
    Steady,
    Stored,
    bench_model,
    median_drain,
    round_order,
)
from benchmarks.faults import with_database
from benchmarks.harness import embedded_run, progress
from schemas import OutcomeObserved, PredictionMade
from schemas.base import utc_now
from workers.db.pool import create_pool
from workers.ingest.consumer import make_consumer
from workers.ingest.decode import RawMessage
from workers.ingest.service import IngestService
from workers.ingest.sql import DeadLetterRow
from workers.producer import EventProducer
from workers.settings import CONFIG_FILE_ENV, Role, Settings, TopicsConfig, WorkerConfig
from workers.shadow import challengers as shadow_challengers
from workers.topics import ensure_topics
from workers.worker import prepare

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
console = Console(width=None if sys.stdout.isatty() else 200)
Report = efficacy.Report
OUTCOME_LAG = 1000  # backlog: an outcome is produced this many predictions after its own
DEFAULT_RATE = 1000.0  # events/s for parts 3 and 4 when part 1 (c) gave none
SEND_TICK = 0.01  # seconds: the steady sender's smallest sleep
WORKER_ROLES: dict[str, tuple[Role, ...]] = {
    "all": ("all",),
    "ingest": ("ingest",),
    "ingest x2": ("ingest", "ingest"),
}


# Events ----------------------------------------------------------------------------------------


class EventMaker:
    """Predictions of the benchmark's model (16 numeric features, a linear truth) and their
    outcomes, as the contracts serialise them."""

    def __init__(self, run_id: str, seed: int) -> None:
        self.run_id = run_id
        self.rng = np.random.default_rng(seed)
        self.weights = self.rng.normal(size=len(FEATURES))
        self._rows = np.empty((0, len(FEATURES)))
        self._next = 0
        self.values: dict[int, float] = {}

    def _row(self) -> np.ndarray:
        if self._next >= len(self._rows):
            self._rows = np.round(self.rng.normal(size=(10_000, len(FEATURES))), 6)
            self._next = 0
        row: np.ndarray = self._rows[self._next]
        self._next += 1
        return row

    def pid(self, i: int) -> str:
        return f"{self.run_id}-{i}"

    def prediction(self, i: int, at: datetime) -> PredictionMade:
        x = self._row()
        truth = float(x @ self.weights)
        self.values[i] = round(truth + float(self.rng.normal(0.0, 0.5)), 6)
        return PredictionMade(
            prediction_id=self.pid(i),
            model=MODEL,
            model_version="v1",
            features=dict(zip(FEATURES, x.tolist(), strict=True)),
            prediction=round(truth + float(self.rng.normal(0.0, 0.5)), 6),
            predicted_at=at,
        )

    def outcome(self, i: int, at: datetime) -> OutcomeObserved:
        return OutcomeObserved(
            prediction_id=self.pid(i),
            outcome_kind="measured",
            value=self.values.pop(i),
            observed_at=at,
        )


def backlog_messages(
    run_id: str, n: int, seed: int, start: datetime
) -> Iterator[tuple[bool, bytes, bytes]]:
    """(is a prediction, key, value) of the backlog: prediction i made at start + i ms, its
    outcome observed 1 s later and produced OUTCOME_LAG predictions further on."""
    maker = EventMaker(run_id, seed)
    step = timedelta(milliseconds=1)
    delay = timedelta(seconds=OUTCOME_DELAY)
    for i in range(n + OUTCOME_LAG):
        if i < n:
            p = maker.prediction(i, start + i * step)
            yield True, p.prediction_id.encode(), p.to_bytes()
        j = i - OUTCOME_LAG
        if j >= 0:
            o = maker.outcome(j, start + j * step + delay)
            yield False, maker.pid(j).encode(), o.to_bytes()


def topics_named(prefix: str, partitions: int) -> TopicsConfig:
    defaults = TopicsConfig()
    names = {
        f: f"{prefix}.{getattr(defaults, f)}"
        for f in TopicsConfig.model_fields
        if f not in ("partitions", "replication_factor")
    }
    return TopicsConfig(**names, partitions=partitions)


async def produce_backlog(
    base: Settings, n: int, seed: int, report: Report | None = None
) -> Backlog:
    assert base.kafka_bootstrap is not None
    run_id = f"bk{uuid.uuid4().hex[:6]}"
    topics = topics_named(f"bench-{run_id}", base.topics.partitions)
    await ensure_topics(base.model_copy(update={"topics": topics}))
    start = datetime.now(UTC) - timedelta(milliseconds=n) - timedelta(seconds=60)
    began = time.monotonic()
    producer = AIOKafkaProducer(
        bootstrap_servers=base.kafka_bootstrap, acks="all", linger_ms=10, max_batch_size=262_144
    )
    await producer.start()
    try:
        pending: list[asyncio.Future[Any]] = []
        for k, (is_prediction, key, value) in enumerate(
            backlog_messages(run_id, n, seed, start), 1
        ):
            topic = topics.predictions if is_prediction else topics.outcomes
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)  # raises if the broker refused one
                pending.clear()
                if report is not None:
                    report("producing the backlog", k, 2 * n)
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    if report is not None:
        report("backlog produced", 2 * n, 2 * n)
    return Backlog(run_id, topics, n, time.monotonic() - began)


# Isolation -------------------------------------------------------------------------------------


async def isolated(
    base: Settings,
    tag: str,
    opts: Options,
    *,
    ingest: TopicsConfig | None,
    role: Role = "all",
) -> Settings:
    """``base`` with a database (migrated), app id and topics of its own; the ingest topics
    are ``ingest``'s when given (the shared backlog), else its own too."""
    assert base.database_url is not None
    ns = f"b{tag}{uuid.uuid4().hex[:8]}"
    dsn = base.database_url.get_secret_value()
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{ns}"')
    finally:
        await admin.close()
    topics = topics_named(ns, base.topics.partitions)
    if ingest is not None:
        topics = topics.model_copy(
            update={
                "predictions": ingest.predictions,
                "outcomes": ingest.outcomes,
                "feedback": ingest.feedback,
            }
        )
    settings = base.model_copy(
        update={
            "app_id": ns,
            "database_url": SecretStr(with_database(dsn, ns)),
            "topics": topics,
            "worker": base.worker.model_copy(
                update={"role": role, "web_enabled": True, "web_host": "127.0.0.1"}
            ),
            "models": {MODEL: bench_model(opts.challengers)},
        }
    )
    await prepare(settings)
    return settings


async def settle(settings: Settings) -> None:
    """VACUUM ANALYZE a finished run's database, then CHECKPOINT: what it left for
    autovacuum and the checkpointer is done now, not inside the next run's measurement."""
    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        await conn.execute("VACUUM (ANALYZE)")
        with contextlib.suppress(asyncpg.PostgresError):  # needs a superuser
            await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


# Part 1 and 5: draining the backlog ------------------------------------------------------------


class DrainError(RuntimeError):
    """A consumer exited or never drained the backlog."""


async def wait_drained(
    children: Sequence[Child],
    probe: Callable[[], Awaitable[int]],
    exact: Callable[[], Awaitable[bool]],
    target: int,
    timeout: float,
    report: Report | None,
) -> float:
    """Poll the cheap ``probe`` until it reaches ``target``, then ``exact`` until it holds;
    the wall-clock time it did. Raises when a consumer dies or time runs out."""
    began = time.monotonic()
    checked = 0.0
    while time.monotonic() - began < timeout:
        for child in children:
            if not child.alive():
                raise DrainError(
                    f"{child.name} exited ({child.proc.returncode}); see {child.log_path}"
                )
        value = await probe()
        if report is not None:
            report("draining", min(value, target), target)
        if value >= target and time.monotonic() - checked >= 1.0:
            checked = time.monotonic()
            if await exact():
                return time.time()
        await asyncio.sleep(0.5)
    raise DrainError(f"not drained within {timeout:.0f} s")


async def wait_idle(sampler: Sampler, since: float, cap: float) -> float | None:
    """When the consumers went idle (under 10% of a core for 3 s) after ``since``."""
    deadline = time.time() + cap
    while time.time() < deadline:
        await asyncio.sleep(0.5)
        at = st.idle_from(sampler.series("consumer"), since, window=3.0, cores=0.1)
        if at is not None:
            return at
    return None


def _span(first: datetime | None, last: datetime | None) -> tuple[float, float] | None:
    if first is None or last is None:
        return None
    return first.timestamp(), last.timestamp()


def _account(
    drain: Drain, sampler: Sampler, span: tuple[float, float] | None, launched: float
) -> None:
    if span is None:
        return
    t0, t1 = span
    drain.seconds = t1 - t0
    drain.first_after = t0 - launched
    drain.consumer_cpu = sampler.cpu("consumer", t0, t1)
    drain.postgres_cpu = sampler.cpu("postgres", t0, t1)
    drain.broker_cpu = sampler.cpu("broker", t0, t1)


async def drain_getmany(
    base: Settings,
    backlog: Backlog,
    opts: Options,
    pids: Pids,
    report: Report | None,
    *,
    floor: bool = False,
) -> Drain:
    """The ceiling: the worker's own consumer settings, ``getmany`` in a loop, each message
    counted by (topic, partition, offset) and dropped. Timed from the first ``getmany``
    once the group has assigned the partitions to the end of the last one with messages.

    ``floor``: each batch is also stored raw into the worker's tables (one COPY per table,
    ``benchmarks/storage_floor.py``) while the next is fetched, in a database of its own;
    timed to the end of the last COPY."""
    key = "floor" if floor else "getmany"
    drain = Drain(key, LABELS[key], backlog.events)
    settings = base.model_copy(
        update={"app_id": f"b{key}{uuid.uuid4().hex[:8]}", "topics": backlog.topics}
    )
    conn: asyncpg.Connection | None = None
    if floor:
        settings = await isolated(base, key, opts, ingest=backlog.topics)
        assert settings.database_url is not None
        conn = await asyncpg.connect(settings.database_url.get_secret_value())
    horizon = timedelta(seconds=bench_model(()).horizon_seconds)
    storing: asyncio.Task[None] | None = None
    w = settings.worker
    consumer = make_consumer(settings)
    launched = time.time()
    await consumer.start()
    seen: set[tuple[str, int, int]] = set()
    received = 0
    deadline = time.monotonic() + opts.timeout
    try:
        while not consumer.assignment():  # the group join runs in the background
            if time.monotonic() > deadline:
                raise DrainError("no partitions assigned")
            await asyncio.sleep(0.02)
        first = (time.time(), own_cpu_seconds(), pids.postgres_cpu(), pids.broker_cpu())
        last = first[0]
        while len(seen) < backlog.events and time.monotonic() < deadline:
            batches = await consumer.getmany(
                timeout_ms=int(w.batch_within_seconds * 1000), max_records=w.batch_max
            )
            if not batches:
                continue
            if conn is not None:
                if storing is not None:
                    await storing
                storing = asyncio.create_task(
                    storage_floor.store(conn, batches, backlog.topics.predictions, horizon)
                )
            last = time.time()
            for messages in batches.values():
                for m in messages:
                    seen.add((m.topic, m.partition, m.offset))
                received += len(messages)
            if report is not None:
                report("draining", len(seen), backlog.events)
        if storing is not None:
            await storing
            last = time.time()
        end = (last, own_cpu_seconds(), pids.postgres_cpu(), pids.broker_cpu())
        if conn is not None:
            # Events only, and its COPY fails on a repeated key: rows are events.
            stored = await faults_sql.stored(conn)
    except DrainError as exc:
        drain.error = str(exc)
        return drain
    finally:
        await consumer.stop()
        if conn is not None:
            await conn.close()
    drain.stored = len(seen) if conn is None else stored
    drain.lost = backlog.events - drain.stored
    drain.doubled = received - len(seen)
    drain.seconds = end[0] - first[0]
    drain.first_after = first[0] - launched
    drain.consumer_cpu = end[1] - first[1]
    drain.postgres_cpu = _diff(first[2], end[2])
    drain.broker_cpu = _diff(first[3], end[3])
    if drain.lost:
        drain.error = f"{drain.lost:,} events not stored within {opts.timeout:.0f} s"
    drain.notes.append(
        "its CPU is this process's (the loop, aiokafka's fetcher, a set add"
        + (", the parse and COPY" if floor else "")
        + "); its span starts at its first `getmany` once the partitions were assigned"
    )
    return drain


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


async def drain_naive(
    base: Settings,
    backlog: Backlog,
    opts: Options,
    pids: Pids,
    log_dir: Path,
    report: Report | None,
) -> Drain:
    drain = Drain("naive", LABELS["naive"], backlog.events)
    settings = await isolated(base, "naive", opts, ingest=backlog.topics)
    pool = await create_pool(settings, max_size=1)
    async with pool.acquire() as conn:
        await conn.execute(bsql.NAIVE_TABLE)
    child = start_naive(settings, log_dir / f"{settings.app_id}.log")
    sampler = Sampler(lambda: [child.pid], pids.postgres, pids.broker)
    sampling = asyncio.create_task(sampler.run())
    launched = time.time()

    async def probe() -> int:
        async with pool.acquire() as conn:
            return await bsql.naive_progress(conn)

    async def exact() -> bool:
        async with pool.acquire() as conn:
            back = await bsql.naive_read_back(conn)
        return back.distinct_events >= backlog.events

    try:
        try:
            await wait_drained([child], probe, exact, backlog.events, opts.timeout, report)
        except DrainError as exc:
            drain.error = str(exc)
        async with pool.acquire() as conn:
            back = await bsql.naive_read_back(conn)
        span = _span(back.first, back.last)
        if drain.error is None and span is not None:
            idle = await wait_idle(sampler, span[1], opts.idle_cap)
            _tail(drain, sampler, span[1], idle)
    finally:
        await child.stop()
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        await pool.close()
    await settle(settings)
    drain.stored = back.stored
    drain.lost = backlog.events - back.distinct_events
    drain.doubled = back.stored - back.distinct_events
    _account(drain, sampler, span, launched)
    return drain


def _tail(drain: Drain, sampler: Sampler, last: float, idle: float | None) -> None:
    end = idle if idle is not None else sampler.times[-1]
    drain.busy_after = None if idle is None else max(0.0, idle - last)
    drain.tail_cpu = sampler.cpu("consumer", last, end)
    if idle is None:
        drain.notes.append(f"still busy {end - last:.0f} s after its last write")


async def drain_workers(
    base: Settings,
    backlog: Backlog,
    key: str,
    roles: Sequence[Role],
    opts: Options,
    pids: Pids,
    log_dir: Path,
    report: Report | None,
) -> Drain:
    drain = Drain(key, LABELS[key], backlog.events)
    settings = await isolated(
        base, key.replace(" ", ""), opts, ingest=backlog.topics, role=roles[0]
    )
    pool = await create_pool(settings, max_size=1)
    children = [
        start_worker(settings, role, log_dir / f"{settings.app_id}-w{n}.log", f"worker {n}")
        for n, role in enumerate(roles, 1)
    ]
    sampler = Sampler(lambda: [c.pid for c in children], pids.postgres, pids.broker)
    sampling = asyncio.create_task(sampler.run())
    launched = time.time()

    async def probe() -> int:
        async with pool.acquire() as conn:
            return await bsql.labeled_progress(conn)

    async def exact() -> bool:
        async with pool.acquire() as conn:
            d = await bsql.drained(conn)
        n = backlog.predictions
        return d.predictions >= n and d.outcomes >= n and d.labeled >= n and d.pending == 0

    span = None
    try:
        try:
            await wait_drained(children, probe, exact, backlog.predictions, opts.timeout, report)
        except DrainError as exc:
            drain.error = str(exc)
        async with pool.acquire() as conn:
            back = await bsql.worker_read_back(conn, backlog.run_id)
        span = _span(back.first, back.last)
        if drain.error is None and span is not None:
            if report is not None:
                report("waiting for the worker to idle", backlog.events, backlog.events)
            idle = await wait_idle(sampler, span[1], opts.idle_cap)
            _tail(drain, sampler, span[1], idle)
        async with pool.acquire() as conn:
            monitor = await bsql.monitor_output(conn)
        texts = [await c.metrics() for c in children]
    finally:
        for child in children:
            await child.stop()
        sampling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampling
        await pool.close()
    await settle(settings)
    n = backlog.predictions
    drain.stored = back.predictions + back.outcomes
    drain.lost = (n - back.predictions) + (n - back.outcomes)
    drain.doubled = back.foreign + back.repeated
    if back.labeled < n:
        drain.notes.append(f"{n - back.labeled:,} predictions not matured")
    if back.dead_letters:
        drain.notes.append(f"{back.dead_letters} dead letters")
    drain.per_worker = [int(st.metric_total(t, "ol_events_in_total")) for t in texts]
    _account(drain, sampler, span, launched)
    if "all" in roles:
        skipped = sum(int(st.metric_total(t, "ol_shadow_skipped_examples")) for t in texts)
        drain.notes.append(monitor.describe(skipped))
    if len(children) > 1:
        shares = ", ".join(
            f"{c.name} {k:,}" for c, k in zip(children, drain.per_worker, strict=True)
        )
        drain.notes.append(f"events consumed (from /metrics): {shares}")
    return drain


def challenger_costs(challengers: Sequence[str], n: int, seed: int) -> dict[str, float]:
    """µs per example of each challenger's predict-then-learn step (what the monitor does
    for every example it learns from), on ``n`` examples like the backlog's, in this
    process."""
    maker = EventMaker("cost", seed)
    examples = []
    for i in range(n):
        p = maker.prediction(i, datetime.now(UTC))
        examples.append((dict(p.features), maker.values.pop(i)))
    costs = {}
    for key in challengers:
        model = shadow_challengers.build(key, "regression")
        t0 = time.perf_counter()
        for features, label in examples:
            x = shadow_challengers.encode(features, key)
            shadow_challengers.predict(model, x, "regression")
            shadow_challengers.learn(model, x, label, "regression")
        costs[key] = (time.perf_counter() - t0) * 1e6 / n
    return costs


# Part 2: batch time as the tables grow ---------------------------------------------------------


class NoDeadLetters:
    async def publish(self, rows: Sequence[DeadLetterRow]) -> list[BaseException | None]:
        return [None] * len(rows)


def ingest_batches(
    settings: Settings, run_id: str, batch_events: int, n: int, seed: int
) -> tuple[list[RawMessage], list[list[RawMessage]]]:
    """A warm-up batch of predictions, then ``n`` batches of half new predictions and half
    the outcomes of the previous batch's predictions (every outcome labels one)."""
    maker = EventMaker(run_id, seed)
    topics = settings.topics
    offsets = {topics.predictions: 0, topics.outcomes: 0}
    half = batch_events // 2
    now = datetime.now(UTC) - timedelta(minutes=10)
    counter = 0

    def raw(topic: str, key: str, value: bytes) -> RawMessage:
        offsets[topic] += 1
        return RawMessage(topic, 0, offsets[topic] - 1, key.encode(), value)

    def predictions(k: int) -> list[int]:
        nonlocal counter
        made = list(range(counter, counter + k))
        counter += k
        return made

    def as_raw(made: list[int]) -> list[RawMessage]:
        return [
            raw(topics.predictions, maker.pid(i), maker.prediction(i, now).to_bytes()) for i in made
        ]

    first = predictions(2 * half)
    warmup = as_raw(first)
    previous = first[:half]
    for i in first[half:]:
        maker.values.pop(i)  # never get an outcome: they stay pending
    batches: list[list[RawMessage]] = []
    for _ in range(n):
        made = predictions(half)
        batch = as_raw(made)
        at = now + timedelta(seconds=OUTCOME_DELAY)
        batch += [
            raw(topics.outcomes, maker.pid(i), maker.outcome(i, at).to_bytes()) for i in previous
        ]
        np.random.default_rng(seed + len(batches)).shuffle(batch)  # type: ignore[arg-type, unused-ignore]
        batches.append(batch)
        previous = made
    return warmup, batches


async def fill(settings: Settings, rows: int, report: Report | None) -> tuple[float, int]:
    """Pre-fill ``rows`` matured predictions (with outcomes and labeled examples), then
    VACUUM ANALYZE and CHECKPOINT, so neither lands inside the timed batches."""
    began = time.monotonic()
    history = datetime.now(UTC) - timedelta(days=2)
    chunk = 100_000
    pool = await create_pool(settings, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute(bsql.fill_features_statement(FEATURES))
            for lo in range(0, rows, chunk):
                hi = min(rows, lo + chunk) - 1
                async with conn.transaction():
                    for statement in bsql.FILL_STATEMENTS:
                        await conn.execute(statement, lo, hi, MODEL, history)
                if report is not None:
                    report(f"pre-filling {rows:,} rows", hi + 1, rows)
            for table in ("predictions", "outcomes", "labeled_examples"):
                await conn.execute(f"VACUUM ANALYZE {table}")
            with contextlib.suppress(asyncpg.PostgresError):
                await conn.execute("CHECKPOINT")
            size = await bsql.database_bytes(conn)
    finally:
        await pool.close()
    return time.monotonic() - began, size


async def batch_times(base: Settings, opts: Options, report: Report | None) -> BatchTimes:
    small_settings = await isolated(base, "small", opts, ingest=None)
    # Batches name their topics: both sides decode them with the same names.
    big_settings = (await isolated(base, "big", opts, ingest=None)).model_copy(
        update={"topics": small_settings.topics}
    )
    small_fill = await fill(small_settings, opts.small_rows, report)
    big_fill = await fill(big_settings, opts.big_rows, report)
    result = BatchTimes(
        Stored(opts.small_rows, *small_fill),
        Stored(opts.big_rows, *big_fill),
        opts.batch_events,
        opts.batches,
    )
    # The same messages go to both databases (each has its own rows): identical batches.
    warmup, batches = ingest_batches(
        small_settings, f"bt{uuid.uuid4().hex[:6]}", opts.batch_events, opts.batches, opts.seed
    )
    pools = [await create_pool(s, max_size=2) for s in (small_settings, big_settings)]
    try:
        services = [
            IngestService(s, p, NoDeadLetters())
            for s, p in zip((small_settings, big_settings), pools, strict=True)
        ]
        for service in services:
            await service.handle(warmup)
        sides = [result.small, result.big]
        for k, raws in enumerate(batches):
            # Alternate which goes first, so neither always runs on a warmer cache.
            for side in (0, 1) if k % 2 == 0 else (1, 0):
                t0 = time.perf_counter()
                outcome = await services[side].handle(raws)
                sides[side].ms.append((time.perf_counter() - t0) * 1000)
                if outcome.dead or outcome.valid != len(raws):
                    why = outcome.dead[0].reason if outcome.dead else "?"
                    raise RuntimeError(f"batch {k}: {len(outcome.dead)} dead letters ({why})")
            if report is not None:
                report("timing batches (100k and big, interleaved)", k + 1, len(batches))
        for pool, stored in zip(pools, sides, strict=True):
            async with pool.acquire() as conn:
                rows = await bsql.table_rows(conn)
            want = stored.rows + len(warmup) + len(batches) * (opts.batch_events // 2)
            if rows["predictions"] != want:
                raise RuntimeError(f"stored {rows['predictions']:,} predictions, want {want:,}")
    finally:
        for p in pools:
            await p.close()
    return result


# Parts 3 and 4: a steady stream through the worker ---------------------------------------------


async def send_steady(
    settings: Settings,
    maker: EventMaker,
    rate: float,
    seconds: float,
    sent_at: np.ndarray,
    report: Report | None,
) -> int:
    """Predictions at ``rate / 2`` a second, each outcome ``OUTCOME_DELAY`` s after its
    prediction; ``sent_at[i]`` is when outcome i was handed to the producer."""
    assert settings.kafka_bootstrap is not None
    per_second = rate / 2
    n = min(len(sent_at), int(per_second * seconds))
    began = time.monotonic()
    i = j = 0
    async with EventProducer(settings.kafka_bootstrap, settings.topics) as producer:
        while j < n:
            now = time.monotonic() - began
            while i < n and i / per_second <= now:
                await producer.send(maker.prediction(i, utc_now()))
                i += 1
            while j < i and j / per_second + OUTCOME_DELAY <= now:
                sent_at[j] = time.time()
                await producer.send(maker.outcome(j, utc_now()))
                j += 1
            if report is not None:
                report("steady stream", int(now), int(seconds + OUTCOME_DELAY))
            # Ticks of at least TICK: what falls due within one goes out together (the
            # producer's linger batches it), as from a busy service; latency is measured
            # from each event's own hand-over, so the tick does not hide in it.
            due = min(i / per_second if i < n else float("inf"), j / per_second + OUTCOME_DELAY)
            await asyncio.sleep(max(due - (time.monotonic() - began), SEND_TICK))
        await producer.flush()
    return n


async def steady_run(
    base: Settings,
    rate: float,
    rate_source: str,
    seconds: float,
    opts: Options,
    pids: Pids,
    log_dir: Path,
    report: Report | None,
) -> Steady:
    result = Steady(rate, rate_source, seconds, min(opts.latency_seconds, seconds))
    settings = await isolated(base, "steady", opts, ingest=None)
    child = start_worker(settings, "all", log_dir / f"{settings.app_id}.log", "worker")
    sampler = Sampler(lambda: [child.pid], pids.postgres, pids.broker, every=1.0)
    pool = await create_pool(settings, max_size=1)
    run_id = f"st{uuid.uuid4().hex[:6]}"
    maker = EventMaker(run_id, opts.seed)
    sent_at = np.full(int(rate / 2 * seconds) + 1, np.nan)
    rss: list[tuple[float, int]] = []
    broker_rss: list[int] = []
    began = 0.0

    async def sample_rss() -> None:
        while True:
            value = tree_rss_kib(child.pid)
            if value is not None:
                rss.append((time.time() - began, value))
            if pids.broker is not None and (kib := tree_rss_kib(pids.broker)) is not None:
                broker_rss.append(kib)
            await asyncio.sleep(opts.rss_every)

    sampling = rss_task = None
    try:
        deadline = time.monotonic() + 180
        while not await child.healthy():
            if not child.alive() or time.monotonic() > deadline:
                raise DrainError(f"the worker did not become healthy; see {child.log_path}")
            await asyncio.sleep(0.5)
        sampler.sample()
        began = sampler.times[0]
        own = own_cpu_seconds()
        sampling = asyncio.create_task(sampler.run())
        rss_task = asyncio.create_task(sample_rss())
        n = await send_steady(settings, maker, rate, seconds, sent_at, report)
        stopped = time.time()
        result.sender_cpu = own_cpu_seconds() - own
        result.sent = n
        rss_task.cancel()
        async with pool.acquire() as conn:
            result.behind_at_end = n - await bsql.steady_progress(conn, run_id)
        # A worker slower than the stream works through what is left; those outcomes'
        # latencies are real, so wait for them (within reason) rather than drop them.
        deadline = time.monotonic() + max(120.0, seconds)
        while time.monotonic() < deadline and child.alive():
            async with pool.acquire() as conn:
                if await bsql.steady_progress(conn, run_id) >= n:
                    break
            await asyncio.sleep(0.5)
        async with pool.acquire() as conn:
            matured = await bsql.matured_times(conn, run_id)
        read_at = time.time()
        sampler.sample()
        result.consumer_cpu = sampler.cpu("consumer", began, stopped)
        result.postgres_cpu = sampler.cpu("postgres", began, stopped)
        minute = min(60.0, (stopped - began) / 2)
        result.broker_share = (
            _share(sampler.cpu("broker", began, began + minute), minute),
            _share(sampler.cpu("broker", stopped - minute, stopped), minute),
        )
        if broker_rss:
            result.broker_rss = (broker_rss[0], broker_rss[-1])
    except DrainError as exc:
        result.error = str(exc)
        matured, read_at = [], time.time()
    finally:
        for task in (sampling, rss_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await child.stop()
        await pool.close()
    result.rss = rss
    result.matured = len(matured)
    window = began + result.latency_seconds + OUTCOME_DELAY
    result.latency_first = st.latencies(sent_at, matured, read_at, until=window)
    result.latency_all = st.latencies(sent_at, matured, read_at)
    return result


def _share(cpu: float | None, seconds: float) -> float | None:
    return None if cpu is None or seconds <= 0 else cpu / seconds


# Part 6: a hook --------------------------------------------------------------------------------

PART6_NOTE = (
    "Measured by `python -m benchmarks.retrain_scale` (a 1M-row x 20-feature gated retrain "
    "through `RetrainService`, by stage), which `make bench` runs after this benchmark and "
    "which writes a section of its own."
)


async def part6(base: Settings, opts: Options) -> str:
    # The hook stays so `--parts 6` says where the retrain measurement lives.
    return PART6_NOTE


# The whole run ---------------------------------------------------------------------------------


class Bars:
    """One rich progress bar per step (or none)."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    def __call__(self, label: str, total: int) -> Report | None:
        if self.progress is None:
            return None
        return efficacy._Bar(self.progress, self.progress.add_task(label, total=total), label)

    def say(self, text: str) -> None:
        if self.progress is not None:
            self.progress.console.print(text, markup=False, highlight=False)


async def run_bench(
    base: Settings,
    opts: Options,
    log_dir: Path,
    *,
    broker_pid: int | None = None,
    bars: Bars | None = None,
) -> Results:
    """Every selected part on ``base``'s broker and PostgreSQL server (addresses resolved);
    each run gets a database, app id and topics of its own."""
    bars = bars or Bars(None)
    results = Results(opts)
    postmaster, results.postgres_version = await postgres_server(base)
    pids = Pids(postmaster, broker_pid)
    parts = set(opts.parts)

    current = ["1"]

    async def watch() -> None:
        """Note other measurements running beside this one, part by part."""
        while True:
            for other in await asyncio.to_thread(other_measurements):
                results.overlaps.setdefault(other, set()).add(current[0])
            await asyncio.sleep(5.0)

    watching = asyncio.create_task(watch())

    async def step(part: str, make: Callable[[], Awaitable[None]]) -> None:
        current[0] = part
        try:
            await make()
        except Exception as exc:  # one part's breakage is reported, the others still run
            log.exception("part %s failed", part)
            results.errors[part] = f"{type(exc).__name__}: {exc}"
            bars.say(f"part {part} failed: {results.errors[part]}")

    if parts & {1, 5}:

        async def backlog() -> None:
            results.backlog = await produce_backlog(
                base, opts.events, opts.seed, bars("backlog", 2 * opts.events)
            )

        await step("1", backlog)
    b = results.backlog
    if b is not None:
        await settle(base)  # each drain starts after a checkpoint, none inside it
        order: list[str] = []
        if 1 in parts:  # the references, then the compared drains in interleaved rounds
            rounds = range(opts.rounds + opts.pair_rounds)
            order += ["getmany", "floor", *[k for n in rounds for k in round_order(n, opts.rounds)]]
        if 5 in parts:
            order += ([] if 1 in parts else ["ingest"]) + ["ingest x2"]
        done: dict[str, int] = {}
        for key in order:
            done[key] = done.get(key, 0) + 1
            of = order.count(key)
            label = key if of == 1 else f"{key} {done[key]}/{of}"

            async def one(key: str = key, label: str = label) -> None:
                assert b is not None
                report = bars(label, b.events)
                try:
                    if key in ("getmany", "floor"):
                        drain = await drain_getmany(
                            base, b, opts, pids, report, floor=key == "floor"
                        )
                    elif key == "naive":
                        drain = await drain_naive(base, b, opts, pids, log_dir, report)
                    else:
                        roles = WORKER_ROLES[key]
                        drain = await drain_workers(
                            base, b, key, roles, opts, pids, log_dir, report
                        )
                except Exception as exc:
                    if key not in ROUNDED:
                        raise
                    # The round stays in its place, failed; the others still pair up.
                    log.exception("drain %s failed", label)
                    drain = Drain(key, LABELS[key], b.events, error=f"{exc!r}")
                if key in ROUNDED:
                    results.rounds.setdefault(key, []).append(drain)
                else:
                    results.drains[key] = drain
                bars.say(
                    f"{drain.label} ({label}): {st.fmt_int(drain.rate)} events/s"
                    + (f" ({drain.error})" if drain.error else "")
                )

            await step("5" if key == "ingest x2" else "1", one)
        # The table shows each compared consumer's median round.
        medians = {k: median_drain(v) for k, v in results.rounds.items() if v}
        results.drains = {
            k: medians.get(k) or results.drains[k]
            for k in LABELS
            if k in medians or k in results.drains
        }
        if 1 in parts and opts.challengers:

            async def costs() -> None:
                results.challenger_us = await asyncio.to_thread(
                    challenger_costs, opts.challengers, 3_000, opts.seed
                )

            await step("1", costs)
    if 2 in parts:

        async def batches() -> None:
            results.batch = await batch_times(base, opts, bars("batch time", opts.batches))

        await step("2", batches)
    if parts & {3, 4}:
        measured = results.drains.get("all")
        if opts.latency_rate is not None:
            rate, source = opts.latency_rate, "--latency-rate"
        elif measured is not None and measured.rate:
            rate, source = measured.rate / 2, "half of (c)'s drain rate"
        else:
            rate, source = DEFAULT_RATE, "a fixed default: part 1 (c) gave no rate"
        seconds = opts.steady_seconds if 4 in parts else opts.latency_seconds
        if 4 in parts:
            seconds = max(seconds, opts.latency_seconds if 3 in parts else 0.0)

        async def steady() -> None:
            report = bars("steady", int(seconds + OUTCOME_DELAY))
            results.steady = await steady_run(
                base, rate, source, seconds, opts, pids, log_dir, report
            )

        await step("3" if 3 in parts else "4", steady)
    if 6 in parts:
        results.part6 = await part6(base, opts)
    watching.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watching
    return results


# Main ------------------------------------------------------------------------------------------


def _parts(value: str) -> tuple[int, ...]:
    try:
        parts = tuple(sorted({int(v) for v in value.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"parts are numbers: {value!r}") from None
    if not parts or not set(parts) <= set(ALL_PARTS):
        raise argparse.ArgumentTypeError(f"parts are some of {ALL_PARTS}, e.g. 1,2,3")
    return parts


def _whole(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        if not value.isdigit() or int(value) < minimum:
            raise argparse.ArgumentTypeError(f"a whole number >= {minimum}: {value!r}")
        return int(value)

    return parse


def _challengers(value: str) -> tuple[str, ...]:
    names = tuple(v.strip() for v in value.split(",") if v.strip() and v.strip() != "none")
    unknown = [n for n in names if n not in CHALLENGERS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {unknown}; valid: {', '.join(CHALLENGERS)}")
    return names


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    default = Options()
    parser.add_argument("--parts", type=_parts, help=f"default {','.join(map(str, default.parts))}")
    parser.add_argument("--quick", action="store_true", help="small sizes, a few minutes")
    parser.add_argument(
        "--events", type=int, help=f"predictions in the backlog ({default.events:,})"
    )
    parser.add_argument("--small-rows", type=int, help=f"part 2 ({default.small_rows:,})")
    parser.add_argument("--big-rows", type=int, help=f"part 2 ({default.big_rows:,})")
    parser.add_argument("--batches", type=int, help=f"part 2, timed per side ({default.batches})")
    parser.add_argument(
        "--latency-seconds", type=float, help=f"part 3 ({default.latency_seconds:g})"
    )
    parser.add_argument("--latency-rate", type=float, help="part 3 events/s (half of (c))")
    parser.add_argument("--steady-seconds", type=float, help=f"part 4 ({default.steady_seconds:g})")
    parser.add_argument("--timeout", type=float, help=f"per drain ({default.timeout:g} s)")
    parser.add_argument(
        "--challengers",
        type=_challengers,
        help=f"the model's River challengers, comma-separated, or none ({','.join(CHALLENGERS)})",
    )
    parser.add_argument(
        "--rounds",
        type=_whole(1),
        help=f"part 1: drains (b), (c), (d) repeated, interleaved; medians ({default.rounds})",
    )
    parser.add_argument(
        "--pair-rounds",
        type=_whole(0),
        help="part 1: then (c) and (d) alone this many rounds more, alternating which goes "
        f"first, for the monitoring on/off ratio ({default.pair_rounds})",
    )
    parser.add_argument("--seed", type=int)
    parser.add_argument("--write", type=Path, default=None, help="e.g. BENCHMARKS.md")
    return parser


def options_from(args: argparse.Namespace) -> Options:
    opts = Options.quick() if args.quick else Options()
    given = {
        "parts": args.parts,
        "events": args.events,
        "small_rows": args.small_rows,
        "big_rows": args.big_rows,
        "batches": args.batches,
        "latency_seconds": args.latency_seconds,
        "latency_rate": args.latency_rate,
        "steady_seconds": args.steady_seconds,
        "timeout": args.timeout,
        "seed": args.seed,
        "challengers": args.challengers,
        "rounds": args.rounds,
        "pair_rounds": args.pair_rounds,
    }
    return replace(opts, **{k: v for k, v in given.items() if v is not None})


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    opts = options_from(args)
    started, t0 = datetime.now(UTC), time.perf_counter()
    # The benchmark's own model only, here and in the workers (which inherit the env).
    os.environ.pop(CONFIG_FILE_ENV, None)
    # PostgreSQL's files are gigabytes after part 2: deleted at the end, the logs stay.
    with embedded_run("bench", console, keep_data=False) as (run_dir, broker, pg):
        base = Settings(
            kafka_bootstrap=broker.bootstrap,
            database_url=SecretStr(pg.dsn),
            data_dir=run_dir,
            worker=WorkerConfig(),
        )
        try:
            with progress(console) as bars:
                results = asyncio.run(
                    run_bench(base, opts, run_dir / "logs", broker_pid=broker.pid, bars=Bars(bars))
                )
        finally:
            for child in STARTED:  # only left running when interrupted
                child.kill()
    seconds = time.perf_counter() - t0
    for table in rich_tables(results):
        console.print(table)
    section = markdown(results, command_line(args_list), started, seconds)
    console.print(section, markup=False, highlight=False)
    if args.write is not None:
        path = args.write if args.write.is_absolute() else REPO / args.write
        efficacy.write_section(path, section, SECTION)
        console.print(f"wrote the '{SECTION[3:]}' section of {path}")
    if results.failed:
        console.print("[red bold]failed: " + "; ".join(results.failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
