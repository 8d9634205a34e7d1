"""What `make bench` measures and keeps: its options, model, targets and results.

Shared by the runs (benchmarks/bench.py) and the report (benchmarks/bench_report.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks import bench_stats as st
from workers.settings import AlertRule, ModelConfig, MonitorConfig, ShadowConfig, TopicsConfig

MODEL = "bench_reg"
FEATURES = tuple(f"f{k:02d}" for k in range(16))
HORIZON_SECONDS = 86_400.0  # no prediction of a run reaches its horizon: outcomes label all
OUTCOME_DELAY = 1.0  # seconds between a prediction and its outcome (event time and part 3)
ALL_PARTS = (1, 2, 3, 4, 5, 6)
CHALLENGERS = ("linear", "hoeffding")  # every River challenger a regression model can have

# Targets
MONITORING_RATIO = 0.9  # role all over role ingest
NAIVE_RATIO = 12.0  # the worker over the naive agent
BIG_TABLE_RATIO = 1.1  # batch time at big over small
LATENCY_P99 = 2.0  # seconds


def bench_model(challengers: tuple[str, ...] = CHALLENGERS) -> ModelConfig:
    """A regression model configured as a user would: declared features, the default
    windows, drift checks and error detector, a relative MAE alert, River challengers
    (by default both a regression model can have), retraining on alerts."""
    return ModelConfig(
        task="regression",
        horizon_seconds=HORIZON_SECONDS,
        no_outcome="drop",
        features=FEATURES,
        monitor=MonitorConfig(
            alerts=(AlertRule(metric="mae", window="last_500", above_reference=1.25),)
        ),
        shadow=ShadowConfig(challengers=challengers),
    )


@dataclass(frozen=True)
class Options:
    parts: tuple[int, ...] = (1, 2, 3, 4, 5)
    events: int = 150_000  # predictions in the backlog, and as many outcomes
    small_rows: int = 100_000
    big_rows: int = 5_000_000
    batch_events: int = 2_000
    batches: int = 40
    latency_seconds: float = 60.0
    steady_seconds: float = 600.0
    rss_every: float = 5.0
    latency_rate: float | None = None  # events/s; None: half of part 1 (c)
    timeout: float = 1800.0  # seconds one drain may take
    idle_cap: float = 300.0  # seconds to wait for a consumer to go idle after a drain
    challengers: tuple[str, ...] = CHALLENGERS
    seed: int = 7
    # The drains compared by ratio (naive, all, ingest) are repeated this many times,
    # interleaved: on a shared machine one drain in four or so runs 15-25% slow.
    rounds: int = 3
    # Then (c) and (d) alone, this many rounds more, alternating which drains first: their
    # ratio (monitoring on vs off) is the closest claim, and one slow drain moves it most.
    pair_rounds: int = 4

    @classmethod
    def quick(cls) -> Options:
        return cls(
            events=10_000,
            small_rows=20_000,
            big_rows=200_000,
            batches=10,
            latency_seconds=15.0,
            steady_seconds=30.0,
            idle_cap=20.0,
            pair_rounds=1,
        )


@dataclass(frozen=True)
class Backlog:
    run_id: str
    topics: TopicsConfig
    predictions: int
    seconds: float

    @property
    def events(self) -> int:
        return 2 * self.predictions


@dataclass
class Drain:
    key: str
    label: str
    sent: int
    stored: int = 0
    lost: int = 0
    doubled: int = 0
    seconds: float | None = None  # first write to last
    first_after: float | None = None  # from the consumers' start to their first write
    consumer_cpu: float | None = None
    postgres_cpu: float | None = None
    broker_cpu: float | None = None
    busy_after: float | None = None  # from the last write until the consumer idled
    tail_cpu: float | None = None  # the consumer's CPU in that time
    per_worker: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def rate(self) -> float | None:
        return st.per_second(self.sent, self.seconds) if not self.error else None

    @property
    def ok(self) -> bool:
        return self.error is None and self.lost == 0 and self.doubled == 0

    def us(self, cpu: float | None) -> float | None:
        return st.us_per_event(cpu, self.sent)


LABELS = {
    "getmany": "(a) aiokafka `getmany` alone, no decode (in-process)",
    "floor": "(a') `getmany` + one COPY per batch of the raw events into the worker's tables",
    "naive": "(b) naive Faust agent, one INSERT per event",
    "all": "(c) worker `--role all`: monitoring, alert rule, 2 River challengers",
    "ingest": "(d) worker `--role ingest`: monitoring off",
    "ingest x2": "two workers `--role ingest`",
}

# Repeated in rounds; each round starts one further along, so over three rounds every
# consumer drains once first, once second and once last.
ROUNDED = ("naive", "all", "ingest")


def round_order(n: int, rounds: int = 3) -> tuple[str, ...]:
    """The drains of round ``n`` (from 0): the ``ROUNDED`` ones in a rotated order in the
    first ``rounds``, then (c) and (d) alone, alternating which goes first."""
    if n >= rounds:
        return ("ingest", "all") if (n - rounds) % 2 == 0 else ("all", "ingest")
    k = n % len(ROUNDED)
    return ROUNDED[k:] + ROUNDED[:k]


def median_drain(drains: list[Drain]) -> Drain:
    """The round whose rate is the median (the lower one of an even count): a real drain,
    so its CPU and timing columns belong to the rate shown. A failed round is never the
    median of rounds that drained; if none did, the first."""
    ok = sorted((d for d in drains if d.rate is not None), key=lambda d: d.rate or 0.0)
    return ok[(len(ok) - 1) // 2] if ok else drains[0]


@dataclass
class Stored:
    rows: int
    fill_seconds: float
    database_bytes: int
    ms: list[float] = field(default_factory=list)

    @property
    def median(self) -> float | None:
        return st.percentile(self.ms, 50)


@dataclass
class BatchTimes:
    small: Stored
    big: Stored
    batch_events: int
    batches: int
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        return st.ratio(self.big.median, self.small.median)


@dataclass
class Steady:
    rate: float  # events/s, predictions and outcomes together
    rate_source: str
    seconds: float
    latency_seconds: float
    sent: int = 0  # predictions, and as many outcomes
    matured: int = 0
    latency_first: st.Latencies = field(default_factory=st.Latencies)  # first window
    latency_all: st.Latencies = field(default_factory=st.Latencies)
    rss: list[tuple[float, int]] = field(default_factory=list)  # (s since start, KiB)
    consumer_cpu: float | None = None
    postgres_cpu: float | None = None
    sender_cpu: float | None = None  # this process: building and producing the events
    # The broker's share of a core in the stream's first and last minute, and its RSS
    # (KiB) then: the embedded broker's cost grows with what it has stored.
    broker_share: tuple[float | None, float | None] = (None, None)
    broker_rss: tuple[int | None, int | None] = (None, None)
    behind_at_end: int = 0  # outcomes not yet matured when sending stopped
    error: str | None = None

    @property
    def p99(self) -> float | None:
        return self.latency_first.percentile(99)


@dataclass
class Results:
    options: Options
    backlog: Backlog | None = None
    drains: dict[str, Drain] = field(default_factory=dict)  # the median round of ROUNDED
    rounds: dict[str, list[Drain]] = field(default_factory=dict)  # every round of ROUNDED
    batch: BatchTimes | None = None
    steady: Steady | None = None
    part6: str | None = None
    postgres_version: str = "?"
    errors: dict[str, str] = field(default_factory=dict)  # part -> why it did not run
    challenger_us: dict[str, float] = field(default_factory=dict)  # predict + learn, µs
    overlaps: dict[str, set[str]] = field(default_factory=dict)  # other benchmark -> parts

    @property
    def every_drain(self) -> list[Drain]:
        """Each drain once: the shown ones, then every other round."""
        seen = {id(d): d for d in self.drains.values()}
        seen.update((id(d), d) for rounds in self.rounds.values() for d in rounds)
        return list(seen.values())

    @property
    def failed(self) -> list[str]:
        bad = [f"part {k}: {v}" for k, v in self.errors.items()]
        bad += [
            f"{d.key}: {d.error or 'lost or doubled events'}" for d in self.every_drain if not d.ok
        ]
        if self.steady is not None and self.steady.error:
            bad.append(f"steady run: {self.steady.error}")
        return bad
